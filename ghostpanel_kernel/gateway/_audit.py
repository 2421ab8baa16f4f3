"""The gateway's tamper-evident audit log, kept in the GhostPanel store.

Every request the gateway refuses, and every change it lets through, becomes one row:
who (``user``), on which environment, what (``action``, e.g. ``POST /containers/create``,
and ``target``), how it ended (``result``: ``allowed``, ``denied`` or ``failed``, and the
HTTP ``status``), the request's id and a JSON ``detail``. Rows are numbered ``seq`` 1, 2,
3... and hash-chained (``_audit_chain``): :meth:`AuditLog.verify` finds a row that was
edited, deleted, inserted or reordered afterwards.

Appends from several gateway processes (or machines on one PostgreSQL) form one chain:
each append first updates the chain head row, which locks it (a row lock on PostgreSQL,
the database's write lock on SQLite) until the append commits, so the next writer reads
the head this one wrote. ``record`` is three short statements in one transaction
(measured figures are in ``docs/audit.md``).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TextIO

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..store._errors import StoreError
from ..store._schema import Base
from ..store._transaction import store_transaction
from ._audit_chain import (
    AuditVerification,
    ChainRow,
    canonical_detail,
    row_hash,
    verify_chain,
)

if TYPE_CHECKING:
    import pandas

__all__ = ["COLUMNS", "RESULTS", "AuditLog", "AuditRecord", "AuditVerification"]

#: The values of ``result``.
RESULTS: Final = ("allowed", "denied", "failed")
#: The columns of :meth:`AuditLog.to_pandas` and :meth:`AuditLog.write_csv`, in order.
COLUMNS: Final = ("seq", "time", "user", "environment", "action", "target", "result",
                  "status", "request_id", "detail", "prev_hash", "hash")

_STORE: Final = "the audit log"
_LOG: Final = Base.metadata.tables["gateway_audit"]
_HEAD: Final = Base.metadata.tables["gateway_audit_head"]
_TEXT_COLUMNS: Final = ("user", "environment", "action", "target", "result", "request_id",
                        "prev_hash", "hash")
# The append's statements, built once: building them per call cost more than running
# them on a fast store (SQLAlchemy's statement construction and cache keys).
_ADVANCE_HEAD: Final = (update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + 1)
                        .returning(_HEAD.c.seq, _HEAD.c.hash))
_INSERT_ROW: Final = insert(_LOG)
_SET_HEAD_HASH: Final = (update(_HEAD).where(_HEAD.c.id == 1)
                         .values(hash=bindparam("new_hash")))
#: Rows read per query by verify(): memory stays flat on a log of millions of rows.
_BATCH: Final = 2000


@dataclass(frozen=True)
class AuditRecord:
    """One row of the audit log, as read back (``time`` in UTC, ``detail`` parsed)."""

    seq: int
    time: datetime
    user: str
    environment: str | None
    action: str
    target: str | None
    result: str
    status: int | None
    request_id: str | None
    detail: Any
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (``time`` in ISO 8601)."""
        values = {name: getattr(self, name) for name in COLUMNS}
        values["time"] = self.time.isoformat()
        return values


def _utc(when: datetime) -> datetime:
    """A time read back in UTC: SQLite returns naive UTC, PostgreSQL an aware time."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _reason(error: SQLAlchemyError) -> str:
    """The first line of the driver's own message (as ``store_transaction`` words it)."""
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _chain_row(row: Any) -> ChainRow:
    return ChainRow(row.seq, row.time, row.user_name, row.environment, row.action,
                    row.target, row.result, row.status, row.request_id, row.detail,
                    row.prev_hash, row.hash)


class AuditLog:
    """The audit log in the store ``engine`` (``open_database()``, at the newest revision).

    Examples
    --------
    >>> from ghostpanel_kernel.store import open_database
    >>> log = AuditLog(open_database("sqlite://"))
    >>> log.record(user="ada", environment="prod", action="POST /containers/{id}/stop",
    ...            target="web", result="allowed", status=204, request_id="r1")
    1
    >>> log.verify().ok, [entry.user for entry in log.entries()]
    (True, ['ada'])
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, *, user: str, environment: str | None, action: str,
               target: str | None, result: str, status: int | None,
               request_id: str | None, detail: Any = None) -> int:
        """Append one row; returns its ``seq``.

        Parameters
        ----------
        user
            Who (the hub's user or service name).
        environment
            The environment's name, or None for a request on no environment.
        action
            What was asked, e.g. ``"POST /containers/{id}/stop"``.
        target
            What it was asked of (a container's name or id...), or None.
        result
            ``"allowed"``, ``"denied"`` or ``"failed"``.
        status
            The HTTP status answered, or None.
        request_id
            The request's id (``X-Request-Id``).
        detail
            Anything JSON can hold (e.g. the dangerous options refused).

        Raises
        ------
        ValueError
            An unknown ``result``, or a ``detail`` JSON cannot encode.
        StoreError
            The database failed; nothing was written.
        """
        if result not in RESULTS:
            raise ValueError(f"result must be one of {', '.join(RESULTS)}, not {result!r}")
        detail_text = canonical_detail(detail)
        try:
            with self._engine.begin() as connection:
                # The first statement writes: it takes the lock that orders the appends.
                head = connection.execute(_ADVANCE_HEAD).first()
                if head is None:
                    raise StoreError("the audit log's chain head is missing: the store was "
                                     "changed outside GhostPanel (see docs/audit.md)")
                seq, prev_hash = int(head[0]), str(head[1])
                # Taken under the lock, so that times follow seq.
                row = ChainRow(seq, datetime.now(UTC), user, environment, action, target,
                               result, status, request_id, detail_text, prev_hash, "")
                digest = row_hash(row)
                connection.execute(_INSERT_ROW, {
                    "seq": seq, "time": row.time, "user_name": user,
                    "environment": environment, "action": action, "target": target,
                    "result": result, "status": status, "request_id": request_id,
                    "detail": detail_text, "prev_hash": prev_hash, "hash": digest})
                connection.execute(_SET_HEAD_HASH, {"new_hash": digest})
        except SQLAlchemyError as error:
            raise StoreError(f"{_STORE} failed: {_reason(error)}") from error
        return seq

    def entries(self, user: str | None = None, since: datetime | None = None,
                until: datetime | None = None, environment: str | None = None,
                limit: int | None = None) -> list[AuditRecord]:
        """The rows that match, oldest first.

        Parameters
        ----------
        user, environment
            Only this user's rows / this environment's.
        since, until
            Only rows at or after ``since`` / before ``until`` (aware times; a naive one
            is taken as UTC).
        limit
            Only the newest ``limit`` rows that match (still oldest first).
        """
        query = select(_LOG)
        if user is not None:
            query = query.where(_LOG.c.user_name == user)
        if environment is not None:
            query = query.where(_LOG.c.environment == environment)
        if since is not None:
            query = query.where(_LOG.c.time >= _utc(since))
        if until is not None:
            query = query.where(_LOG.c.time < _utc(until))
        query = query.order_by(_LOG.c.seq.desc())
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be 0 or more, not {limit}")
            query = query.limit(limit)
        with store_transaction(self._engine, _STORE) as session:
            rows = session.execute(query).all()
        return [AuditRecord(row.seq, _utc(row.time), row.user_name, row.environment,
                            row.action, row.target, row.result, row.status,
                            row.request_id,
                            None if row.detail is None else json.loads(row.detail),
                            row.prev_hash, row.hash) for row in reversed(rows)]

    def verify(self) -> AuditVerification:
        """Recompute the whole chain; the first row that does not hold, and why.

        The rows and the head are read in one snapshot (one read transaction), so a
        verify running beside writers sees a consistent log.
        """
        with self._engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            elif connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN")  # a read snapshot for all the batches
            try:
                head = connection.execute(
                    select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)).first()
                return verify_chain(self._rows(connection),
                                    None if head is None else (int(head[0]), str(head[1])))
            finally:
                connection.rollback()

    @staticmethod
    def _rows(connection: Connection) -> Iterator[ChainRow]:
        last = 0
        while True:
            batch = connection.execute(select(_LOG).where(_LOG.c.seq > last)
                                       .order_by(_LOG.c.seq).limit(_BATCH)).all()
            for row in batch:
                yield _chain_row(row)
            if len(batch) < _BATCH:
                return
            last = batch[-1].seq

    def to_pandas(self, user: str | None = None, since: datetime | None = None,
                  until: datetime | None = None, environment: str | None = None,
                  limit: int | None = None) -> pandas.DataFrame:
        """The rows that match (as :meth:`entries`) as a tidy DataFrame.

        One row per record, the :data:`COLUMNS` in order; ``time`` is
        ``datetime64[ns, UTC]``, ``status`` a nullable ``Int64``, the text columns
        pandas' ``string`` dtype (``<NA>`` when missing), ``detail`` the parsed JSON
        (objects).
        """
        import pandas as pd

        records = self.entries(user=user, since=since, until=until,
                               environment=environment, limit=limit)
        frame = pd.DataFrame([[getattr(r, name) for name in COLUMNS] for r in records],
                             columns=list(COLUMNS))
        frame["seq"] = frame["seq"].astype("int64")
        frame["time"] = pd.to_datetime(frame["time"], utc=True).astype("datetime64[ns, UTC]")
        frame["status"] = frame["status"].astype("Int64")
        # One dtype for the text columns whatever the rows hold (pandas infers object
        # for an empty or all-missing column): missing values are <NA>.
        for name in _TEXT_COLUMNS:
            frame[name] = frame[name].astype("string")
        return frame

    def write_csv(self, file: str | os.PathLike[str] | TextIO, user: str | None = None,
                  since: datetime | None = None, until: datetime | None = None,
                  environment: str | None = None, limit: int | None = None) -> int:
        """Write the rows that match as CSV (a header, then :data:`COLUMNS`); the count.

        ``time`` is ISO 8601 in UTC, ``detail`` its JSON text, empty cells for None.
        ``file`` is a path (written as UTF-8) or an open text stream.
        """
        records = self.entries(user=user, since=since, until=until,
                               environment=environment, limit=limit)
        if isinstance(file, (str, os.PathLike)):
            with open(file, "w", encoding="utf-8", newline="") as stream:
                return _write_csv(stream, records)
        return _write_csv(file, records)


def _write_csv(stream: TextIO, records: list[AuditRecord]) -> int:
    writer = csv.writer(stream)
    writer.writerow(COLUMNS)
    for record in records:
        values = record.as_dict()
        values["detail"] = canonical_detail(record.detail)
        writer.writerow(["" if values[name] is None else values[name] for name in COLUMNS])
    return len(records)

"""The runs of runbooks, and their schedules, kept under GhostPanel's home.

One SQLite file, ``<home>/runbooks/runbooks.sqlite`` (stdlib ``sqlite3``): the runs
(status, times, parameters, error, where the executed notebook and its HTML export are)
and the schedules the agent runs. It is its own file rather than tables in the main
store because runs are written from a notebook kernel's host process, from the agent and
from the CLI at once, and a few rows per run need no migrations (the main store's schema
is versioned by Alembic); WAL mode and a busy timeout let those writers share it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["STATUSES", "RunHistory", "RunRecord", "ScheduleRecord", "runbooks_home"]

#: The values of :attr:`RunRecord.status`.
STATUSES: Final = ("running", "succeeded", "failed")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    parameters TEXT NOT NULL,
    environment TEXT,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    error TEXT,
    notebook TEXT NOT NULL,
    html TEXT,
    audit_seq INTEGER
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE TABLE IF NOT EXISTS schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    runbook TEXT NOT NULL,
    cron TEXT NOT NULL,
    parameters TEXT NOT NULL,
    environment TEXT,
    created REAL NOT NULL
);
"""


def runbooks_home(home: Path | None = None) -> Path:
    """``<home>/runbooks``: GhostPanel's home (``$GHOSTPANEL_HOME``...) unless given."""
    if home is None:
        from ..store import data_dir

        home = data_dir()
    return home / "runbooks"


@dataclass(frozen=True)
class RunRecord:
    """One run of a runbook (times in seconds since the epoch)."""

    id: str
    runbook: str
    parameters: dict[str, Any]
    environment: str | None
    trigger: str
    status: str
    started: float
    finished: float | None
    error: str | None
    notebook: str
    html: str | None
    audit_seq: int | None = None

    @property
    def duration(self) -> float | None:
        """Seconds the run took; None while it runs."""
        return None if self.finished is None else self.finished - self.started

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values, ``duration`` included."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["duration"] = self.duration
        return values


@dataclass(frozen=True)
class ScheduleRecord:
    """A runbook to run on a cron schedule (``cron`` as :func:`parse_cron` reads it)."""

    id: int
    runbook: str
    cron: str
    parameters: dict[str, Any] = field(default_factory=dict)
    environment: str | None = None
    created: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(id=row["id"], runbook=row["runbook"],
                     parameters=json.loads(row["parameters"]),
                     environment=row["environment"], trigger=row["trigger"],
                     status=row["status"], started=row["started"], finished=row["finished"],
                     error=row["error"], notebook=row["notebook"], html=row["html"],
                     audit_seq=row["audit_seq"])


def _schedule(row: sqlite3.Row) -> ScheduleRecord:
    return ScheduleRecord(id=row["id"], runbook=row["runbook"], cron=row["cron"],
                          parameters=json.loads(row["parameters"]),
                          environment=row["environment"], created=row["created"])


class RunHistory:
    """The runs and schedules under ``home`` (GhostPanel's home unless given).

    Each call opens and closes its own connection: the object can be shared between
    threads (a run executes in a worker thread) and holds no file open between calls.

    Examples
    --------
    >>> import tempfile
    >>> history = RunHistory(Path(tempfile.mkdtemp()))
    >>> history.start(RunRecord("r1", "health_report", {}, None, "manual", "running",
    ...                         started=10.0, finished=None, error=None,
    ...                         notebook="/tmp/r1.ipynb", html=None))
    >>> history.finish("r1", status="succeeded", finished=12.5)
    >>> [(run.id, run.status, run.duration) for run in history.runs()]
    [('r1', 'succeeded', 2.5)]
    """

    def __init__(self, home: Path | None = None) -> None:
        self.folder = runbooks_home(home)
        self.path = self.folder / "runbooks.sqlite"

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        self.folder.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30.0)
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            with connection:  # one transaction, committed on leaving
                yield connection
        finally:
            connection.close()

    # -- runs ------------------------------------------------------------------------

    def start(self, record: RunRecord) -> None:
        """Write a new run (normally ``status="running"``)."""
        with self._connection() as db:
            db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       (record.id, record.runbook, json.dumps(record.parameters),
                        record.environment, record.trigger, record.status, record.started,
                        record.finished, record.error, record.notebook, record.html,
                        record.audit_seq))

    def finish(self, run_id: str, *, status: str, finished: float | None = None,
               error: str | None = None, html: str | None = None) -> None:
        """Record how run ``run_id`` ended.

        Raises
        ------
        ValueError
            ``status`` is not one of :data:`STATUSES`.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        with self._connection() as db:
            db.execute("UPDATE runs SET status=?, finished=?, error=?, html=? WHERE id=?",
                       (status, time.time() if finished is None else finished, error, html,
                        run_id))

    def link_audit(self, run_id: str, seq: int) -> None:
        """Remember the audit log row that records run ``run_id``."""
        with self._connection() as db:
            db.execute("UPDATE runs SET audit_seq=? WHERE id=?", (seq, run_id))

    def runs(self, runbook: str | None = None, limit: int | None = 50) -> list[RunRecord]:
        """The newest runs first (``limit`` of them; None for all), of one runbook or all."""
        query = "SELECT * FROM runs"
        arguments: list[Any] = []
        if runbook is not None:
            query += " WHERE runbook=?"
            arguments.append(runbook)
        query += " ORDER BY started DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            arguments.append(limit)
        with self._connection() as db:
            return [_run(row) for row in db.execute(query, arguments)]

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id`` (a unique prefix will do).

        Raises
        ------
        KeyError
            No run, or several, start with ``run_id``.
        """
        with self._connection() as db:
            rows = db.execute("SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                              (run_id.replace("%", "\\%").replace("_", "\\_") + "%",)
                              ).fetchall()
        if len(rows) != 1:
            raise KeyError(f"{'no run' if not rows else 'several runs'} "
                           f"with the id {run_id!r}")
        return _run(rows[0])

    # -- schedules ---------------------------------------------------------------------

    def add_schedule(self, runbook: str, cron: str, parameters: Mapping[str, Any],
                     environment: str | None = None) -> ScheduleRecord:
        """Store a schedule (checked by the caller); the record, with its new id."""
        created = time.time()
        with self._connection() as db:
            cursor = db.execute(
                "INSERT INTO schedules (runbook, cron, parameters, environment, created) "
                "VALUES (?,?,?,?,?)",
                (runbook, cron, json.dumps(dict(parameters)), environment, created))
            new_id = cursor.lastrowid
        assert new_id is not None
        return ScheduleRecord(new_id, runbook, cron, dict(parameters), environment, created)

    def schedules(self) -> list[ScheduleRecord]:
        """Every schedule, oldest first."""
        with self._connection() as db:
            return [_schedule(row) for row in db.execute("SELECT * FROM schedules ORDER BY id")]

    def remove_schedule(self, schedule_id: int) -> bool:
        """Delete a schedule; False when there was none of that id."""
        with self._connection() as db:
            return db.execute("DELETE FROM schedules WHERE id=?",
                              (schedule_id,)).rowcount > 0

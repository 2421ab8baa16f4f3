"""The audit log's hash chain: the canonical encoding of a row, its hash, and checking.

Each row's ``hash`` is the SHA-256 of a canonical encoding of its own fields and of the
previous row's ``hash`` (``prev_hash``; the first row links to :data:`GENESIS`). Editing
any field of a row changes its hash; deleting, inserting or reordering rows breaks the
link of the row after; rows deleted from the end disagree with the chain head (the
store's one-row table that the writers update). :func:`verify_chain` finds the first
such row and says which of these it is. Pure functions, no I/O.

The encoding is the JSON array ``["ghostpanel-audit-1", seq, time, user, environment,
action, target, result, status, request_id, detail, prev_hash]`` with no spaces and
UTF-8 text: ``time`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (PostgreSQL and SQLite
both keep microseconds), ``detail`` as the stored JSON text (or null).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

__all__ = ["GENESIS", "AuditVerification", "ChainRow", "canonical_detail", "canonical_time",
           "row_hash", "verify_chain"]

#: What the first row's ``prev_hash`` is: 64 zeros.
GENESIS: Final = "0" * 64
_VERSION: Final = "ghostpanel-audit-1"


def canonical_time(when: datetime) -> str:
    """``when`` in UTC as the chain encodes it; a naive time is taken as UTC (SQLite).

    Examples
    --------
    >>> canonical_time(datetime(2026, 12, 7, 22, 5, tzinfo=UTC))
    '2026-12-07T22:05:00.000000Z'
    """
    aware = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_detail(detail: object) -> str | None:
    """The JSON text a ``detail`` is stored and hashed as (sorted keys, no spaces).

    Examples
    --------
    >>> canonical_detail({"b": 1, "a": [True, None]})
    '{"a":[true,null],"b":1}'
    >>> canonical_detail(None) is None
    True
    """
    if detail is None:
        return None
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


@dataclass(frozen=True)
class ChainRow:
    """One stored row, as the chain sees it (``time`` as read back from the database)."""

    seq: int
    time: datetime
    user: str
    environment: str | None
    action: str
    target: str | None
    result: str
    status: int | None
    request_id: str | None
    detail: str | None
    prev_hash: str
    hash: str


def row_hash(row: ChainRow) -> str:
    """The hash ``row`` must carry: SHA-256 (hex) of its fields and ``prev_hash``.

    Examples
    --------
    >>> row = ChainRow(1, datetime(2026, 1, 1, tzinfo=UTC), "ada", "prod", "stop",
    ...                "web", "allowed", 204, "r1", None, GENESIS, "")
    >>> len(row_hash(row)), row_hash(row) == row_hash(row)
    (64, True)
    """
    encoded = json.dumps(
        [_VERSION, row.seq, canonical_time(row.time), row.user, row.environment,
         row.action, row.target, row.result, row.status, row.request_id, row.detail,
         row.prev_hash],
        ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditVerification:
    """What :func:`verify_chain` found.

    Attributes
    ----------
    ok
        Whether the whole chain holds.
    checked
        How many rows were read.
    first_bad
        The ``seq`` of the first row that does not hold (for rows missing at the end,
        the first missing ``seq``); None when ``ok``.
    reason
        Why, in one sentence; None when ``ok``.
    """

    ok: bool
    checked: int
    first_bad: int | None = None
    reason: str | None = None


def verify_chain(rows: Iterable[ChainRow], head: tuple[int, str] | None) -> AuditVerification:
    """Check rows given in ``seq`` order against each other and the chain head.

    Parameters
    ----------
    rows
        Every row, ordered by ``seq``.
    head
        The head's ``(seq, hash)``; None when the store has no head row (then the end
        of the log is not checked, and that is a failure in itself).

    Returns
    -------
    AuditVerification

    Examples
    --------
    >>> verify_chain([], (0, GENESIS))
    AuditVerification(ok=True, checked=0, first_bad=None, reason=None)
    """
    expected_seq, previous = 1, GENESIS
    checked = 0
    for row in rows:
        checked += 1
        if row.seq != expected_seq:
            if row.seq > expected_seq:
                missing = (f"row {expected_seq} is" if row.seq == expected_seq + 1 else
                           f"rows {expected_seq} to {row.seq - 1} are")
                reason = f"{missing} missing: deleted"
            else:
                reason = f"row {row.seq} comes after row {expected_seq - 1}: reordered"
            return AuditVerification(False, checked, min(row.seq, expected_seq), reason)
        if row_hash(row) != row.hash:
            return AuditVerification(False, checked, row.seq,
                                     f"row {row.seq} does not match its hash: edited")
        if row.prev_hash != previous:
            return AuditVerification(
                False, checked, row.seq,
                f"row {row.seq} does not link to row {row.seq - 1}: a row before it was "
                "replaced, or rows were reordered")
        expected_seq, previous = row.seq + 1, row.hash
    if head is None:
        return AuditVerification(False, checked, expected_seq,
                                 "the chain head is missing: the end of the log cannot "
                                 "be checked")
    head_seq, head_hash = head
    if head_seq > expected_seq - 1:
        first = expected_seq
        missing = f"row {first} is" if head_seq == first else f"rows {first} to {head_seq} are"
        return AuditVerification(False, checked, first, f"{missing} missing from the end "
                                 f"of the log: deleted (the head records row {head_seq})")
    if head_seq < expected_seq - 1 or head_hash != previous:
        return AuditVerification(False, checked, head_seq + 1 if head_seq < expected_seq - 1
                                 else expected_seq - 1,
                                 f"the log ends at row {expected_seq - 1} but its head "
                                 f"records row {head_seq} with another hash: rows were "
                                 "added or changed outside the gateway")
    return AuditVerification(True, checked)

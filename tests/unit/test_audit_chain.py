"""The audit log's hash chain as pure functions, and the store modules' examples."""

from __future__ import annotations

import dataclasses
import doctest
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType

import pytest

from ghostpanel_kernel.gateway import _audit, _audit_chain, _roles
from ghostpanel_kernel.gateway._audit_chain import (
    GENESIS,
    ChainRow,
    canonical_detail,
    canonical_time,
    row_hash,
    verify_chain,
)
from ghostpanel_kernel.store import _migrate, _schema

START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def chain(count: int) -> list[ChainRow]:
    rows, previous = [], GENESIS
    for seq in range(1, count + 1):
        row = ChainRow(seq, START + timedelta(seconds=seq), "ada", "prod", "container.stop",
                       f"c{seq}", "allowed", 204, f"r{seq}", canonical_detail({"n": seq}),
                       previous, "")
        row = dataclasses.replace(row, hash=row_hash(row))
        rows.append(row)
        previous = row.hash
    return rows


def head_of(rows: list[ChainRow]) -> tuple[int, str]:
    return (rows[-1].seq, rows[-1].hash) if rows else (0, GENESIS)


@pytest.mark.parametrize("module", [_audit, _audit_chain, _roles, _migrate, _schema],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_every_field_is_in_the_hash() -> None:
    (row,) = chain(1)
    changes = {"seq": 2, "time": START, "user": "bob", "environment": None, "action": "x",
               "target": None, "result": "denied", "status": 403, "request_id": None,
               "detail": None, "prev_hash": "1" * 64}
    for name, value in changes.items():
        assert row_hash(dataclasses.replace(row, **{name: value})) != row.hash, name


def test_the_same_moment_in_any_zone_or_naive_utc_hashes_alike() -> None:
    (row,) = chain(1)
    paris = row.time.astimezone(timezone(timedelta(hours=1)))
    naive = row.time.replace(tzinfo=None)  # as SQLite reads it back
    assert row_hash(dataclasses.replace(row, time=paris)) == row.hash
    assert row_hash(dataclasses.replace(row, time=naive)) == row.hash
    assert canonical_time(paris) == "2026-12-07T10:00:01.000000Z"


def test_an_intact_chain_holds() -> None:
    rows = chain(5)
    assert verify_chain(rows, head_of(rows)).ok


def test_an_edited_row_is_the_first_bad() -> None:
    rows = chain(5)
    rows[2] = dataclasses.replace(rows[2], user="mallory")
    result = verify_chain(rows, head_of(rows))
    assert (result.ok, result.first_bad, result.checked) == (False, 3, 3)
    assert result.reason == "row 3 does not match its hash: edited"


def test_a_rehashed_row_breaks_the_next_link() -> None:
    rows = chain(5)
    forged = dataclasses.replace(rows[2], user="mallory")
    rows[2] = dataclasses.replace(forged, hash=row_hash(forged))
    result = verify_chain(rows, head_of(chain(5)))
    assert (result.first_bad, result.reason) == (
        4, "row 4 does not link to row 3: a row before it was replaced, or rows were "
           "reordered")


def test_deleted_rows_in_the_middle_and_at_the_end() -> None:
    rows = chain(6)
    middle = verify_chain(rows[:1] + rows[3:], head_of(rows))
    assert (middle.first_bad, middle.reason) == (2, "rows 2 to 3 are missing: deleted")
    end = verify_chain(rows[:4], head_of(rows))
    assert (end.first_bad, end.reason) == (
        5, "rows 5 to 6 are missing from the end of the log: deleted (the head records "
           "row 6)")


def test_rows_out_of_order_and_a_bad_or_missing_head() -> None:
    rows = chain(3)
    backwards = verify_chain([rows[0], rows[1], rows[1]], head_of(rows))
    assert (backwards.first_bad, backwards.reason) == (2, "row 2 comes after row 2: "
                                                          "reordered")
    assert verify_chain(rows, (3, "f" * 64)).first_bad == 3
    assert verify_chain(rows, (2, rows[1].hash)).reason is not None
    missing = verify_chain(rows, None)
    assert not missing.ok and "head is missing" in str(missing.reason)


def test_detail_is_canonical_json() -> None:
    assert canonical_detail({"b": [1, 2], "a": "é"}) == '{"a":"é","b":[1,2]}'
    with pytest.raises(ValueError):
        canonical_detail({"x": float("nan")})

"""``since``/``until``/``step`` as people write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ghostpanel_kernel.metrics._time import parse_duration, parse_time


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0),
                                               ("7d", 604800.0), ("2w", 1209600.0),
                                               ("1.5h", 5400.0), ("45", 45.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_durations_from_numbers_and_timedeltas() -> None:
    assert parse_duration(timedelta(minutes=2)) == 120.0 and parse_duration(10) == 10.0


@pytest.mark.parametrize("bad", ["", "1y", "-5m", "0", "soon"])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_times_ago_iso_and_unix() -> None:
    now = 1_000_000.0
    assert parse_time("30m", now=now) == now - 1800
    assert parse_time("now", now=now) == now
    assert parse_time("123.5") == 123.5 and parse_time(7) == 7.0
    assert parse_time("2026-12-07T10:00:00Z") == datetime(2026, 12, 7, 10,
                                                          tzinfo=UTC).timestamp()
    # No offset: UTC, both as text and as a naive datetime.
    assert parse_time("2026-12-07T10:00:00") == parse_time(datetime(2026, 12, 7, 10))
    assert parse_time("2026-12-07T11:00:00+01:00") == parse_time("2026-12-07T10:00:00Z")


def test_bad_times_are_refused() -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday")

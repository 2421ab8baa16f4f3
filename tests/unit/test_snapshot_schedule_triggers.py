"""[snapshots.triggers] as a schedule: next due times (UTC) and the errors for bad values."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ghostpanel_kernel import BoltfileError
from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.snapshots import ScheduleError, SnapshotSchedule, parse_triggers


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (triggers, now, expected next due, expected trigger name)
CASES = [
    # hourly: minute 0 of the next hour; exactly on the hour is "just passed"
    ({"hourly": True}, "2026-12-07T10:15:30", "2026-12-07T11:00", "hourly"),
    ({"hourly": True}, "2026-12-07T10:00:00", "2026-12-07T11:00", "hourly"),
    ({"hourly": True}, "2026-12-07T09:59:59.999", "2026-12-07T10:00", "hourly"),
    ({"hourly": True}, "2026-12-31T23:30", "2027-01-01T00:00", "hourly"),
    # daily: later today, or tomorrow when the time has just passed
    ({"daily": "02:00"}, "2026-12-07T01:59", "2026-12-07T02:00", "daily"),
    ({"daily": "02:00"}, "2026-12-07T02:00", "2026-12-08T02:00", "daily"),
    ({"daily": "02:00"}, "2026-12-07T02:00:01", "2026-12-08T02:00", "daily"),
    ({"daily": "23:59"}, "2026-12-31T23:59", "2027-01-01T23:59", "daily"),
    ({"daily": "00:00"}, "2028-02-28T12:00", "2028-02-29T00:00", "daily"),  # leap day
    ({"daily": "00:00"}, "2027-02-28T12:00", "2027-03-01T00:00", "daily"),
    # weekly: 2026-12-07 is a Monday
    ({"weekly": "sunday@03:00"}, "2026-12-07T10:00", "2026-12-13T03:00", "weekly"),
    ({"weekly": "monday@03:00"}, "2026-12-07T02:59", "2026-12-07T03:00", "weekly"),
    ({"weekly": "monday@03:00"}, "2026-12-07T03:00", "2026-12-14T03:00", "weekly"),
    ({"weekly": "Sunday@03:00"}, "2026-12-27T04:00", "2027-01-03T03:00", "weekly"),
    # monthly: day D, the last day of a month without it
    ({"monthly": "1@04:00"}, "2026-12-07T10:00", "2027-01-01T04:00", "monthly"),
    ({"monthly": "31@04:00"}, "2027-02-01T00:00", "2027-02-28T04:00", "monthly"),
    ({"monthly": "31@04:00"}, "2027-02-28T04:00", "2027-03-31T04:00", "monthly"),
    ({"monthly": "30@04:00"}, "2028-02-01T00:00", "2028-02-29T04:00", "monthly"),
    ({"monthly": "15@00:00"}, "2026-04-15T00:00", "2026-05-15T00:00", "monthly"),
    # several triggers: the earliest; at the same time, the longest period names it
    ({"hourly": True, "daily": "02:30"}, "2026-12-07T02:10", "2026-12-07T02:30", "daily"),
    ({"hourly": True, "daily": "02:00"}, "2026-12-07T01:10", "2026-12-07T02:00", "daily"),
    ({"daily": "03:00", "weekly": "sunday@03:00"}, "2026-12-13T01:00", "2026-12-13T03:00",
     "weekly"),
    ({"daily": "03:00", "weekly": "sunday@03:00", "monthly": "1@03:00"},
     "2026-10-31T12:00", "2026-11-01T03:00", "monthly"),  # a Sunday and the 1st
]


@pytest.mark.parametrize(("triggers", "now", "due", "name"), CASES)
def test_next_due(triggers: dict[str, object], now: str, due: str, name: str) -> None:
    assert parse_triggers(triggers).next_due(at(now)) == (at(due), name)


def test_next_due_is_utc_whatever_the_zone_of_now() -> None:
    schedule = parse_triggers({"daily": "02:00"})
    paris = timezone(timedelta(hours=1))
    # 02:30 in Paris is 01:30 UTC: 02:00 UTC is still to come today.
    assert schedule.next_due(datetime(2026, 12, 7, 2, 30, tzinfo=paris)) == \
        (at("2026-12-07T02:00"), "daily")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_triggers({"hourly": True}).next_due(datetime(2026, 12, 7))


def test_a_year_of_dailies_is_one_a_day() -> None:
    schedule = parse_triggers({"daily": "02:00"})
    now, seen = at("2026-01-01T00:00"), []
    while now.year == 2026:
        due = schedule.next_due(now)
        assert due is not None
        now = due[0]
        seen.append(now)
    assert len(seen) == 366 and seen[-1] == at("2027-01-01T02:00")
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(seen))


@pytest.mark.parametrize("triggers", [None, {}, {"hourly": False, "daily": ""},
                                      {"before_surge_up": True, "before_build": True}])
def test_nothing_periodic_is_never_due(triggers: dict[str, object] | None) -> None:
    assert parse_triggers(triggers).next_due(at("2026-12-07T00:00")) is None


def test_before_surge_up_is_read() -> None:
    assert parse_triggers({"before_surge_up": True}) == SnapshotSchedule((), True)
    assert not parse_triggers({"before_surge_up": False}).before_surge_up


@pytest.mark.parametrize(("triggers", "message"), [
    ({"daily": "25:00"}, r'snapshots\.triggers\.daily = \'25:00\'.*"HH:MM".*"02:00"'),
    ({"daily": "2:00"}, r"snapshots\.triggers\.daily.*HH:MM"),
    ({"daily": 2}, r"snapshots\.triggers\.daily = 2 is not a string"),
    ({"weekly": "03:00"}, r"snapshots\.triggers\.weekly.*no '@'.*DAY@HH:MM"),
    ({"weekly": "sundae@03:00"}, r"'sundae' is not a day of the week.*monday"),
    ({"weekly": "sunday@3am"}, r"snapshots\.triggers\.weekly = '3am'.*HH:MM"),
    ({"monthly": "32@04:00"}, r"'32' is not a day of the month.*1 to 31"),
    ({"monthly": "0@04:00"}, r"'0' is not a day of the month"),
    ({"hourly": "yes"}, r"snapshots\.triggers\.hourly = 'yes' is not a boolean.*true"),
    ({"before_surge_up": 1}, r"before_surge_up = 1 is not a boolean"),
])
def test_bad_values_name_the_key_and_what_to_write(triggers: dict[str, object],
                                                   message: str) -> None:
    with pytest.raises(ScheduleError, match=message) as caught:
        parse_triggers(triggers, path="Boltfile.toml")
    assert isinstance(caught.value, BoltfileError)
    assert caught.value.path == "Boltfile.toml"


def test_the_corpus_example_schedules() -> None:
    boltfile = Boltfile.load("tests/data/bolt-corpus/bolt__examples_Boltfile-with-snapshots.toml")
    schedule = parse_triggers(boltfile.to_dict()["snapshots"]["triggers"])
    assert [t.name for t in schedule.triggers] == ["daily", "weekly", "monthly"]
    assert schedule.before_surge_up
    # Monday 2026-12-07 10:00 UTC: the next daily is tomorrow at 02:00.
    assert schedule.next_due(at("2026-12-07T10:00")) == (at("2026-12-08T02:00"), "daily")

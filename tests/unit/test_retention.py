"""plan_retention: restic's forget semantics on Boltfile retention policies."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ghostpanel_kernel.snapshots import Snapshot, plan_retention


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def snaps(*times: str) -> list[dict[str, Any]]:
    """Snapshots named after their times ("2019-09-01T11:00")."""
    return [{"name": t, "time": at(t)} for t in times]


# restic's documented example (doc/060_forget.rst): one backup every Sunday for 12 weeks.
SUNDAYS = snaps(*[(at("2019-09-01T11:00") + timedelta(weeks=w)).isoformat()[:16]
                  for w in range(12)])
SUNDAY_NAMES = [s["name"] for s in reversed(SUNDAYS)]  # newest first


def test_restic_example_keep_daily_4_keeps_the_last_four_sundays() -> None:
    plan = plan_retention(SUNDAYS, {"keep_daily": 4})
    # restic: keeps 2019-10-27, 11-03, 11-10, 11-17 and removes the other 8.
    assert plan.keep == ["2019-11-17T11:00", "2019-11-10T11:00", "2019-11-03T11:00",
                         "2019-10-27T11:00"]
    assert plan.remove == SUNDAY_NAMES[4:]
    assert all(plan.reasons[name] == ["keep_daily"] for name in plan.keep)


def test_restic_example_100_years_of_dailies() -> None:
    # "one backup every day for 100 years ... --keep-daily 7 --keep-weekly 5
    # --keep-monthly 12 --keep-yearly 75": 7 dailies, 4 more weeklies, 12 or 11 more
    # monthlies, 75 or 74 more yearlies (one of each may coincide with a kept one).
    # Ending on a Sunday, so that the 7 dailies are one ISO week, as in restic's text.
    start = at("2025-12-28T03:00") - timedelta(days=36524)
    days = [{"name": f"s{n:05d}", "time": start + timedelta(days=n)}
            for n in range(36525)]
    plan = plan_retention(days, {"keep_daily": 7, "keep_weekly": 5, "keep_monthly": 12,
                                 "keep_yearly": 75})
    reasons = plan.reasons
    assert sum("keep_daily" in r for r in reasons.values()) == 7
    # The newest daily is also the newest weekly: 4 more weeks.
    assert sum("keep_weekly" in r and "keep_daily" not in r for r in reasons.values()) == 4
    assert sum("keep_monthly" in r for r in reasons.values()) == 12
    assert sum("keep_yearly" in r for r in reasons.values()) == 75
    # "12 or 11" monthlies beyond the dailies, "75 or 74" yearlies beyond the others.
    assert sum("keep_monthly" in r and "keep_daily" not in r
               for r in reasons.values()) in (11, 12)
    assert sum(r == ["keep_yearly"] for r in reasons.values()) in (74, 75)
    # Every count was used up: the oldest snapshot is not kept.
    assert "s00000" in plan.remove


@pytest.mark.parametrize(("policy", "keep", "reasons"), [
    # Count not used up: the rule keeps the oldest snapshot too (restic >= 0.14).
    ({"keep_monthly": 5}, ["2019-11-17T11:00", "2019-10-27T11:00", "2019-09-29T11:00",
                           "2019-09-01T11:00"],
     {"2019-09-01T11:00": ["keep_monthly (oldest)"]}),
    # -1 keeps every bucket, and the oldest as well.
    ({"keep_yearly": -1}, ["2019-11-17T11:00", "2019-09-01T11:00"],
     {"2019-11-17T11:00": ["keep_yearly"], "2019-09-01T11:00": ["keep_yearly (oldest)"]}),
    # Union: weekly 2 and monthly 2 share the newest.
    ({"keep_weekly": 2, "keep_monthly": 2},
     ["2019-11-17T11:00", "2019-11-10T11:00", "2019-10-27T11:00"],
     {"2019-11-17T11:00": ["keep_weekly", "keep_monthly"],
      "2019-11-10T11:00": ["keep_weekly"], "2019-10-27T11:00": ["keep_monthly"]}),
    # max_total alone keeps the newest N.
    ({"max_total": 2}, ["2019-11-17T11:00", "2019-11-10T11:00"],
     {"2019-11-17T11:00": ["max_total"]}),
    # max_total caps what the rules keep: the newest of them.
    ({"keep_weekly": 5, "max_total": 3}, SUNDAY_NAMES[:3], {}),
    ({"keep_daily": 0}, SUNDAY_NAMES, {}),  # 0 turns a rule off: empty policy.
    ({}, SUNDAY_NAMES, {SUNDAY_NAMES[0]: []}),  # Empty policy deletes nothing.
    ({"cleanup_frequency": "daily"}, SUNDAY_NAMES, {}),  # Not a rule.
])
def test_policy_table(policy: dict[str, Any], keep: list[str],
                      reasons: dict[str, list[str]]) -> None:
    plan = plan_retention(SUNDAYS, policy)
    assert plan.keep == keep
    assert plan.remove == [name for name in SUNDAY_NAMES if name not in keep]
    for name, expected in reasons.items():
        assert plan.reasons[name] == expected


@pytest.mark.parametrize(("times", "policy", "keep"), [
    # Hourly buckets: the newest of each hour.
    (["2026-01-01T10:05", "2026-01-01T10:55", "2026-01-01T11:10"], {"keep_hourly": 2},
     ["2026-01-01T11:10", "2026-01-01T10:55"]),
    # ISO weeks start on Monday: Sunday 2026-01-04 and Monday 2026-01-05 differ,
    # Monday and Sunday 2026-01-11 share a week.
    (["2026-01-04T12:00", "2026-01-05T12:00", "2026-01-11T12:00"], {"keep_weekly": 2},
     ["2026-01-11T12:00", "2026-01-04T12:00"]),
    # ISO week 1 of 2025 starts on Monday 2024-12-30: one bucket with 2025-01-02.
    (["2024-12-29T12:00", "2024-12-30T12:00", "2025-01-02T12:00"], {"keep_weekly": 2},
     ["2025-01-02T12:00", "2024-12-29T12:00"]),
    (["2025-12-31T23:00", "2026-01-01T01:00"], {"keep_yearly": 1}, ["2026-01-01T01:00"]),
    (["2026-01-31T23:00", "2026-02-01T00:00", "2026-02-27T00:00"], {"keep_monthly": 1},
     ["2026-02-27T00:00"]),
])
def test_calendar_buckets(times: list[str], policy: dict[str, int], keep: list[str]) -> None:
    assert plan_retention(snaps(*times), policy).keep == keep


def test_buckets_are_utc_whatever_the_times_zone() -> None:
    plus2 = timezone(timedelta(hours=2))
    # 01:30+02:00 is 23:30 UTC of the day before: another day than 03:00+02:00.
    items = [{"name": "a", "time": datetime(2026, 3, 2, 1, 30, tzinfo=plus2)},
             {"name": "b", "time": datetime(2026, 3, 2, 3, 0, tzinfo=plus2)}]
    assert plan_retention(items, {"keep_daily": 5}).keep == ["b", "a"]
    # RFC 3339 text is accepted too.
    text = [{"name": "a", "time": "2026-03-01T23:30:00Z"},
            {"name": "b", "time": "2026-03-02T01:00:00+02:00"}]
    assert plan_retention(text, {"keep_daily": 1}).keep == ["a"]


def test_keep_forever_is_kept_takes_no_bucket_and_no_max_total_slot() -> None:
    items = snaps("2026-01-01T10:00", "2026-01-02T10:00", "2026-01-03T10:00")
    items[2]["keep_forever"] = True  # the newest
    plan = plan_retention(items, {"keep_daily": 1, "max_total": 1})
    # The newest day's bucket is free for the next one; max_total counts only the rest.
    assert plan.keep == ["2026-01-03T10:00", "2026-01-02T10:00"]
    assert plan.reasons["2026-01-03T10:00"] == ["keep_forever"]
    assert plan.remove == ["2026-01-01T10:00"]
    forever_only = plan_retention(items, {"max_total": 0})
    assert forever_only.keep == ["2026-01-03T10:00"]


def test_equal_times_order_by_name_descending() -> None:
    same = [{"name": n, "time": "2026-05-05T05:05:05Z"} for n in ("b", "c", "a")]
    plan = plan_retention(same, {"keep_daily": 1})
    assert plan.keep == ["c"]
    assert plan.remove == ["b", "a"]


def test_accepts_snapshot_objects() -> None:
    snapshot = Snapshot(name="bolt-20260101-000000", source="/s", source_path="/s",
                        location="/x", filesystem="btrfs", created=at("2026-01-01T00:00"),
                        keep_forever=True)
    assert plan_retention([snapshot], {"max_total": 0}).keep == [snapshot.name]


@pytest.mark.parametrize(("items", "policy", "message"), [
    ([{"name": "a", "time": "2026-01-01T00:00:00"}], {}, "no time zone"),
    ([{"name": "a", "time": "yesterday"}], {}, "not RFC 3339"),
    ([{"name": "", "time": "2026-01-01T00:00:00Z"}], {}, "non-empty name"),
    ([{"name": "a", "time": "2026-01-01T00:00:00Z"}] * 2, {}, "listed twice"),
    ([], {"keep_daly": 1}, "unknown retention key 'keep_daly'"),
    ([], {"keep_daily": True}, "must be an integer"),
    ([], {"keep_daily": "3"}, "must be an integer"),
    ([], {"keep_daily": -2}, "-1 (all)"),
    ([], {"max_total": -1}, "0 or more"),
])
def test_bad_input_raises_value_error(items: list[dict[str, Any]], policy: dict[str, Any],
                                      message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_retention(items, policy)


@pytest.mark.parametrize("seed", range(40))
def test_properties_on_random_histories(seed: int) -> None:
    rng = random.Random(seed)
    start = at("2024-06-01T00:00")
    items = [{"name": f"s{n:03d}", "time": start + timedelta(minutes=rng.randrange(0, 10**6)),
              "keep_forever": rng.random() < 0.1} for n in range(rng.randrange(0, 60))]
    policy: dict[str, int] = {key: rng.choice([0, 1, 2, 3, 7, -1]) for key in
                              ("keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
                               "keep_yearly") if rng.random() < 0.5}
    if rng.random() < 0.4:
        policy["max_total"] = rng.randrange(0, 10)
    plan = plan_retention(items, policy)
    names = {item["name"] for item in items}
    assert set(plan.keep) | set(plan.remove) == names
    assert not set(plan.keep) & set(plan.remove)
    assert set(plan.reasons) == set(plan.keep)
    order = [i["name"] for i in sorted(items, key=lambda i: (i["time"], i["name"]),
                                       reverse=True)]
    assert plan.keep == [n for n in order if n in plan.keep]
    assert plan.remove == [n for n in order if n in plan.remove]
    forever = {item["name"] for item in items if item["keep_forever"]}
    assert forever <= set(plan.keep)
    if "max_total" in policy:
        assert len(set(plan.keep) - forever) <= policy["max_total"]
    if not any(policy.values()) and "max_total" not in policy:
        assert plan.remove == []
    # Every rule with a count keeps at least its newest bucket's snapshot.
    rest = [n for n in order if n not in forever]
    if rest and any(v for k, v in policy.items() if k != "max_total") \
            and policy.get("max_total", 1) > 0:
        assert rest[0] in plan.keep
    # The plan is the same whatever order the snapshots come in.
    shuffled = items[:]
    rng.shuffle(shuffled)
    assert plan_retention(shuffled, policy) == plan

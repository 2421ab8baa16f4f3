"""Which snapshots a retention policy keeps: restic's ``forget`` semantics.

The policy is a Boltfile's ``[snapshots.retention]`` table. Each ``keep_*`` rule cuts
time into UTC calendar buckets (hour, day, ISO week starting Monday, month, year) and
walks the snapshots newest first: the first snapshot met in a bucket represents that
bucket and is kept, until the rule has kept ``count`` buckets (``-1``: every bucket).
A rule that still has count left when it reaches the oldest snapshot keeps that one
too (restic's "oldest" rule: history reaches as far back as the count allows). Rules
are a union. ``keep_forever`` snapshots are kept whatever the rules say and take part
in neither the buckets nor ``max_total``; ``max_total`` then keeps only the newest that
many of what the rules kept (of every snapshot when no bucket rule is set). A policy
with no rule deletes nothing, as restic refuses to act on an empty policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["BUCKET_RULES", "RetentionPlan", "plan_retention"]

#: The bucket rules, in the order their reasons are listed, with each one's bucket key.
BUCKET_RULES: dict[str, Callable[[datetime], tuple[int, ...]]] = {
    "keep_hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "keep_daily": lambda t: (t.year, t.month, t.day),
    # ISO week: (ISO year, week); the ISO year of 2024-12-30 is 2025.
    "keep_weekly": lambda t: tuple(t.isocalendar()[:2]),
    "keep_monthly": lambda t: (t.year, t.month),
    "keep_yearly": lambda t: (t.year,),
}

#: Keys of ``[snapshots.retention]`` that are not retention rules (the agent's schedule).
_IGNORED_KEYS = frozenset({"cleanup_frequency"})

KEEP_FOREVER = "keep_forever"
MAX_TOTAL = "max_total"


@dataclass(frozen=True)
class RetentionPlan:
    """What a policy does to a list of snapshots.

    Attributes
    ----------
    keep
        Names of the snapshots kept, newest first.
    remove
        Names of the snapshots to delete, newest first.
    reasons
        For every kept name, the rules that keep it, e.g. ``["keep_daily",
        "keep_weekly"]``, ``["keep_monthly (oldest)"]``, ``["keep_forever"]`` or
        ``["max_total"]`` (only ``max_total`` set: it keeps the newest N).
    """

    keep: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    name: str
    time: datetime
    keep_forever: bool


def _field(snapshot: Any, key: str, default: Any = None) -> Any:
    if isinstance(snapshot, Mapping):
        return snapshot.get(key, default)
    return getattr(snapshot, key, default)


def _parse_time(value: Any, name: str) -> datetime:
    if isinstance(value, str):
        try:
            # fromisoformat takes RFC 3339 (with "Z" since Python 3.11).
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"snapshot {name!r}: time {value!r} is not RFC 3339") from None
    if not isinstance(value, datetime):
        raise ValueError(f"snapshot {name!r}: time must be a datetime or RFC 3339 text, "
                         f"not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time has no place in UTC buckets: guessing the zone would move
        # snapshots across day boundaries.
        raise ValueError(f"snapshot {name!r}: time {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


def _entries(snapshots: Iterable[Any]) -> list[_Entry]:
    entries = []
    seen: set[str] = set()
    for snapshot in snapshots:
        name = _field(snapshot, "name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"a snapshot needs a non-empty name: {snapshot!r}")
        if name in seen:
            raise ValueError(f"snapshot {name!r} is listed twice")
        seen.add(name)
        entries.append(_Entry(name, _parse_time(_field(snapshot, "time"), name),
                              bool(_field(snapshot, "keep_forever", False))))
    # Newest first; equal times by name, descending (both keys reversed together).
    entries.sort(key=lambda entry: (entry.time, entry.name), reverse=True)
    return entries


def _counts(policy: Mapping[str, Any]) -> tuple[dict[str, int], int | None]:
    counts: dict[str, int] = {}
    max_total: int | None = None
    for key, value in policy.items():
        if key in _IGNORED_KEYS:
            continue
        if key not in BUCKET_RULES and key != MAX_TOTAL:
            known = ", ".join([*BUCKET_RULES, MAX_TOTAL])
            raise ValueError(f"unknown retention key {key!r} (known: {known})")
        # bool is an int in Python; `keep_daily = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"retention {key} must be an integer, not {value!r}")
        if key == MAX_TOTAL:
            if value < 0:
                raise ValueError(f"retention max_total must be 0 or more, not {value}")
            max_total = value
        elif value < -1:
            raise ValueError(f"retention {key} must be -1 (all), 0 (off) or more, "
                             f"not {value}")
        elif value != 0:
            counts[key] = value
    return counts, max_total


def plan_retention(snapshots: Iterable[Any], policy: Mapping[str, Any]) -> RetentionPlan:
    """Decide which snapshots a ``[snapshots.retention]`` policy keeps and removes.

    Parameters
    ----------
    snapshots
        Mappings or objects with ``name``, ``time`` (an aware datetime or RFC 3339
        text) and optionally ``keep_forever``; in any order.
    policy
        The ``[snapshots.retention]`` table: ``keep_hourly``, ``keep_daily``,
        ``keep_weekly``, ``keep_monthly``, ``keep_yearly`` (a count, ``-1`` for all,
        ``0`` or absent for off), ``max_total``; ``cleanup_frequency`` is ignored.

    Returns
    -------
    RetentionPlan
        ``.keep`` and ``.remove`` (names, newest first) and ``.reasons``.

    Raises
    ------
    ValueError
        A snapshot without a name or an aware time, a name listed twice, an unknown
        policy key or a count that is not an integer of the allowed range.

    Examples
    --------
    >>> plan = plan_retention(
    ...     [{"name": "a", "time": "2026-01-01T10:00:00Z"},
    ...      {"name": "b", "time": "2026-01-01T11:00:00Z"},
    ...      {"name": "c", "time": "2026-01-02T09:00:00Z"}], {"keep_daily": 1})
    >>> plan.keep, plan.remove, plan.reasons
    (['c'], ['b', 'a'], {'c': ['keep_daily']})
    """
    entries = _entries(snapshots)
    counts, max_total = _counts(policy)
    reasons: dict[str, list[str]] = {}
    for entry in entries:
        if entry.keep_forever:
            reasons[entry.name] = [KEEP_FOREVER]
    rest = [entry for entry in entries if not entry.keep_forever]
    if not counts and max_total is None:
        # An empty policy deletes nothing (restic refuses to act on one).
        for entry in rest:
            reasons[entry.name] = []
        return RetentionPlan([e.name for e in entries], [], reasons)

    kept: list[_Entry] = []
    if counts:
        left = dict(counts)
        last: dict[str, tuple[int, ...] | None] = dict.fromkeys(counts)
        for position, entry in enumerate(rest):
            matched: list[str] = []
            oldest = position == len(rest) - 1
            for rule, bucket_of in BUCKET_RULES.items():
                if left.get(rule, 0) == 0:
                    continue
                bucket = bucket_of(entry.time)
                if bucket != last[rule]:
                    matched.append(rule)
                elif oldest:
                    # The count is not used up (or is -1): keep the oldest one as well.
                    matched.append(f"{rule} (oldest)")
                else:
                    continue
                last[rule] = bucket
                if left[rule] > 0:
                    left[rule] -= 1
            if matched:
                reasons[entry.name] = matched
                kept.append(entry)
    else:
        kept = list(rest)
        for entry in kept:
            reasons[entry.name] = [MAX_TOTAL]

    if max_total is not None:
        for entry in kept[max_total:]:
            del reasons[entry.name]
        kept = kept[:max_total]

    keep = [entry.name for entry in entries if entry.name in reasons]
    remove = [entry.name for entry in entries if entry.name not in reasons]
    return RetentionPlan(keep, remove, {name: reasons[name] for name in keep})

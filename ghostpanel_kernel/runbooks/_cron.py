"""Cron expressions: the five standard fields, the ``@daily``-style names, and ``@every``.

Written here rather than taken from croniter, whose maintainer declared it unmaintained
in 2024; the standard five fields are a small grammar. Semantics follow Vixie cron:
``minute hour day-of-month month day-of-week``, each ``*``, a number, a range ``a-b``, a
list ``a,b``, a step ``*/n`` or ``a-b/n``; months and days may be named (``jan``,
``mon``); Sunday is 0 or 7; when both day fields are restricted, a day matching either
one is due. Times are read in the timezone of the datetimes given (the agent uses UTC).

``@every DURATION`` (``@every 30s``, ``@every 5m``) runs at a fixed interval from the
scheduler's start: cron's granularity is a minute, and tests (and short maintenance
loops) need seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

__all__ = ["CronError", "CronSchedule", "parse_cron"]

_NAMED: Final = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS: Final = {name: number for number, name in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_DAYS: Final = {name: number for number, name in enumerate(
    ["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (name, lowest, highest, names)
_FIELDS: Final[tuple[tuple[str, int, int, dict[str, int]], ...]] = (
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_EVERY: Final = re.compile(r"^@every\s+(\d+)\s*(s|m|h)$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600}
#: How far ahead :meth:`CronSchedule.next_after` looks (``0 0 29 2 *`` is the rarest
#: valid expression: about every 4 years, 8 with a skipped leap year).
_HORIZON_DAYS: Final = 366 * 9


class CronError(ValueError):
    """An expression that is not valid cron; the message names the field."""


@dataclass(frozen=True)
class CronSchedule:
    """A parsed expression: the sets of values each field allows, or an interval.

    Build it with :func:`parse_cron`.
    """

    text: str
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    day_restricted: bool = False
    weekday_restricted: bool = False
    every: timedelta | None = None

    def matches(self, moment: datetime) -> bool:
        """Whether the minute of ``moment`` is due (always False for ``@every``)."""
        if self.every is not None:
            return False
        if (moment.minute not in self.minutes or moment.hour not in self.hours
                or moment.month not in self.months):
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after ``moment`` (same timezone).

        For ``@every`` it is ``moment`` plus the interval.

        Raises
        ------
        CronError
            Nothing is due within nine years (``0 0 31 2 *``: February never has 31 days).
        """
        if self.every is not None:
            return moment + self.every
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = moment + timedelta(days=_HORIZON_DAYS)
        while candidate <= limit:
            # Whole days, then hours, are skipped when they cannot match: at most a few
            # thousand steps for the rarest expression.
            if candidate.month not in self.months or not self._day_matches(candidate):
                candidate = (candidate + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if candidate.hour not in self.hours:
                candidate = (candidate + timedelta(hours=1)).replace(minute=0)
                continue
            if candidate.minute in self.minutes:
                return candidate
            candidate += timedelta(minutes=1)
        raise CronError(f"{self.text!r} is never due")

    def _day_matches(self, moment: datetime) -> bool:
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    number = names.get(text.lower()) if names else None
    if number is None:
        if not text.isdigit():
            raise CronError(f"{name}: {text!r} is not a number"
                            + (f" or a name ({', '.join(names)})" if names else ""))
        number = int(text)
    if not low <= number <= high:
        raise CronError(f"{name}: {number} is outside {low}-{high}")
    return number


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: the step in {part!r} must be a number above 0")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = (_value(a, name, low, high, names),
                           _value(b, name, low, high, names))
            if first > last:
                raise CronError(f"{name}: the range {span!r} runs backwards")
        elif span:
            first = _value(span, name, low, high, names)
            last = high if slash else first
        else:
            raise CronError(f"{name}: an empty value in {text!r}")
        values.update(range(first, last + 1, step))
    return values


def parse_cron(text: str) -> CronSchedule:
    """Parse ``text`` (see the module notes).

    Raises
    ------
    CronError
        The expression is malformed; the message names the field at fault.

    Examples
    --------
    >>> from datetime import datetime
    >>> parse_cron("*/15 2 * * mon-fri").next_after(datetime(2026, 12, 5, 12, 0))
    datetime.datetime(2026, 12, 7, 2, 0)
    >>> parse_cron("@every 2s").next_after(datetime(2026, 1, 1))
    datetime.datetime(2026, 1, 1, 0, 0, 2)
    """
    stripped = " ".join(text.split())
    every = _EVERY.match(stripped.lower())
    if every is not None:
        seconds = int(every.group(1)) * _UNIT_SECONDS[every.group(2)]
        if seconds == 0:
            raise CronError("@every needs an interval above 0")
        return CronSchedule(text=stripped, every=timedelta(seconds=seconds))
    if stripped.startswith("@"):
        expanded = _NAMED.get(stripped.lower())
        if expanded is None:
            raise CronError(f"unknown name {stripped!r}: use one of {', '.join(_NAMED)} "
                            "or @every N(s|m|h)")
    else:
        expanded = stripped
    parts = expanded.split(" ")
    if len(parts) != 5:
        raise CronError(f"{text!r} has {len(parts)} fields; cron takes 5: minute hour "
                        "day-of-month month day-of-week")
    sets = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = {0 if day == 7 else day for day in sets[4]}
    return CronSchedule(text=stripped, minutes=frozenset(sets[0]), hours=frozenset(sets[1]),
                        days=frozenset(sets[2]), months=frozenset(sets[3]),
                        weekdays=frozenset(weekdays),
                        day_restricted=not parts[2].startswith("*"),
                        weekday_restricted=not parts[4].startswith("*"))

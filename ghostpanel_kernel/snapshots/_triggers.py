"""A Boltfile's ``[snapshots.triggers]`` as a schedule: when each snapshot is due.

Pure functions of the table and a time; nothing here reads a clock. Every time is
**UTC**: a Boltfile has no time-zone key, Bolt's names (``bolt-YYYYmmdd-HHMMSS``) and the
retention buckets are UTC, and UTC has no daylight-saving gaps or repeated hours, so a
daily snapshot is taken exactly once a day, every day.

==============  =====================  ===========================================
key             value                  due
==============  =====================  ===========================================
``hourly``      ``true``               at minute 0 of every hour
``daily``       ``"HH:MM"``            every day at that time
``weekly``      ``"DAY@HH:MM"``        every week on DAY (``monday`` ... ``sunday``)
``monthly``     ``"D@HH:MM"``          on day D (1-31) of every month; a month
                                       without day D: on its last day
==============  =====================  ===========================================

``before_surge_up = true`` is not a time: Surge reads it (see ``docs/snapshots.md``).
The other keys Bolt knows (``before_build``, ``on_file_changes``, ...) are left alone.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .._exceptions import BoltfileError

__all__ = ["TRIGGER_RANK", "ScheduleError", "SnapshotSchedule", "Trigger", "parse_triggers"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: When two triggers fall due at the same minute, one snapshot is taken, recorded under
#: the trigger of the longest period (its record says the most about why it exists).
TRIGGER_RANK = ("monthly", "weekly", "daily", "hourly")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class ScheduleError(BoltfileError, ValueError):
    """A ``[snapshots.triggers]`` value that cannot be scheduled.

    The message names the key, the value and what to write instead.
    """


@dataclass(frozen=True)
class Trigger:
    """One periodic trigger.

    Attributes
    ----------
    name
        ``hourly``, ``daily``, ``weekly`` or ``monthly``: the snapshot record's trigger.
    minute, hour
        The time of day (``hour`` is ignored by ``hourly``).
    weekday
        0 (Monday) to 6 (Sunday), for ``weekly``.
    day
        1 to 31, for ``monthly``.
    """

    name: str
    minute: int = 0
    hour: int = 0
    weekday: int = 0
    day: int = 1

    def next_after(self, now: datetime) -> datetime:
        """The first time strictly after ``now`` (aware; any zone) this trigger is due.

        Examples
        --------
        >>> Trigger("daily", hour=2).next_after(datetime(2026, 12, 7, 2, 0, tzinfo=UTC))
        datetime.datetime(2026, 12, 8, 2, 0, tzinfo=datetime.timezone.utc)
        """
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        now = now.astimezone(UTC)
        if self.name == "hourly":
            candidate = now.replace(minute=self.minute, second=0, microsecond=0)
            return candidate if candidate > now else candidate + timedelta(hours=1)
        if self.name == "monthly":
            year, month = now.year, now.month
            while True:
                candidate = self._in_month(year, month)
                if candidate > now:
                    return candidate
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        candidate = now.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        if self.name == "weekly":
            candidate += timedelta(days=(self.weekday - candidate.weekday()) % 7)
            return candidate if candidate > now else candidate + timedelta(days=7)
        return candidate if candidate > now else candidate + timedelta(days=1)

    def _in_month(self, year: int, month: int) -> datetime:
        last = calendar.monthrange(year, month)[1]
        return datetime(year, month, min(self.day, last), self.hour, self.minute,
                        tzinfo=UTC)


@dataclass(frozen=True)
class SnapshotSchedule:
    """The periodic triggers of a Boltfile, and whether Surge snapshots first.

    Attributes
    ----------
    triggers
        The periodic triggers (none: nothing is ever due).
    before_surge_up
        Surge snapshots a service's volumes before it recreates its containers.
    """

    triggers: tuple[Trigger, ...] = ()
    before_surge_up: bool = False

    def next_due(self, now: datetime) -> tuple[datetime, str] | None:
        """The next time strictly after ``now`` a snapshot is due, and its trigger.

        None when no periodic trigger is set. Triggers due at the same time give one
        snapshot, named after the longest period (:data:`TRIGGER_RANK`).
        """
        due = [(trigger.next_after(now), TRIGGER_RANK.index(trigger.name), trigger.name)
               for trigger in self.triggers]
        if not due:
            return None
        when, _, name = min(due)
        return when, name


def _time(key: str, text: str, path: str, shape: str, example: str) -> tuple[int, int]:
    match = _TIME.fullmatch(text)
    if match is None:
        raise ScheduleError(
            f"snapshots.triggers.{key} = {text!r} is not a time GhostPanel can schedule: "
            f'write "{shape}" with a 24-hour UTC time, e.g. {key} = "{example}"', path=path)
    return int(match.group(1)), int(match.group(2))


def _split(key: str, value: str, path: str, shape: str, example: str) -> tuple[str, str]:
    head, at, tail = value.partition("@")
    if not at:
        raise ScheduleError(
            f"snapshots.triggers.{key} = {value!r} has no '@': write \"{shape}\", "
            f'e.g. {key} = "{example}" (UTC)', path=path)
    return head.strip().lower(), tail


def parse_triggers(triggers: Mapping[str, Any] | None, *, path: str = "<string>"
                   ) -> SnapshotSchedule:
    """Read a ``[snapshots.triggers]`` table (None or ``{}``: an empty schedule).

    ``hourly = false``, an empty ``daily``/``weekly``/``monthly`` string and
    ``before_surge_up = false`` mean off.

    Raises
    ------
    ScheduleError
        A value of the wrong type or shape: the message names the key and what to write.

    Examples
    --------
    >>> parse_triggers({"daily": "02:00", "before_surge_up": True}).triggers
    (Trigger(name='daily', minute=0, hour=2, weekday=0, day=1),)
    """
    table = dict(triggers or {})
    found: list[Trigger] = []
    for key in ("hourly", "before_surge_up"):
        if key in table and not isinstance(table[key], bool):
            raise ScheduleError(f"snapshots.triggers.{key} = {table[key]!r} is not a "
                                f"boolean: write {key} = true or {key} = false", path=path)
    if table.get("hourly"):
        found.append(Trigger("hourly"))
    for key in ("daily", "weekly", "monthly"):
        value = table.get(key)
        if value is None or value == "":
            continue
        shape, example = {"daily": ("HH:MM", "02:00"), "weekly": ("DAY@HH:MM", "sunday@03:00"),
                          "monthly": ("D@HH:MM", "1@04:00")}[key]
        if not isinstance(value, str):
            raise ScheduleError(f"snapshots.triggers.{key} = {value!r} is not a string: "
                                f'write "{shape}", e.g. {key} = "{example}" (UTC)', path=path)
        if key == "daily":
            hour, minute = _time(key, value, path, shape, example)
            found.append(Trigger("daily", minute=minute, hour=hour))
            continue
        head, tail = _split(key, value, path, shape, example)
        hour, minute = _time(key, tail, path, shape, example)
        if key == "weekly":
            if head not in WEEKDAYS:
                raise ScheduleError(
                    f"snapshots.triggers.weekly = {value!r}: {head!r} is not a day of the "
                    f"week; write one of {', '.join(WEEKDAYS)} before the '@', e.g. "
                    f'weekly = "{example}"', path=path)
            found.append(Trigger("weekly", minute=minute, hour=hour,
                                 weekday=WEEKDAYS.index(head)))
        else:
            if not re.fullmatch(r"[0-9]{1,2}", head) or not 1 <= int(head) <= 31:
                raise ScheduleError(
                    f"snapshots.triggers.monthly = {value!r}: {head!r} is not a day of the "
                    f'month; write 1 to 31 before the \'@\', e.g. monthly = "{example}" '
                    "(a month without that day: its last day)", path=path)
            found.append(Trigger("monthly", minute=minute, hour=hour, day=int(head)))
    return SnapshotSchedule(tuple(found), bool(table.get("before_surge_up", False)))

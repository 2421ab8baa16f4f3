"""Times and durations as people write them: ``"1h"``, ``"30m"``, ISO 8601, datetimes.

The store keeps unix seconds (floats, UTC); these helpers turn what a caller, a URL
query or the command line gives into them.
"""

from __future__ import annotations

import re
import time as _time
from datetime import UTC, datetime, timedelta

__all__ = ["TimeLike", "parse_duration", "parse_time"]

#: What ``since``/``until`` accept.
TimeLike = datetime | float | int | str

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(value: float | int | str | timedelta) -> float:
    """Seconds in a duration: a number of seconds, a timedelta, or ``"90s"``, ``"5m"``,
    ``"1h"``, ``"7d"``, ``"2w"``.

    Raises
    ------
    ValueError
        The text is not one of those forms, or the duration is not positive.

    Examples
    --------
    >>> parse_duration("5m"), parse_duration(30), parse_duration("1.5h")
    (300.0, 30.0, 5400.0)
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            try:
                seconds = float(value)
            except ValueError:
                raise ValueError(f"not a duration: {value!r} (write e.g. 30s, 5m, 1h, 7d)"
                                 ) from None
        else:
            seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        raise ValueError(f"not a duration: {value!r}")
    if not seconds > 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def parse_time(value: TimeLike, *, now: float | None = None) -> float:
    """Unix seconds (UTC) of a moment given as a datetime, unix seconds, or text.

    Text is a duration *ago* (``"1h"`` = an hour before ``now``), a number of unix
    seconds, ISO 8601 (``"2026-12-07T10:00:00Z"``; without an offset it is UTC), or
    ``"now"``.

    Parameters
    ----------
    value
        The moment. A naive datetime is taken as UTC.
    now
        What ``"1h"`` is counted back from; the current time when None.

    Raises
    ------
    ValueError
        The text is none of those forms.

    Examples
    --------
    >>> parse_time("1h", now=10_000.0)
    6400.0
    >>> parse_time("1970-01-01T01:00:00Z")
    3600.0
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    text = value.strip()
    current = _time.time() if now is None else now
    if text.lower() == "now":
        return current
    if _DURATION.match(text):
        return current - parse_duration(text)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        # fromisoformat reads "Z" and most ISO 8601 forms since Python 3.11.
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {value!r} (write e.g. 1h, 30m, 7d, unix seconds "
                         f"or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()

"""The engines' timestamps, read in one place.

Podman and Docker write times as Go's ``time.RFC3339Nano`` does: up to 9 fraction
digits with the trailing zeros dropped (``.5Z``, ``.123456789Z``, none at all for a
whole second, which is all Podman 4.3 gives in logs), ``Z`` or a numeric offset
(Podman writes local time in some places: ``2026-11-28T01:10:37.07+01:00``), and Go's
zero time ``0001-01-01T00:00:00Z`` for "never" (a container never started, a stats
sample without an earlier reading).

Three readings, for three needs, and one writing (:func:`api_time`, the other way):

- :func:`engine_time`: an aware :class:`~datetime.datetime` (microseconds: Python's
  limit), to show a time or measure a duration;
- :func:`engine_time_ns`: nanoseconds since the epoch as an ``int``, exact, for
  arithmetic at the engine's precision (a stats sample's CPU %, ordering log lines);
- :func:`sortable_engine_time`: fixed-width UTC text whose string order is time order,
  for the log widget's hot path, which compares and slices it.

Empty text, ``None`` and anything that is not an engine time read as ``None``: the
caller decides what that means. So does Go's zero time, except as sortable text, where
it is the earliest time. They accept a little more than Go writes -- ``t`` or a space
for ``T``, ``z``, ``+hhmm``, more than 9 fraction digits (cut to 9), no zone at all
(UTC, as the engines mean it), spaces around -- but not the rest of ISO 8601 that
Python 3.11's :meth:`datetime.fromisoformat` takes (a date alone, ``HH:MM`` without
seconds, week dates, the basic format, a comma before the fraction, an hour-only
offset), which no engine writes.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeAlias

__all__ = ["Timestamp", "api_time", "api_time_ns", "engine_time", "engine_time_ns",
           "sortable_engine_time"]

#: A time given to GhostPanel (``since``, ``until``): seconds since the epoch, a
#: :class:`~datetime.datetime`, or text (seconds, RFC 3339, or a Go duration ago).
Timestamp: TypeAlias = int | float | str | datetime

# ASCII digits only: ``\d`` would also take other scripts' digits, which int() reads.
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:?\d\d)?",
                      re.ASCII)
_match = _RFC3339.fullmatch
# Go's zero time, 0001-01-01T00:00:00Z, is "never"; no engine time is from year 1.
_ZERO_YEAR = "0001-"


def _fields(value: object) -> tuple[str, str, str, str] | None:
    """``YYYY-MM-DD``, ``HH:MM:SS``, the fraction as 9 digits, and ``Z`` or the offset.

    Text, for :meth:`datetime.fromisoformat` to read: the fraction must stay out of it
    for nanoseconds (it cuts to microseconds) and go in it, cut to 6 digits, for a
    datetime (a ``replace(microsecond=...)`` afterwards costs more than the parse).
    Python 3.11's fromisoformat reads ``Z`` and ``+hhmm`` itself, but not ``z``.
    """
    if not isinstance(value, str):
        return None
    match = _match(value.strip())
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    return (day, clock, (fraction or "")[:9].ljust(9, "0"),
            "Z" if zone is None or zone == "z" else zone)


def engine_time(value: object) -> datetime | None:
    """An engine's time as an aware datetime; ``None`` for "never" or not a time.

    Parameters
    ----------
    value
        The engine's text (``State.StartedAt``, a stats ``read``, a log line's stamp);
        anything else reads as ``None``.

    Returns
    -------
    datetime or None
        In the stamp's own zone (a stamp without one is UTC). Nanoseconds are cut to
        microseconds, not rounded, as :meth:`datetime.fromisoformat` does, so that a
        time never moves past the engine's.

    Examples
    --------
    >>> engine_time("2026-11-28T00:10:37.372827174Z")
    datetime.datetime(2026, 11, 28, 0, 10, 37, 372827, tzinfo=datetime.timezone.utc)
    >>> engine_time("2026-11-28T01:10:37+01:00") == engine_time("2026-11-28T00:10:37Z")
    True
    >>> engine_time("0001-01-01T00:00:00Z") is None, engine_time("soon") is None
    (True, True)
    """
    fields = _fields(value)
    if fields is None or fields[0].startswith(_ZERO_YEAR):
        return None
    day, clock, nanos, zone = fields
    try:
        return datetime.fromisoformat(f"{day}T{clock}.{nanos[:6]}{zone}")
    except ValueError:  # month 13, hour 24, a leap second (Go never writes one)...
        return None


def engine_time_ns(value: object) -> int | None:
    """An engine's time in nanoseconds since the epoch; ``None`` for "never" or not a time.

    Exact: a float of seconds since the epoch resolves only about 0.24 µs today, which
    cannot tell apart two log lines of the same microsecond, and a datetime keeps
    microseconds only.

    Parameters
    ----------
    value
        The engine's text; anything else reads as ``None``.

    Returns
    -------
    int or None
        Nanoseconds since 1970-01-01T00:00:00Z (a stamp without a zone is UTC).

    Examples
    --------
    >>> engine_time_ns("1970-01-01T00:00:01.5Z")
    1500000000
    >>> engine_time_ns("1970-01-01T01:00:01.000000001+01:00")
    1000000001
    >>> engine_time_ns("0001-01-01T00:00:00Z") is None
    True
    """
    fields = _fields(value)
    if fields is None or fields[0].startswith(_ZERO_YEAR):
        return None
    day, clock, nanos, zone = fields
    try:
        whole = datetime.fromisoformat(f"{day}T{clock}{zone}")
    except ValueError:
        return None
    # Whole seconds only, so the float of timestamp() is exact (it is up to 2**53 s).
    return int(whole.timestamp()) * 1_000_000_000 + int(nanos)


def sortable_engine_time(stamp: str | None) -> str | None:
    """An engine's time as ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``; ``None`` if not a time.

    Fixed width and UTC, so comparing two as strings compares the times (Go's own
    stamps do not sort as text: ``.5Z`` comes after ``.25Z``). This is on the log
    widget's hot path (10,000 lines/s), so a UTC stamp is padded without being parsed,
    and one already in this form, as Docker writes most, is returned as it is, trusted
    as the engine wrote it; anything else is read fully.

    Parameters
    ----------
    stamp
        A log line's stamp, or any other engine time.

    Returns
    -------
    str or None
        The time in UTC with 9 fraction digits; Go's zero time reads as itself, the
        earliest time. ``None`` when ``stamp`` is not a time.

    Examples
    --------
    >>> sortable_engine_time("2024-05-01T10:00:00.5Z")
    '2024-05-01T10:00:00.500000000Z'
    >>> sortable_engine_time("2024-05-01T12:00:00.25+02:00")
    '2024-05-01T10:00:00.250000000Z'
    >>> sortable_engine_time("0001-01-01T00:00:00Z")
    '0001-01-01T00:00:00.000000000Z'
    """
    if stamp and len(stamp) >= 20 and stamp[-1] == "Z" and stamp[10] == "T":
        if len(stamp) == 30:  # 9 digits, as Docker writes 9 stamps in 10
            return stamp
        if len(stamp) == 20:  # whole seconds, as Podman 4.3 writes them
            return stamp[:19] + ".000000000Z"
        # 1 to 8 digits: pad to 9 (the "Z" follows the zeros); more take the full path.
        fraction = stamp[20:-1]
        if len(stamp) < 30 and stamp[19] == "." and fraction.isdigit() and fraction.isascii():
            return stamp[:-1] + "000000000Z"[len(stamp) - 21:]
    fields = _fields(stamp)
    if fields is None:
        return None
    day, clock, nanos, zone = fields
    try:
        whole = datetime.fromisoformat(f"{day}T{clock}{zone}")
        if zone != "Z":
            whole = whole.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: a local time past 9999 in UTC
        return None
    return f"{whole.isoformat()[:19]}.{nanos}Z"


# -- the other way: a time for the Engine API ---------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS = 1_000_000_000
# A Go duration, as ``docker logs --since 10m`` takes one: "1h30m", "1.5h", "300ms".
_GO_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+",
                          re.ASCII)
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_GO_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
             "s": _NS, "m": 60 * _NS, "h": 3600 * _NS}
_SECONDS_TEXT = re.compile(r"\d+(?:\.\d+)?", re.ASCII)


def api_time_ns(value: Timestamp, *, now: float | None = None) -> int:
    """A ``since``/``until`` value as nanoseconds since the epoch.

    Parameters
    ----------
    value
        - ``int`` or ``float``: seconds since the epoch;
        - :class:`~datetime.datetime`: an aware one as it says; a **naive one is local
          time**, as Python's own :meth:`datetime.timestamp` reads it, so that
          ``datetime.now() - timedelta(minutes=5)`` means five minutes ago;
        - text: seconds since the epoch (``"1700000000.5"``), an RFC 3339 time (one
          without a zone is UTC, as the engines write and read them), or a Go duration
          meaning that long ago (``"10m"``, ``"1h30m"``), as ``docker logs --since`` and
          ``--until`` take them.
    now
        The current time in seconds, for durations (tests); ``time.time()`` by default.

    Raises
    ------
    TypeError
        ``value`` is none of those types (a ``bool`` included).
    ValueError
        Text that is none of those forms, a time before 1970, NaN or infinity.

    Examples
    --------
    >>> api_time_ns(1.5)
    1500000000
    >>> api_time_ns("1970-01-01T00:00:02.000000001+00:00")
    2000000001
    >>> api_time_ns("1m", now=3600)
    3540000000000
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str, datetime)):
        raise TypeError(f"a time must be seconds, a datetime or text, not {value!r}")
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.astimezone()
        nanoseconds = (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    elif isinstance(value, int):
        nanoseconds = value * _NS
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a time must be a finite number of seconds, got {value!r}")
        # Through the float's shortest text, so 1.1 s is 1100000000 ns, not 1099999999.
        nanoseconds = int(Decimal(repr(value)) * _NS)
    else:
        nanoseconds = _text_ns(value.strip(), now)
    if nanoseconds < 0:
        raise ValueError(f"a time must not be before 1970, got {value!r}")
    return nanoseconds


def _text_ns(text: str, now: float | None) -> int:
    if _SECONDS_TEXT.fullmatch(text):
        return int(Decimal(text) * _NS)
    stamp = engine_time_ns(text)
    if stamp is not None:
        return stamp
    if _GO_DURATION.fullmatch(text):
        ago = sum(int(Decimal(number) * _GO_UNITS[unit])
                  for number, unit in _GO_PART.findall(text))
        current = time.time() if now is None else now
        return int(Decimal(repr(float(current))) * _NS) - ago
    raise ValueError(
        f"cannot read {text!r} as a time: give seconds since the epoch, an RFC 3339 time "
        "(2026-11-28T10:00:00Z) or a duration ago (10m, 1h30m)")


def api_time(value: Timestamp | None, *, now: float | None = None) -> str | None:
    """A ``since``/``until`` value as the Engine API takes it: ``seconds.nanoseconds``.

    The one conversion for every call that sends a time (logs, events...). Docker's
    daemon reads only this form (its CLI converts the others), Podman reads it too; it
    is exact to the nanosecond. ``None`` stays ``None`` (no bound). See
    :func:`api_time_ns` for the forms taken.

    Examples
    --------
    >>> api_time(datetime(2026, 11, 28, 0, 10, 37, 500000, tzinfo=UTC))
    '1795824637.500000000'
    >>> api_time(1700000000)
    '1700000000.000000000'
    >>> api_time(None) is None
    True
    """
    if value is None:
        return None
    nanoseconds = api_time_ns(value, now=now)
    return f"{nanoseconds // _NS}.{nanoseconds % _NS:09d}"

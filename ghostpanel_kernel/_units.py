"""Sizes and durations, read and written the way docker and podman do, in one place.

- :func:`parse_size`: ``"512m"``, ``"512Mi"``, ``"512MiB"``, ``"1.5g"`` -> bytes. Like
  ``docker run --memory`` and ``podman run --memory`` (go-units ``RAMInBytes``), every
  unit is a power of 1024 whatever its spelling: ``512m``, ``512MB`` and ``512MiB`` all
  mean 512 MiB.
- :func:`human_size`: bytes -> ``"2.131MB"`` (go-units ``HumanSize``: four significant
  digits), or ``"1.5 KiB"`` in binary units with a space, as the widgets show memory.
- :func:`parse_duration_ns`: Go's ``time.ParseDuration`` (``"1m30s"``, ``"500ms"``) ->
  nanoseconds, exact; healthcheck intervals and ``--since 10m`` read through it.
- :func:`format_duration_ns`: nanoseconds -> Go's ``Duration.String`` (``"1m30s"``), the
  inverse of the parser, to show a configured interval as it was written.
- :func:`human_duration`: seconds -> ``"About a minute"`` (go-units ``HumanDuration``),
  the approximate age ``docker ps`` and ``docker images`` print.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = [
    "format_duration_ns",
    "human_duration",
    "human_size",
    "parse_duration_ns",
    "parse_size",
]

# -- sizes ---------------------------------------------------------------------------

# go-units RAMInBytes: a number, at most one space, a unit letter, then an optional "i"
# and an optional "b" ("m", "mb", "mi", "mib"). ASCII digits only: \d would take other
# scripts' digits, which Decimal reads.
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([kmgtp])?(i)?(b)?", re.IGNORECASE | re.ASCII)
_SIZE_FACTORS: Final = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
                        "p": 1024**5}
_SIZE_HINT = "write e.g. 536870912, \"512m\", \"512Mi\", \"512MiB\" or \"2g\""


def parse_size(value: int | str) -> int:
    """Bytes from a size as ``docker run --memory`` takes it.

    The unit letter is one of ``k``, ``m``, ``g``, ``t``, ``p`` in either case, optionally
    followed by ``i`` and/or ``b``; a bare number, or one with only ``b``, is bytes. All
    units are binary, as docker and podman read memory sizes: ``512m`` = ``512MB`` =
    ``512Mi`` = ``512MiB`` = 536870912. A fraction of a byte is dropped.

    Parameters
    ----------
    value
        A size string, or a number of bytes (``int``) taken as it is.

    Returns
    -------
    int
        Bytes, 0 or more.

    Raises
    ------
    ValueError
        Not a size in one of these spellings, or a negative number.
    TypeError
        Neither an ``int`` nor a ``str`` (a ``bool`` included).

    Examples
    --------
    >>> parse_size("512m"), parse_size("512Mi"), parse_size("1.5 KiB"), parse_size("10b")
    (536870912, 536870912, 1536, 10)
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"a size is an int (bytes) or a string like '512m', "
                        f"not {type(value).__name__}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size must not be negative: {value}")
        return value
    match = _SIZE.fullmatch(value.strip())
    # "512i" is not a unit: "i" only follows a unit letter.
    if match is None or (match.group(3) and not match.group(2)):
        raise ValueError(f"cannot read the size {value!r}: {_SIZE_HINT}")
    factor = _SIZE_FACTORS[(match.group(2) or "").lower()]
    # Decimal, not float: "0.1g" must not come out one byte short.
    return int(Decimal(match.group(1)) * factor)


_DECIMAL_UNITS: Final = ("B", "kB", "MB", "GB", "TB", "PB")
_BINARY_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: float | None, *, binary: bool = False, space: bool = False) -> str:
    """A byte count with four significant digits and a unit, as ``docker`` prints it.

    Parameters
    ----------
    size
        Bytes; ``None`` (unknown) gives ``""``.
    binary
        Powers of 1024 (``KiB``, ``MiB``: memory, as ``docker stats`` shows it) instead
        of 1000 (``kB``, ``MB``: image and disk sizes, as ``docker images`` does).
    space
        A space between the number and the unit (``"1.5 KiB"``), for prose and widgets;
        without it, the compact form of the CLI's tables (``"1.5KiB"``).

    Examples
    --------
    >>> human_size(2131015), human_size(0), human_size(1536, binary=True)
    ('2.131MB', '0B', '1.5KiB')
    >>> human_size(20 * 1024**2, binary=True, space=True), human_size(None)
    ('20 MiB', '')
    """
    if size is None:
        return ""
    base = 1024.0 if binary else 1000.0
    units = _BINARY_UNITS if binary else _DECIMAL_UNITS
    value = float(size)
    unit = units[0]
    for unit in units:
        if abs(value) < base or unit == units[-1]:
            break
        value /= base
    return f"{value:.4g}{' ' if space else ''}{unit}"


# -- durations -----------------------------------------------------------------------

# Go's time.ParseDuration: one or more "<decimal><unit>", no spaces. Go also takes a sign;
# no GhostPanel duration (an interval, a time ago) can be negative, so none is read.
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)", re.ASCII)
_DURATION_NS: Final = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6,
                       "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_HINT = "write e.g. \"30s\", \"1m30s\", \"500ms\" or \"2h\""


def parse_duration_ns(value: str) -> int:
    """Nanoseconds from a duration as Go's ``time.ParseDuration`` reads it.

    Units: ``h``, ``m``, ``s``, ``ms``, ``us`` (or ``µs``), ``ns``; parts add up
    (``"1h30m"``), each may have a fraction (``"1.5s"``). ``"0"`` alone needs no unit.
    Docker's healthcheck intervals and ``--since 10m`` are read this way.

    Raises
    ------
    ValueError
        Not such a duration (a missing unit, a sign, spaces inside...).

    Examples
    --------
    >>> parse_duration_ns("1m30s"), parse_duration_ns("500ms"), parse_duration_ns("0")
    (90000000000, 500000000, 0)
    """
    text = value.strip()
    if text == "0":
        return 0
    total = Decimal(0)
    position = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        try:
            total += Decimal(match.group(1)) * _DURATION_NS[match.group(2)]
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            break
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"cannot read the duration {value!r}: {_DURATION_HINT}")
    return int(total)  # Go drops a fraction of a nanosecond


_STRING_UNITS: Final = (("h", 3600 * 10**9), ("m", 60 * 10**9))


def format_duration_ns(nanoseconds: int) -> str:
    """A duration as Go's ``Duration.String`` writes it: ``"1m30s"``, ``"1.5s"``, ``"0s"``.

    What :func:`parse_duration_ns` reads back to the same number: a configured interval
    shown as it was meant. Under a second it uses ``ms``, ``µs`` or ``ns``.

    Examples
    --------
    >>> format_duration_ns(90 * 10**9), format_duration_ns(1_500_000_000)
    ('1m30s', '1.5s')
    >>> format_duration_ns(3600 * 10**9), format_duration_ns(250_000_000)
    ('1h0m0s', '250ms')
    """
    sign = "-" if nanoseconds < 0 else ""
    left = abs(int(nanoseconds))
    if left == 0:
        return "0s"
    if left < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if left >= size:
                return f"{sign}{_fraction(left, size)}{unit}"
    text = ""
    for unit, size in _STRING_UNITS:
        if left >= size or text:
            count, left = divmod(left, size)
            text += f"{count}{unit}"
    return f"{sign}{text}{_fraction(left, 10**9)}s"


def _fraction(amount: int, unit: int) -> str:
    """``amount / unit`` exactly, without trailing zeros (Go prints no rounding)."""
    whole, rest = divmod(amount, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def human_duration(seconds: float) -> str:
    """A duration the way ``docker ps`` writes it (go-units ``HumanDuration``).

    Go truncates each unit toward zero, except hours, which are rounded; a negative
    duration (a clock a little ahead of the engine's) reads "Less than a second".

    Examples
    --------
    >>> human_duration(0.4), human_duration(75), human_duration(2 * 3600)
    ('Less than a second', 'About a minute', '2 hours')
    """
    whole_seconds = int(seconds)
    if whole_seconds < 1:
        return "Less than a second"
    if whole_seconds == 1:
        return "1 second"
    if whole_seconds < 60:
        return f"{whole_seconds} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"

"""Checks of call arguments the engine itself would answer with a 500, done first.

Podman answers a negative ``tail``, a negative stop timeout or an empty name with an
internal error (500) whose message names neither the argument nor the call, after the
request has gone out. Each check here raises :class:`ValueError` (or :class:`TypeError`
for the wrong type) naming the argument and what it accepts, before any request.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = [
    "WAIT_CONDITIONS",
    "check_count",
    "check_grace_period",
    "check_name",
    "check_port",
    "check_signal",
    "check_tail",
]

#: Object names as Podman and Docker accept them (``[a-zA-Z0-9][a-zA-Z0-9_.-]*``).
_NAME: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", re.ASCII)
#: ``SIGKILL``, ``KILL``, ``SIGRTMIN+3``; or a number.
_SIGNAL_NAME: Final = re.compile(r"(SIG)?[A-Z][A-Z0-9]*([+-][0-9]+)?",
                                 re.ASCII | re.IGNORECASE)
#: Linux's highest signal number (SIGRTMAX).
_MAX_SIGNAL: Final = 64

WaitCondition = Literal["not-running", "next-exit", "removed"]
WAIT_CONDITIONS: Final = frozenset({"not-running", "next-exit", "removed"})


def check_count(label: str, value: object, *, minimum: int = 0) -> int:
    """``value`` as an int of at least ``minimum``; ``TypeError``/``ValueError`` otherwise.

    Examples
    --------
    >>> check_count("tail", 5)
    5
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{label} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{label} must be {minimum} or more, got {value}")
    return value


def check_tail(tail: object) -> int | Literal["all"]:
    """A log ``tail``: ``"all"`` or a count of lines (0 or more)."""
    if tail == "all":
        return "all"
    if isinstance(tail, str):
        raise ValueError(f"tail must be 'all' or a number of lines, got {tail!r}")
    return check_count("tail", tail)


def check_grace_period(timeout: object) -> int | None:
    """Seconds ``stop``/``restart`` wait before SIGKILL: None (the engine's) or 0 or more."""
    return None if timeout is None else check_count("timeout", timeout)


def check_name(label: str, name: object, *, optional: bool = True) -> str | None:
    """A container, volume or network name the engines accept; None when ``optional``."""
    if name is None and optional:
        return None
    if not isinstance(name, str):
        raise TypeError(f"{label} must be a string, got {name!r}")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{label} {name!r} is not a valid name: it must start with a letter or digit, "
            "followed by letters, digits, '_', '.' or '-'")
    return name


def check_port(label: str, port: object) -> int:
    """A TCP/UDP port number, 1 to 65535 (an int or its digits)."""
    if isinstance(port, bool) or not (isinstance(port, int) or (
            isinstance(port, str) and port.isascii() and port.isdigit())):
        raise ValueError(f"{label} must be a number, got {port!r}")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"{label} must be 1-65535, got {port!r}")
    return number


def check_signal(signal: object) -> str | int:
    """A signal to send: a name (``SIGTERM``, ``TERM``, ``SIGRTMIN+3``) or 1 to 64."""
    if isinstance(signal, bool):
        raise TypeError(f"signal must be a name or a number, got {signal!r}")
    if isinstance(signal, int) or (isinstance(signal, str) and signal.isascii()
                                   and signal.isdigit()):
        if not 1 <= int(signal) <= _MAX_SIGNAL:
            raise ValueError(f"signal number must be 1-{_MAX_SIGNAL}, got {signal!r}")
        return signal
    if not isinstance(signal, str) or not _SIGNAL_NAME.fullmatch(signal):
        raise ValueError(f"signal must be a name such as 'SIGTERM' or a number, got {signal!r}")
    return signal

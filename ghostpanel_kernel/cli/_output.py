"""What the ``ghostpanel`` command prints: tables, JSON, sizes, ages, warnings and errors.

Errors become one line on stderr and an exit status, decided in one place
(:func:`exit_codes_for_errors`), each status carried by its exception class as click's own
exceptions do::

    0    success (``ps`` also when only some environments failed: each gets a warning)
    1    CommandError        an engine or GhostPanel error, a bad value
    2    click.UsageError    a bad option or argument (click's own), or a setting that
                             cannot work (GHOSTPANEL_DATABASE_URL, GHOSTPANEL_HOME, --home)
    3    EngineUnreachable   an engine could not be reached (socket absent, refused,
                             timeout) or the peer is not an engine
    130  interrupted         Ctrl-C, without a traceback (``surge apply``/``scale`` also
                             129 after SIGHUP and 143 after SIGTERM, once rolled back)
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import click

from .. import _units
from .._units import human_size  # the library's one byte formatter, for the commands
from ..engine import EngineConnectionError, GhostPanelError

__all__ = [
    "EXIT_INTERRUPTED",
    "CommandError",
    "EngineUnreachable",
    "command_error_for",
    "echo_json",
    "echo_json_line",
    "exit_codes_for_errors",
    "human_age",
    "human_size",
    "one_line",
    "render_table",
    "warn",
]

#: Exit status after Ctrl-C, as a shell reports a process killed by SIGINT.
EXIT_INTERRUPTED = 130

_COLUMN_GAP = "   "


# -- errors --------------------------------------------------------------------------


def one_line(text: str) -> str:
    """``text`` with its line breaks folded, so that an error is one line on stderr."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class CommandError(click.ClickException):
    """A command failed: shown as ``Error: <message>`` on stderr, exit status 1.

    Examples
    --------
    >>> CommandError("no such container").format_message()
    'no such container'
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message) or "unknown error")


class EngineUnreachable(CommandError):
    """An engine could not be reached: exit status 3, so scripts can retry later."""

    exit_code = 3


def command_error_for(error: BaseException) -> CommandError:
    """The :class:`CommandError` that reports ``error`` (its own words, one line).

    Examples
    --------
    >>> command_error_for(ValueError("bad label 'x'")).exit_code
    1
    """
    message = str(error) or type(error).__name__
    if isinstance(error, EngineConnectionError):
        return EngineUnreachable(message)
    return CommandError(message)


@contextlib.contextmanager
def exit_codes_for_errors() -> Iterator[None]:
    """Turn the errors an operator can act on into one-line messages and exit statuses.

    GhostPanel's errors, bad values (``ValueError``) and operating-system errors (a
    certificate file that does not exist, a data directory that cannot be written) are
    reported in their own words; Ctrl-C exits 130. Anything else is a bug and keeps its
    traceback.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        raise  # click reports a closed pipe itself (``ghostpanel ps | head``)
    except (GhostPanelError, ValueError, OSError) as error:
        raise command_error_for(error) from error


def warn(message: str) -> None:
    """Print ``Warning: <message>`` as one line on stderr."""
    click.echo(f"Warning: {one_line(message)}", err=True)


# -- tables --------------------------------------------------------------------------


def render_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns three spaces apart, as ``docker ps`` prints them.

    Examples
    --------
    >>> print(render_table(["NAME", "STATE"], [["web", "running"], ["db-primary", "exited"]]))
    NAME         STATE
    web          running
    db-primary   exited
    """
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells for {len(headers)} columns: {row}")
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [_COLUMN_GAP.join(cell.ljust(width) for cell, width in
                              zip(row, widths, strict=True)).rstrip()
             for row in [list(headers), *cells]]
    return "\n".join(lines)


# -- JSON ----------------------------------------------------------------------------


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (a listing's ``--json`` output)."""
    click.echo(json.dumps(data, indent=2, default=str))


def echo_json_line(data: Any) -> None:
    """Print ``data`` as one line of JSON (streams: events, pull progress, stats)."""
    click.echo(json.dumps(data, default=str))


# -- sizes and times -----------------------------------------------------------------

def human_age(timestamp: float, *, now: float | None = None) -> str:
    """How long ago ``timestamp`` (seconds since the epoch) was, as ``docker images``
    writes it: ``About a minute ago``, ``8 days ago`` (go-units ``HumanDuration``).

    Examples
    --------
    >>> human_age(1000.0, now=1300.0), human_age(0, now=86400.0 * 3)
    ('5 minutes ago', '3 days ago')
    """
    elapsed = (time.time() if now is None else now) - timestamp
    return f"{_units.human_duration(elapsed)} ago"

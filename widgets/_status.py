"""The status line every GhostPanel widget shows its errors in.

A widget shows an error in itself (a red message line), never only in the log
(docs/architecture.md, "Conventions"). :class:`StatusLine` is that line;
:meth:`StatusLine.reporting` wraps an action so that whatever it raises ends up there,
in the operator's words.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets
from traitlets import TraitError, Unicode, observe, validate

from ghostpanel_kernel.engine import GhostPanelError

__all__ = ["LEVELS", "StatusLine", "describe_error"]

_log = logging.getLogger("ghostpanel_widgets")

#: Level -> (colour, symbol as an HTML character reference). ``error`` is that red line.
LEVELS: dict[str, tuple[str, str]] = {
    "info": ("#555555", "&#x2139;"),
    "success": ("#1b7f3b", "&#x2714;"),
    "warning": ("#a15c00", "&#x26a0;"),
    "error": ("#b00020", "&#x2716;"),
}

# What an operator can act on: reported in its own words, without a traceback in the log.
_EXPECTED = (GhostPanelError, OSError, ValueError, KeyError)


def describe_error(error: BaseException) -> str:
    """``error`` as one line an operator can act on (its message, else its type).

    Examples
    --------
    >>> describe_error(KeyError("no service 'web' in Boltfile.toml"))
    "no service 'web' in Boltfile.toml"
    """
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])  # KeyError's str() adds quotes
    else:
        text = str(error)
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return text or type(error).__name__


class StatusLine(ipywidgets.HTML):
    """One line of text under a widget's toolbar: what happened, coloured by level.

    Parameters
    ----------
    message
        The text (plain text; it is escaped).
    level
        ``"info"``, ``"success"``, ``"warning"`` or ``"error"`` (red).

    Examples
    --------
    >>> line = StatusLine()
    >>> line.error("engine 'gpu-1' is unreachable")
    >>> line.level, line.message
    ('error', "engine 'gpu-1' is unreachable")
    >>> with line.reporting("Save"):
    ...     raise OSError(13, "Permission denied")
    >>> line.message
    'Save failed: [Errno 13] Permission denied'
    """

    message = Unicode("", help="The status text, plain (shown escaped).")
    level = Unicode("info", help="One of info, success, warning, error (red).")

    def __init__(self, message: str = "", level: str = "info", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("gp-status")
        self.set_trait("level", level)
        self.message = message
        self._render()

    @validate("level")
    def _valid_level(self, proposal: dict[str, Any]) -> str:
        level = str(proposal["value"])
        if level not in LEVELS:
            raise TraitError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        return level

    @observe("message", "level")
    def _render(self, change: dict[str, Any] | None = None) -> None:
        if not self.message:
            self.value = ""
            return
        colour, symbol = LEVELS[self.level]
        self.value = (f'<div class="gp-status-{self.level}" style="color: {colour}; '
                      f'white-space: pre-wrap">{symbol} {html.escape(self.message)}</div>')

    def show(self, message: str, level: str = "info") -> None:
        """Show ``message`` at ``level``."""
        with self.hold_trait_notifications():
            self.level = level
            self.message = message

    def info(self, message: str) -> None:
        """Show a neutral message."""
        self.show(message, "info")

    def success(self, message: str) -> None:
        """Show that something worked (green)."""
        self.show(message, "success")

    def warning(self, message: str) -> None:
        """Show a warning (orange)."""
        self.show(message, "warning")

    def error(self, message: str) -> None:
        """Show an error (red)."""
        self.show(message, "error")

    def clear(self) -> None:
        """Show nothing."""
        self.show("", "info")

    @contextmanager
    def reporting(self, action: str) -> Iterator[None]:
        """Show what the ``with`` block raises as ``"<action> failed: <error>"``.

        GhostPanel's own errors, OS errors and bad values are shown in their own words;
        anything else is a bug: it is shown too, with its type, and logged with its
        traceback. The exception does not propagate -- a widget callback has no caller
        that could show it.
        """
        try:
            yield
        except _EXPECTED as error:
            self.error(f"{action} failed: {describe_error(error)}")
        except Exception as error:
            self.error(f"{action} failed: {type(error).__name__}: {describe_error(error)}")
            _log.exception("%s failed", action)

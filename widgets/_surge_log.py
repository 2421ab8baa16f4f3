"""``SurgeRunLog``: the progress bar and the log a widget shows while Surge applies,
redeploys, destroys or adopts (the stacks page and the template gallery share it)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets

if TYPE_CHECKING:
    from ghostpanel_kernel.surge import SurgeProgress, SurgeResult

__all__ = ["SurgeRunLog"]


class SurgeRunLog:
    """A hidden progress bar and a log of the last ``limit`` lines, shown by ``begin``.

    Parameters
    ----------
    css_class
        The class of the log's ``<pre>`` (tests and styles find it by it).
    limit
        The most lines kept.
    """

    def __init__(self, css_class: str, *, limit: int) -> None:
        self._css_class = css_class
        self._limit = limit
        self.lines: list[str] = []
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1,
                                               description="Progress",
                                               layout=ipywidgets.Layout(display="none"))
        self.log_view = ipywidgets.HTML()

    def begin(self, what: str) -> None:
        """Show the bar at 0 and start the log with ``what...``."""
        self.lines = []
        self.add(what + "...")
        self.progress.bar_style = ""
        self.progress.value = 0
        self.progress.max = 1
        self.progress.layout.display = "flex"

    def step(self, progress: SurgeProgress) -> None:
        """Move the bar and log one of Surge's progress events."""
        self.progress.max = max(progress.total, 1)
        self.progress.value = min(progress.step, self.progress.max)
        self.add(f"{progress.environment}: {progress.message}")

    def end(self, result: SurgeResult, done: str = "") -> None:
        """Colour the bar by ``result`` and log its summary (each line after ``done: ``
        when given), conclusion and warnings."""
        self.progress.bar_style = "success" if result.ok else "danger"
        if result.ok:
            self.progress.value = self.progress.max
        summary = result.summary()
        self.add(*(f"{done}: {line}" for line in summary) if done else summary,
                 *result.conclusion(), *result.warnings)

    def add(self, *lines: str) -> None:
        """Append ``lines`` to the log, keeping the last ``limit``."""
        self.lines = [*self.lines, *lines][-self._limit:]
        self.log_view.value = (
            f'<pre class="{self._css_class}" style="max-height: 14em; overflow: auto; '
            f'line-height: 1.3; margin: 4px 0">{html.escape(chr(10).join(self.lines))}</pre>')

    def clear(self) -> None:
        """Hide the bar and empty the log."""
        self.progress.layout.display = "none"
        self.lines = []
        self.log_view.value = ""

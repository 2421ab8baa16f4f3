"""``MetricsChart``: metrics history as Bokeh charts, one per metric, a line per container.

Used by the fleet-health dashboard, the notebooks and the container page. The rows
come from :func:`ghostpanel_kernel.metrics.history` (an agent's store, or this
machine's), or from a frame the caller already holds (:meth:`MetricsChart.show`). The
charts are built by :func:`history_figures`, which a notebook can also call to put the
same charts in an HTML report (``bokeh.embed.file_html`` with inline resources).

Counters (``*_total``) are drawn as rates per second (the difference of two samples
over their time apart, a restart's drop left out): a cumulative line only ever
climbs and says little. Bytes get a byte axis. Charts share the time axis, so zooming
one zooms all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import ipywidgets
from traitlets import Int, TraitError, Unicode, validate

from ghostpanel_kernel.metrics import COUNTERS

from ._base import TaskBox
from ._live_table import running_loop
from ._panel import load_panel
from ._status import StatusLine
from ._targets import PALETTE

if TYPE_CHECKING:
    import pandas as pd
    from bokeh.plotting import figure as Figure

    from ghostpanel_kernel.engine import Environment
    from ghostpanel_kernel.environments import EnvironmentSpec

__all__ = ["DEFAULT_METRICS", "SINCE_CHOICES", "MetricsChart", "chart_series",
           "history_figures"]

_log = logging.getLogger("ghostpanel_widgets")

#: What a chart shows unless told otherwise.
DEFAULT_METRICS: Final = ("cpu_cores", "memory_working_set_bytes")
#: The window selector's choices.
SINCE_CHOICES: Final = ("15m", "1h", "6h", "1d", "7d", "30d")
_TITLES: Final = {
    "cpu_cores": ("CPU", "cores"),
    "cpu_usage_seconds_total": ("CPU", "cores"),
    "memory_working_set_bytes": ("Memory (working set)", "bytes"),
    "memory_usage_bytes": ("Memory (usage)", "bytes"),
    "memory_limit_bytes": ("Memory limit", "bytes"),
    "network_receive_bytes_total": ("Network received", "bytes/s"),
    "network_transmit_bytes_total": ("Network sent", "bytes/s"),
    "fs_reads_bytes_total": ("Disk reads", "bytes/s"),
    "fs_writes_bytes_total": ("Disk writes", "bytes/s"),
    "pids": ("Processes", "pids"),
}


def chart_series(frame: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame]:
    """One metric's lines: label (``container`` or ``environment/container`` when the
    frame spans several environments) -> ``time`` (naive UTC, as Bokeh wants) and
    ``value`` (a counter's rate per second).

    Examples
    --------
    >>> chart_series(frame, "cpu_cores")["web"].value.max()          # doctest: +SKIP
    """
    import pandas as pd

    part = frame[frame["metric"] == metric]
    several = part["environment"].nunique() > 1
    lines: dict[str, pd.DataFrame] = {}
    for (environment, container), rows in part.groupby(
            [part["environment"].astype(str), part["container"].astype(str)], sort=True):
        rows = rows.sort_values("time")
        times, values = rows["time"], rows["value"].astype("float64")
        if metric in COUNTERS:
            seconds = times.diff().dt.total_seconds()
            values = values.diff() / seconds
            # A restart starts the counter again at zero: that drop is no rate.
            keep = (seconds > 0) & (values >= 0)
            times, values = times[keep], values[keep]
        label = f"{environment}/{container}" if several else str(container)
        lines[label] = pd.DataFrame({"time": times.dt.tz_convert(None).to_numpy(),
                                     "value": values.to_numpy()})
    return lines


def history_figures(frame: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS, *,
                    height: int = 240) -> list[Figure]:
    """A Bokeh figure per metric of ``frame`` (tidy), a line per container, the time
    axis shared."""
    from bokeh.models import DataRange1d, NumeralTickFormatter
    from bokeh.plotting import figure

    figures: list[Figure] = []
    shared_x: Any = None
    for metric in metrics:
        title, unit = _TITLES.get(metric, (metric, ""))
        if metric in COUNTERS and not unit.endswith("/s"):
            unit = f"{unit}/s"
        options: dict[str, Any] = {"x_range": shared_x} if shared_x is not None else {}
        chart = figure(title=title, x_axis_type="datetime", height=height,
                       sizing_mode="stretch_width", y_axis_label=unit,
                       y_range=DataRange1d(start=0),
                       tools="pan,xwheel_zoom,box_zoom,reset,save", **options)
        shared_x = chart.x_range
        if "bytes" in unit:
            chart.yaxis.formatter = NumeralTickFormatter(format="0.[0] b")
        lines = chart_series(frame, metric)
        for index, (label, data) in enumerate(lines.items()):
            chart.line(data["time"].to_numpy(), data["value"].to_numpy(),
                       color=PALETTE[index % len(PALETTE)],
                       line_width=2, legend_label=label)
        if lines:
            chart.legend.location = "top_left"
            chart.legend.click_policy = "hide"
            chart.legend.label_text_font_size = "9pt"
            chart.legend.background_fill_alpha = 0.6
        else:
            chart.title = f"{title}: no samples in this window"
        figures.append(chart)
    return figures


class MetricsChart(TaskBox):
    """History charts of containers, from the metrics store or an agent.

    Parameters
    ----------
    source
        An environment, a spec, a registered name, or several (the fleet-wide
        history); None to show only frames given to :meth:`show`.
    containers
        Only these containers (names); all when None.
    metrics
        The metrics charted, one chart each.
    since
        The window: ``15m``, ``1h``, ``6h``, ``1d``, ``7d`` or ``30d`` (the selector).
    step
        Resample to this step (``"1m"``...), '' for the stored resolution.
    frame
        A tidy history to show at once instead of reading one.

    Examples
    --------
    >>> chart = MetricsChart(env, ["web"], since="6h")                   # doctest: +SKIP
    >>> chart                                                            # doctest: +SKIP
    >>> chart.frame.wide().describe()                                    # doctest: +SKIP
    """

    since = Unicode("1h", help="The window charted (15m, 1h, 6h, 1d, 7d, 30d)."
                    ).tag(sync=True)
    step = Unicode("", help="Resample to this step ('1m'...); '' for the stored "
                            "resolution.").tag(sync=True)
    lines = Int(0, read_only=True, help="Lines drawn, over every chart.").tag(sync=True)

    #: The same Bokeh figures without a widget, for a report or an HTML export:
    #: ``MetricsChart.history_figures(frame, metrics)`` (:func:`history_figures`).
    history_figures = staticmethod(history_figures)

    def __init__(self, source: Environment | EnvironmentSpec | str |
                 Iterable[Environment | EnvironmentSpec | str] | None = None,
                 containers: str | Iterable[str] | None = None, *,
                 metrics: Sequence[str] = DEFAULT_METRICS, since: str = "1h",
                 step: str | None = None, frame: pd.DataFrame | None = None,
                 height: int = 240, **kwargs: Any) -> None:
        pn = load_panel()
        self.source = source
        self.containers = [containers] if isinstance(containers, str) else \
            (list(containers) if containers is not None else None)
        self.metrics = tuple(metrics)
        self.height = height
        self.frame: pd.DataFrame | None = None
        self.figures: list[Figure] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

        self.status = StatusLine()
        self.since_picker = ipywidgets.Dropdown(description="last",
                                                options=list(SINCE_CHOICES),
                                                layout=ipywidgets.Layout(width="140px"),
                                                style={"description_width": "30px"})
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self._pane = pn.pane.Bokeh(self._layout([]), sizing_mode="stretch_width")
        self.chart = pn.ipywidget(self._pane)
        self.chart.layout.width = "100%"  # its own Layout: a new one would stay open
        super().__init__(**kwargs)
        self.add_class("gp-metrics-chart")
        self.since = since
        self.step = step or ""
        ipywidgets.link((self, "since"), (self.since_picker, "value"))
        self.observe(lambda _: self.reload(), ["since", "step"])
        self.refresh_button.on_click(lambda _: self.reload())
        # A chart of a given frame has no window to change: its toolbar is hidden (but
        # in the tree, so that close() closes it too).
        toolbar = ipywidgets.HBox([self.since_picker, self.refresh_button],
                                  layout=ipywidgets.Layout(
                                      display="none" if source is None else "flex"))
        self.children = [toolbar, self.status, self.chart]
        if frame is not None:
            self.show(frame)
        else:
            self.reload()

    @validate("since")
    def _valid_since(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value not in SINCE_CHOICES:
            raise TraitError(f"since must be one of {', '.join(SINCE_CHOICES)}, "
                             f"not {value!r}")
        return value

    def _layout(self, figures: list[Figure]) -> Any:
        from bokeh.layouts import column
        from bokeh.plotting import figure

        if not figures:  # Bokeh needs something to draw before the first read
            figures = [figure(height=60, sizing_mode="stretch_width", toolbar_location=None,
                              title="reading the history...")]
        return column(*figures, sizing_mode="stretch_width")

    def show(self, frame: pd.DataFrame) -> None:
        """Chart ``frame`` (tidy: time, environment, container, metric, value)."""
        if self._closed:
            return
        self.frame = frame
        self.figures = history_figures(frame, self.metrics, height=self.height)
        self._pane.object = self._layout(self.figures)
        self.set_trait("lines", sum(len(f.renderers) for f in self.figures))

    def reload(self) -> asyncio.Task[Any] | None:
        """Read the history again in a task (what the selector and Refresh do)."""
        if self._closed or self.source is None:
            return None
        if running_loop("Reading the metrics history", self.status) is None:
            return None
        return self._spawn(self.refresh())

    async def refresh(self) -> pd.DataFrame | None:
        """Read the window's history and chart it; None (the error shown) on failure."""
        from ghostpanel_kernel.metrics._history import history

        if self.source is None:
            return None
        with self.status.reporting("Reading the metrics history"):
            frame = await history(self.source, self.containers, since=self.since,
                                  step=self.step or None, metrics=list(self.metrics))
            self.show(frame)
            failures = getattr(frame, "failures", {})
            if failures:
                self.status.warning("No history from " + "; ".join(
                    f"{name}: {why}" for name, why in failures.items()))
            elif frame.empty:
                self.status.info(f"No samples in the last {self.since}: is an agent or "
                                 "`ghostpanel metrics collect` sampling?")
            else:
                self.status.clear()
            return frame
        return None

    async def wait_idle(self) -> None:
        """Wait for the reads started so far."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

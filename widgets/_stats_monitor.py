"""``StatsMonitor``: live CPU, memory, network and block-IO charts for containers.

Layout, top to bottom: the interval selector, the status line, then four Bokeh charts
(CPU %, memory, network rx/tx per second, block read/write per second) with one line
per container and a legend, shown through Panel (``pn.pane.Bokeh`` inside
``pn.ipywidget``) so that they live in ipywidgets layouts in JupyterLab and Voila.

How it samples:

- every ``interval`` seconds one *one-shot* stats request per container, all containers
  concurrently (at most ``concurrency`` at a time). Podman's *streaming* stats send a
  sample only every 5 s, whatever interval was chosen, so the monitor does not use them;
- CPU %, network and block-IO rates are the counters' deltas between this sample and
  the previous one of the same container, over the engine's own sample times (one
  request per tick; the first sample of a container takes two readings, ``cpu_window``
  apart). CPU % is the engine library's
  :meth:`~ghostpanel_kernel.engine.StatsSample.cpu_percent_since`, in percent of one
  CPU as ``docker stats`` shows it, right on Podman too;
- each container keeps the last ``window`` samples (a bounded ``deque``), and each
  chart's data is replaced by a new dict of that window per tick: Bokeh's
  ``ColumnDataSource.stream()`` through ``BokehModel`` loses early ticks and doubles
  data with the browser's echo (docs/jupyter-facts.md), a whole new ``data`` does not;
- a container or engine that fails is said in the status line, the others go on; the
  next tick tries again, so an engine that comes back is charted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Float, Int, TraitError, observe, validate

from ghostpanel_kernel.engine import (
    Container,
    Environment,
    GhostPanelError,
    NotFound,
    StatsSample,
)
from ghostpanel_kernel.engine._times import engine_time_ns

from ._panel import load_panel
from ._status import StatusLine, describe_error
from ._targets import PALETTE, container_targets, target_labels

if TYPE_CHECKING:
    import pandas
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure as Figure

__all__ = ["StatsMonitor", "StatsPoint"]

_log = logging.getLogger("ghostpanel_widgets")

#: Choices of the interval selector, in seconds (a custom ``interval`` is added to them).
INTERVALS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_MIN_INTERVAL = 0.1
#: The chart columns, in the order of :class:`StatsPoint`.
_COLUMNS = ("time", "cpu", "memory", "memory_percent", "net_rx", "net_tx", "block_read",
            "block_write")

@dataclass(frozen=True)
class StatsPoint:
    """One charted point of one container, derived from a :class:`StatsSample`.

    Attributes
    ----------
    time
        Milliseconds since the epoch (Bokeh's datetime axis unit), the engine's time.
    cpu
        CPU % (of one CPU) since the previous sample
        (:meth:`~ghostpanel_kernel.engine.StatsSample.cpu_percent_since`). NaN after the
        CPU counter went backwards (the container restarted).
    memory, memory_percent
        Bytes in use, and percent of the limit.
    net_rx, net_tx, block_read, block_write
        Bytes per second since the previous sample; NaN for the first sample and after
        a counter went backwards (the container restarted).
    """

    time: float
    cpu: float
    memory: float
    memory_percent: float
    net_rx: float
    net_tx: float
    block_read: float
    block_write: float


def _sample_seconds(sample: StatsSample) -> float:
    """The engine's time of the sample (epoch seconds); now when it gave none."""
    nanoseconds = engine_time_ns(sample.read)
    return time.time() if nanoseconds is None else nanoseconds / 1e9


def _rate(now: int, before: int, seconds: float) -> float:
    if seconds <= 0 or now < before:
        return math.nan
    return (now - before) / seconds


def derive_point(sample: StatsSample, previous: StatsSample | None) -> StatsPoint:
    """The charted point of ``sample``: CPU % and rates from the counters' change since
    ``previous`` (without one: the sample's own CPU %, and no rates)."""
    seconds = _sample_seconds(sample)
    if previous is None:
        cpu = sample.cpu_percent
        rx = tx = read = write = math.nan
    else:
        cpu = sample.cpu_percent_since(previous)
        elapsed = seconds - _sample_seconds(previous)
        rx = _rate(sample.net_rx, previous.net_rx, elapsed)
        tx = _rate(sample.net_tx, previous.net_tx, elapsed)
        read = _rate(sample.block_read, previous.block_read, elapsed)
        write = _rate(sample.block_write, previous.block_write, elapsed)
    return StatsPoint(time=seconds * 1000.0, cpu=cpu,
                      memory=float(sample.memory_usage), memory_percent=sample.memory_percent,
                      net_rx=rx, net_tx=tx, block_read=read, block_write=write)


@dataclass
class _Series:
    """One monitored container: its samples, points and chart data."""

    environment: Environment
    name: str
    label: str
    colour: str
    window: int
    container: Container | None = None
    samples: deque[StatsSample] = field(default_factory=deque)
    points: deque[StatsPoint] = field(default_factory=deque)
    error: str = ""

    def __post_init__(self) -> None:
        self.resize(self.window)

    def resize(self, window: int) -> None:
        self.window = window
        self.samples = deque(self.samples, maxlen=window)
        self.points = deque(self.points, maxlen=window)

    def data(self) -> dict[str, Any]:
        """The window as a ``ColumnDataSource.data`` dict (all columns one length, of
        floats)."""
        columns: dict[str, list[float]] = {name: [] for name in _COLUMNS}
        for point in self.points:
            for name in _COLUMNS:
                columns[name].append(getattr(point, name))
        return columns


class StatsMonitor(ipywidgets.VBox):
    """Live resource charts (CPU, memory, network, block IO) of one or more containers.

    Parameters
    ----------
    target
        An :class:`~ghostpanel_kernel.engine.Environment` (then name the containers in
        ``containers``), or a list of ``(environment, container)`` pairs across engines.
    containers
        A container name (or id), or a list of them, on ``target``.
    interval
        Seconds between two samples (the selector offers 1 s to 1 min).
    window
        Samples kept and charted per container (the charts span ``window * interval``
        seconds).
    concurrency
        The most stats requests in flight at once.
    cpu_window
        Seconds between the two readings of a container's first sample (CPU % needs two).
    start
        Start sampling at once when an event loop runs (a Jupyter kernel's); otherwise
        call :meth:`start` in one, or :meth:`sample_once` yourself.

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> env = connect("unix:///run/podman/podman.sock", name="laptop")  # doctest: +SKIP
    >>> monitor = StatsMonitor(env, ["web", "db"], interval=2, window=90)  # doctest: +SKIP
    >>> monitor                                                          # doctest: +SKIP
    >>> monitor.frame().groupby("container").cpu_percent.mean()         # doctest: +SKIP
    """

    interval = Float(2.0, help="Seconds between two samples.").tag(sync=True)
    window = Int(60, help="Samples kept and charted per container.").tag(sync=True)
    concurrency = Int(8, help="The most stats requests in flight at once.")

    def __init__(self, target: Environment | Iterable[tuple[Environment, str]],
                 containers: str | Iterable[str] | None = None, *, interval: float = 2.0,
                 window: int = 60, concurrency: int = 8, cpu_window: float = 0.5,
                 start: bool = True, **kwargs: Any) -> None:
        pn = load_panel()
        targets = container_targets(target, containers)
        labels = target_labels(targets)
        self._series = [
            _Series(environment, name, label, PALETTE[index % len(PALETTE)],
                    max(int(window), 1))
            for index, ((environment, name), label) in enumerate(zip(targets, labels,
                                                                     strict=True))]
        self._cpu_window = cpu_window
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self._last_tick = ""
        self._sampling = asyncio.Lock()

        self.status = StatusLine()
        self.interval_picker = ipywidgets.Dropdown(
            description="every", options=self._interval_options(interval), value=interval,
            tooltip="Seconds between two samples", layout=ipywidgets.Layout(width="160px"),
            style={"description_width": "40px"})
        self.sources: dict[str, ColumnDataSource] = {}
        self.figures: dict[str, Figure] = {}
        self._pane = pn.pane.Bokeh(self._build_charts(), sizing_mode="stretch_width")
        self.chart = pn.ipywidget(self._pane)
        self.chart.layout.width = "100%"  # a new Layout would leave the first one open

        super().__init__(**kwargs)
        self.add_class("gp-stats-monitor")
        self.interval = interval
        self.window = window
        self.concurrency = concurrency
        self.interval_picker.observe(self._picker_changed, "value")
        self.children = [ipywidgets.HBox([self.interval_picker]), self.status, self.chart]

        if start:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.status.info("Not started: sampling needs a running asyncio event loop "
                                 "(a Jupyter kernel has one); call `monitor.start()` in one.")
            else:
                self._task = loop.create_task(self._run(), name="StatsMonitor")

    # -- traits
    @validate("interval")
    def _valid_interval(self, proposal: dict[str, Any]) -> float:
        seconds = float(proposal["value"])
        if not seconds >= _MIN_INTERVAL:
            raise TraitError(f"interval must be at least {_MIN_INTERVAL} s, not {seconds}")
        return seconds

    @validate("window", "concurrency")
    def _valid_count(self, proposal: dict[str, Any]) -> int:
        count = int(proposal["value"])
        if count < 1:
            raise TraitError(f"{proposal['trait'].name} must be 1 or more, not {count}")
        return count

    @observe("interval")
    def _interval_changed(self, change: dict[str, Any]) -> None:
        seconds = change["new"]
        picker = self.interval_picker
        if picker.value != seconds:
            if seconds not in [value for _, value in picker.options]:
                picker.options = self._interval_options(seconds)
            picker.value = seconds
        self._wake.set()  # a sleeping loop takes the new interval now

    def _picker_changed(self, change: dict[str, Any]) -> None:
        if change["new"] is not None and change["new"] != self.interval:
            self.interval = change["new"]

    @observe("window")
    def _window_changed(self, change: dict[str, Any]) -> None:
        for series in self._series:
            series.resize(change["new"])
        self._push()

    @staticmethod
    def _interval_options(current: float) -> list[tuple[str, float]]:
        values = sorted({*INTERVALS, float(current)})
        return [(f"{value:g} s" if value < 60 else f"{value / 60:g} min", value)
                for value in values]

    # -- charts
    def _build_charts(self) -> Any:
        from bokeh.layouts import gridplot
        from bokeh.models import ColumnDataSource, DataRange1d, NumeralTickFormatter
        from bokeh.plotting import figure

        specs = {"cpu": ("CPU", "% of one CPU"), "memory": ("Memory", "bytes"),
                 "network": ("Network", "bytes/s"), "block": ("Block IO", "bytes/s")}
        for key, (title, unit) in specs.items():
            chart = figure(title=title, x_axis_type="datetime", height=220,
                           sizing_mode="stretch_width", y_axis_label=unit,
                           y_range=DataRange1d(start=0),
                           tools="pan,wheel_zoom,box_zoom,reset,save")
            if unit != "% of one CPU":
                chart.yaxis.formatter = NumeralTickFormatter(format="0.[0] b")
            self.figures[key] = chart
        for series in self._series:
            source = ColumnDataSource(data=series.data(), name=series.label)
            self.sources[series.label] = source
            colour, label = series.colour, series.label
            self.figures["cpu"].line("time", "cpu", source=source, color=colour,
                                     line_width=2, legend_label=label)
            self.figures["memory"].line("time", "memory", source=source, color=colour,
                                        line_width=2, legend_label=label)
            for key, (first, second) in (("network", ("net_rx", "net_tx")),
                                         ("block", ("block_read", "block_write"))):
                first_name = "rx" if key == "network" else "read"
                second_name = "tx" if key == "network" else "write"
                self.figures[key].line("time", first, source=source, color=colour,
                                       line_width=2, legend_label=f"{label} {first_name}")
                self.figures[key].line("time", second, source=source, color=colour,
                                       line_width=2, line_dash="dashed",
                                       legend_label=f"{label} {second_name}")
        for chart in self.figures.values():
            chart.legend.location = "top_left"
            chart.legend.click_policy = "hide"
            chart.legend.label_text_font_size = "9pt"
            chart.legend.background_fill_alpha = 0.6
        figures = self.figures
        return gridplot([[figures["cpu"], figures["memory"]],
                         [figures["network"], figures["block"]]],
                        sizing_mode="stretch_width", toolbar_location="right")

    def _push(self) -> None:
        """Give each chart source its window as a new ``data`` dict."""
        for series in self._series:
            source = self.sources.get(series.label)
            if source is not None:
                source.data = series.data()

    # -- sampling
    @property
    def samples(self) -> dict[str, list[StatsSample]]:
        """Each container's samples in the window, oldest first (by label)."""
        return {series.label: list(series.samples) for series in self._series}

    @property
    def points(self) -> dict[str, list[StatsPoint]]:
        """Each container's charted points in the window, oldest first (by label)."""
        return {series.label: list(series.points) for series in self._series}

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The sampling loop, while it runs."""
        return self._task

    def start(self) -> None:
        """Start sampling every :attr:`interval` seconds (needs a running event loop).

        Does nothing when already sampling.
        """
        if self._closed:
            raise RuntimeError("this StatsMonitor is closed; make a new one")
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="StatsMonitor")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            began = loop.time()
            self._wake.clear()
            await self.sample_once()
            remaining = self.interval - (loop.time() - began)
            if remaining > 0 and not self._wake.is_set():
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that comes
                # while the event is being set (an interval picked just before close),
                # and the loop would never end.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._wake.wait()

    async def sample_once(self) -> list[StatsSample]:
        """Sample every container once (concurrently) and update the charts.

        Failures do not raise: each is shown in the status line and that container is
        tried again on the next sample.

        Returns
        -------
        list of StatsSample
            The new samples, one per container that answered.
        """
        async with self._sampling:  # a manual call and the loop never overlap
            limit = asyncio.Semaphore(self.concurrency)
            results = await asyncio.gather(*(self._sample(series, limit)
                                             for series in self._series))
            if self._closed:
                return []
            self._push()
            self._last_tick = datetime.now(UTC).astimezone().strftime("%H:%M:%S")
            self._show_status()
            return [sample for sample in results if sample is not None]

    async def _sample(self, series: _Series, limit: asyncio.Semaphore) -> StatsSample | None:
        async with limit:
            try:
                if series.container is None:
                    series.container = await series.environment.containers.get(series.name)
                container = series.container
                if series.samples:
                    previous = series.samples[-1]
                else:  # a first sample: two readings, to have deltas at once
                    previous = await container.stats(cpu_window=0)
                    await asyncio.sleep(self._cpu_window)
                sample = await container.stats(cpu_window=0)
            except GhostPanelError as error:
                if isinstance(error, NotFound):
                    series.container = None  # it may be re-created under the same name
                    series.error = (f"{series.label}: no such container on "
                                    f"{series.environment.name}")
                else:
                    series.error = f"{series.label}: {describe_error(error)}"
                return None
            except Exception as error:  # a bug: shown and logged, the others go on
                series.error = (f"{series.label}: {type(error).__name__}: "
                                f"{describe_error(error)}")
                _log.exception("StatsMonitor sample of %s failed", series.label)
                return None
            series.error = ""
            point = derive_point(sample, previous)
            # The samples say what the charts show: CPU % since the previous sample, not
            # over the sample's own (on Podman: empty) window.
            sample = dataclasses.replace(sample, cpu_percent=point.cpu)
            series.points.append(point)
            series.samples.append(sample)
            return sample

    def _show_status(self) -> None:
        errors = [series.error for series in self._series if series.error]
        if errors:
            self.status.error("; ".join(errors))
            return
        names = ", ".join(series.label for series in self._series)
        self.status.info(f"Sampling {names} every {self.interval:g} s; last sample at "
                         f"{self._last_tick}.")

    # -- data
    def frame(self) -> pandas.DataFrame:
        """The samples in the window as a pandas DataFrame, one row per container and
        sample, sorted by time.

        Columns: ``time`` (UTC), ``environment``, ``container`` (its label),
        ``cpu_percent``, ``memory_usage``, ``memory_limit``, ``memory_percent``,
        ``net_rx``, ``net_tx``, ``block_read``, ``block_write`` (counters, bytes),
        ``net_rx_rate``, ``net_tx_rate``, ``block_read_rate``, ``block_write_rate``
        (bytes per second), ``pids``.
        """
        import pandas as pd

        rows = []
        for series in self._series:
            for sample, point in zip(series.samples, series.points, strict=True):
                rows.append({
                    "time": pd.Timestamp(point.time, unit="ms", tz="UTC"),
                    "environment": series.environment.name, "container": series.label,
                    "cpu_percent": sample.cpu_percent, "memory_usage": sample.memory_usage,
                    "memory_limit": sample.memory_limit,
                    "memory_percent": sample.memory_percent, "net_rx": sample.net_rx,
                    "net_tx": sample.net_tx, "block_read": sample.block_read,
                    "block_write": sample.block_write, "net_rx_rate": point.net_rx,
                    "net_tx_rate": point.net_tx, "block_read_rate": point.block_read,
                    "block_write_rate": point.block_write, "pids": sample.pids})
        columns = ["time", "environment", "container", "cpu_percent", "memory_usage",
                   "memory_limit", "memory_percent", "net_rx", "net_tx", "block_read",
                   "block_write", "net_rx_rate", "net_tx_rate", "block_read_rate",
                   "block_write_rate", "pids"]
        table = pd.DataFrame(rows, columns=columns)
        return table.sort_values("time", kind="stable").reset_index(drop=True)

    # -- lifecycle
    def close(self) -> None:
        """Stop sampling and close the widget and its parts."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        for widget in (*self.children[0].children, *self.children):
            widget.close()
        super().close()

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the sampling loop has ended."""
        task = self._task
        self.close()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

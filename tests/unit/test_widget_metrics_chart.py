"""``MetricsChart`` without a browser: its Bokeh lines from a tidy frame (counters as
rates, a restart's drop left out), from a local store through ``metrics.history``,
and a failing environment in the status line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from ghostpanel_widgets import MetricsChart
from ghostpanel_widgets._metrics_chart import chart_series, history_figures
from traitlets import TraitError

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.metrics import Sample
from ghostpanel_kernel.metrics._frame import frame_from_columns
from ghostpanel_kernel.metrics._store import MetricsStore

T0 = 1_765_000_000.0


def _frame(rows: list[list[Any]]) -> pd.DataFrame:
    return frame_from_columns(["time", "environment", "container", "metric", "value"], rows)


def test_a_counter_is_charted_as_a_rate_and_a_restart_drop_is_left_out() -> None:
    frame = _frame([[T0, "lab", "web", "network_receive_bytes_total", 0],
                    [T0 + 10, "lab", "web", "network_receive_bytes_total", 1000],
                    [T0 + 20, "lab", "web", "network_receive_bytes_total", 3000],
                    [T0 + 30, "lab", "web", "network_receive_bytes_total", 10],
                    [T0 + 40, "lab", "web", "network_receive_bytes_total", 510]])
    line = chart_series(frame, "network_receive_bytes_total")["web"]
    assert line["value"].tolist() == [100.0, 200.0, 50.0]
    assert line["time"].dt.tz is None  # naive UTC, as Bokeh wants


def test_lines_are_labelled_by_environment_when_there_are_several() -> None:
    frame = _frame([[T0, "one", "web", "cpu_cores", 1], [T0, "two", "web", "cpu_cores", 2],
                    [T0, "one", "web", "pids", 3]])
    assert sorted(chart_series(frame, "cpu_cores")) == ["one/web", "two/web"]
    assert sorted(chart_series(frame, "pids")) == ["web"]  # pids: one environment only
    figures = history_figures(frame, ["cpu_cores", "memory_working_set_bytes"])
    assert len(figures[0].renderers) == 2
    assert figures[1].x_range is figures[0].x_range  # zoom one, zoom all
    assert "no samples" in figures[1].title.text


async def test_a_chart_of_a_given_frame_draws_a_line_per_container(
        widgets: list[Any]) -> None:
    frame = _frame([[T0 + i, "lab", name, "cpu_cores", i] for i in range(5)
                    for name in ("web", "db", "cache")])
    chart = MetricsChart(frame=frame, metrics=["cpu_cores"])
    widgets.append(chart)
    assert chart.lines == 3 and chart.frame is frame
    with pytest.raises(TraitError, match="since"):
        chart.since = "2y"


async def test_a_chart_reads_the_local_store_and_rereads_on_a_new_window(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, widgets: list[Any]) -> None:
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path))
    now = time.time()
    with MetricsStore() as store:  # the default one, under GHOSTPANEL_HOME
        store.write([Sample(now - minutes * 60, "lab", name, "id-" + name, "img",
                            "memory_working_set_bytes", 1e6 * minutes)
                     for minutes in (1, 2, 3, 30, 40) for name in ("web", "db")])
    env = Environment("unix:///nonexistent/engine.sock", name="lab")
    chart = MetricsChart(env, ["web"], since="15m", metrics=["memory_working_set_bytes"])
    widgets.append(chart)
    await chart.wait_idle()
    assert chart.status.message == "", chart.status.message
    assert chart.lines == 1 and len(chart.frame) == 3
    chart.since = "1h"  # what the selector does
    await chart.wait_idle()
    assert len(chart.frame) == 5 and set(chart.frame["container"]) == {"web"}


async def test_an_unreachable_agent_is_named_in_the_status_line(widgets: list[Any]) -> None:
    def dead(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    env = Environment("https://edge.test:9443", name="edge", token="tok",
                      transport=httpx.MockTransport(dead))
    chart = MetricsChart(env)
    widgets.append(chart)
    await chart.wait_idle()
    assert chart.status.level == "warning"
    assert "edge" in chart.status.message and "connection refused" in chart.status.message
    assert chart.lines == 0


async def test_the_inspectors_history_tab_charts_the_container_when_first_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, widgets: list[Any]) -> None:
    from ghostpanel_widgets import ContainerInspector

    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path))
    now = time.time()
    with MetricsStore() as store:
        store.write([Sample(now - minutes * 60, "lab", name, "id-" + name, "img",
                            "memory_working_set_bytes", 1e6 * minutes)
                     for minutes in (1, 2, 3) for name in ("web", "db")])
    env = Environment("unix:///nonexistent/engine.sock", name="lab")
    inspector = ContainerInspector(env, "web")
    widgets.append(inspector)
    assert inspector.history_chart is None  # nothing read until the tab is opened
    inspector.tabs.selected_index = inspector.tabs.titles.index("History")
    chart = inspector.history_chart
    assert isinstance(chart, MetricsChart)
    assert list(inspector.history_box.children) == [chart]
    await chart.wait_idle()
    assert set(chart.frame["container"]) == {"web"} and chart.lines >= 1
    inspector.tabs.selected_index = 0
    inspector.tabs.selected_index = inspector.tabs.titles.index("History")
    assert inspector.history_chart is chart  # built once

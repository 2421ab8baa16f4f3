"""``env.metrics.history`` and the fleet-wide ``metrics.history``: the tidy frame, its
``wide()`` pivot, an agent's ``{"columns", "rows"}`` answer (a MockTransport standing
in for the agent), and a fan-out where one environment is dead."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pandas as pd
import pytest

from ghostpanel_kernel._exceptions import EngineAPIError, EngineProtocolError
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.metrics._frame import (
    COLUMNS,
    MetricsFrame,
    concat_frames,
    empty_frame,
    frame_from_columns,
)
from ghostpanel_kernel.metrics._history import history, history_query

T0 = 1_765_000_000.0  # unix seconds


def _rows(container: str = "web", count: int = 3) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for i in range(count):
        rows.append([T0 + 10 * i, container, "cpu_cores", 0.25 * (i + 1)])
        rows.append([T0 + 10 * i, container, "memory_working_set_bytes", 1e6 * (i + 1)])
    return rows


class FakeAgent:
    """An agent's history route: answers from ``rows``, records every request."""

    def __init__(self, rows: list[list[Any]], *, status: int = 200,
                 body: Any = None) -> None:
        self.rows = rows
        self.status = status
        self.body = body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"message": "history store is locked"})
        body = self.body if self.body is not None else {
            "columns": ["time", "container", "metric", "value"], "rows": self.rows}
        return httpx.Response(200, json=body)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(str(self.requests[-1].url)).query)


def _agent(name: str, agent: FakeAgent) -> Environment:
    return Environment(f"https://{name}.test:9443", name=name, token="tok",
                       transport=httpx.MockTransport(agent))


def test_wide_gives_one_column_per_metric_indexed_by_time_environment_container() -> None:
    frame = frame_from_columns(["time", "container", "metric", "value"], _rows(),
                               environment="lab")
    wide = frame.wide()
    assert list(wide.columns) == ["cpu_cores", "memory_working_set_bytes"]
    assert list(wide.index.names) == ["time", "environment", "container"]
    assert len(wide) == 3
    assert wide["cpu_cores"].tolist() == [0.25, 0.5, 0.75]
    assert wide.index.get_level_values("time")[1] == pd.Timestamp(T0 + 10, unit="s", tz="UTC")


def test_wide_leaves_a_metric_missing_at_a_time_as_nan_and_aggregates_duplicates() -> None:
    frame = frame_from_columns(["time", "container", "metric", "value"], [
        [T0, "web", "cpu_cores", 1.0], [T0, "web", "cpu_cores", 3.0],
        [T0 + 10, "web", "pids", 4.0]], environment="lab")
    wide = frame.wide()
    assert wide.loc[(pd.Timestamp(T0, unit="s", tz="UTC"), "lab", "web"), "cpu_cores"] == 2.0
    assert pd.isna(wide["pids"].iloc[0]) and wide["pids"].iloc[1] == 4.0
    assert frame.wide(aggregate="max")["cpu_cores"].iloc[0] == 3.0


def test_an_empty_history_keeps_its_columns_and_types_and_pivots_to_nothing() -> None:
    frame = empty_frame({"gpu-2": "down"})
    assert tuple(frame.columns) == COLUMNS
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert frame.failures == {"gpu-2": "down"}
    assert frame.wide().empty and list(frame.wide().index.names) == ["time", "environment",
                                                                     "container"]


def test_times_come_as_utc_from_seconds_iso_text_or_datetimes() -> None:
    iso = frame_from_columns(["time", "container", "metric", "value"],
                             [["2026-12-07T10:00:00Z", "web", "pids", 1]], environment="e")
    seconds = frame_from_columns(["time", "container", "metric", "value"],
                                 [[T0, "web", "pids", 1]], environment="e")
    assert iso["time"].iloc[0] == pd.Timestamp("2026-12-07T10:00:00", tz="UTC")
    assert seconds["time"].iloc[0] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert str(iso["time"].dtype) == str(seconds["time"].dtype) == "datetime64[ns, UTC]"


def test_a_frame_without_the_tidy_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="missing: metric"):
        frame_from_columns(["time", "container", "value"], [[T0, "web", 1.0]],
                           environment="e")
    with pytest.raises(ValueError, match="lacks metric"):
        MetricsFrame({"time": [1], "environment": ["e"], "container": ["c"],
                      "value": [1.0]}).wide()


def test_slices_and_filters_stay_metrics_frames() -> None:
    frame = frame_from_columns(["time", "container", "metric", "value"], _rows(),
                               environment="lab")
    cpu = frame[frame["metric"] == "cpu_cores"]
    assert isinstance(cpu, MetricsFrame)
    assert cpu.wide()["cpu_cores"].sum() == pytest.approx(1.5)


def test_concatenation_interleaves_environments_in_time_order() -> None:
    first = frame_from_columns(["time", "container", "metric", "value"],
                               [[T0, "a", "pids", 1], [T0 + 20, "a", "pids", 3]],
                               environment="one")
    second = frame_from_columns(["time", "container", "metric", "value"],
                                [[T0 + 10, "b", "pids", 2]], environment="two")
    joined = concat_frames([first, second], {"three": "down"})
    assert joined["value"].tolist() == [1.0, 2.0, 3.0]
    assert joined["environment"].tolist() == ["one", "two", "one"]
    assert joined.failures == {"three": "down"}


def test_the_agent_query_repeats_container_and_metric_and_writes_times() -> None:
    query = parse_qs(history_query(
        containers=["web", "db"], since=datetime(2026, 12, 7, 10, tzinfo=UTC), until=T0,
        step="1m", metrics=["pids"]))
    assert query == {"since": ["2026-12-07T10:00:00+00:00"], "until": [repr(T0)],
                     "step": ["1m"], "container": ["web", "db"], "metric": ["pids"]}
    assert history_query(containers=None, since=None, until=None, step=None,
                         metrics=None) == ""


def test_an_agent_environment_reads_its_agent_s_history_route() -> None:
    agent = FakeAgent(_rows())
    env = _agent("edge-1", agent)
    frame = asyncio.run(env.metrics.history("web", since="30m", step=60,
                                            metrics=["cpu_cores"]))
    request = agent.requests[-1]
    assert request.url.path == "/api/v1/metrics/history"
    assert request.headers["authorization"] == "Bearer tok"
    assert agent.query == {"since": ["30m"], "step": ["60.0"], "container": ["web"],
                           "metric": ["cpu_cores"]}
    assert isinstance(frame, MetricsFrame)
    assert tuple(frame.columns) == COLUMNS
    assert set(frame["environment"]) == {"edge-1"}  # the name it was opened with
    assert len(frame) == 6 and frame["value"].dtype == "float64"


def test_an_agent_s_refusal_and_a_malformed_answer_are_the_kernel_s_errors() -> None:
    refused = _agent("edge-1", FakeAgent([], status=503))
    with pytest.raises(EngineAPIError) as error:
        asyncio.run(refused.metrics.history())
    assert error.value.status_code == 503
    garbled = _agent("edge-1", FakeAgent([], body={"data": []}))
    with pytest.raises(EngineProtocolError, match="not"):
        asyncio.run(garbled.metrics.history())
    short = _agent("edge-1", FakeAgent([], body={"columns": ["time"], "rows": [[T0]]}))
    with pytest.raises(EngineProtocolError, match="missing"):
        asyncio.run(short.metrics.history())


def test_the_fan_out_reports_a_dead_environment_and_keeps_the_others() -> None:
    def dead(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    one, two = FakeAgent(_rows("web")), FakeAgent(_rows("db", count=2))
    envs = [_agent("one", one), _agent("two", two),
            Environment("https://three.test:9443", name="three", token="tok",
                        transport=httpx.MockTransport(dead))]
    frame = asyncio.run(history(envs, since="1h", metrics="cpu_cores"))
    assert sorted(set(frame["environment"])) == ["one", "two"]
    assert len(frame) == 6 + 4
    assert frame["time"].is_monotonic_increasing
    assert list(frame.failures) == ["three"]
    assert "connection refused" in frame.failures["three"]
    assert one.query["metric"] == ["cpu_cores"]
    wide = frame.wide()
    assert set(wide.index.get_level_values("container")) == {"web", "db"}


def test_the_fan_out_gives_each_environment_once_and_refuses_other_things() -> None:
    agent = FakeAgent(_rows())
    env = _agent("one", agent)
    frame = asyncio.run(history([env, env], since=None))
    assert len(agent.requests) == 1 and len(frame) == 6
    assert "since" not in agent.query
    with pytest.raises(TypeError, match="not int"):
        asyncio.run(history([3]))  # type: ignore[list-item]


def test_the_sync_facade_runs_history_on_its_loop() -> None:
    from ghostpanel_kernel.engine._sync import SyncBridge, SyncProxy

    agent = FakeAgent(_rows())
    bridge = SyncBridge()
    try:
        env = SyncProxy(_agent("one", agent), bridge)
        frame = env.metrics.history(since="5m")
        assert isinstance(frame, MetricsFrame) and len(frame) == 6
    finally:
        bridge.close()


def test_an_agent_answer_round_trips_through_json() -> None:
    frame = frame_from_columns(["time", "container", "metric", "value"], _rows(),
                               environment="lab")
    body = json.dumps({"columns": ["time", "container", "metric", "value"],
                       "rows": [[t.timestamp(), c, m, v] for t, c, m, v in zip(
                           frame["time"], frame["container"], frame["metric"],
                           frame["value"], strict=True)]})
    again = frame_from_columns(**json.loads(body), environment="lab")
    pd.testing.assert_frame_equal(pd.DataFrame(again), pd.DataFrame(frame))

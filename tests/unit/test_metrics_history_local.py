"""``env.metrics.history`` / ``.events`` of an environment that is not an agent: read from
this machine's :class:`MetricsStore` (a temporary one), filtered by the environment's
name, and the fan-out mixing such environments with an agent's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.metrics import ContainerEvent, Sample
from ghostpanel_kernel.metrics._frame import COLUMNS, EVENT_COLUMNS, MetricsFrame
from ghostpanel_kernel.metrics._history import EnvironmentMetrics, history
from ghostpanel_kernel.metrics._store import MetricsStore

NOW = time.time()


def _local(name: str) -> Environment:
    # Never contacted: a local environment's history is the store's.
    return Environment("unix:///nonexistent/engine.sock", name=name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricsStore]:
    with MetricsStore(tmp_path / "metrics") as store:
        samples = []
        for environment, container, base in (("lab", "web", 1.0), ("lab", "db", 2.0),
                                             ("prod", "web", 10.0)):
            for i in range(6):
                at = NOW - 600 + 60 * i
                samples.append(Sample(at, environment, container, f"id-{container}",
                                      "busybox", "cpu_cores", base + i))
                samples.append(Sample(at, environment, container, f"id-{container}",
                                      "busybox", "pids", 3.0))
        samples.append(Sample(NOW - 7200, "lab", "web", "id-web", "busybox", "cpu_cores", 99))
        store.write(samples)
        store.write_events([
            ContainerEvent(NOW - 300, "lab", "web", "id-web", "die", 137, None),
            ContainerEvent(NOW - 290, "lab", "web", "id-web", "restart", None, None),
            ContainerEvent(NOW - 200, "prod", "web", "id-web", "health", None, "unhealthy")])
        yield store


def test_a_local_environment_reads_only_its_own_rows_in_the_window(
        store: MetricsStore) -> None:
    frame = asyncio.run(EnvironmentMetrics(_local("lab"), store=store).history(since="1h"))
    assert isinstance(frame, MetricsFrame)
    assert tuple(frame.columns[:5]) == COLUMNS
    assert set(frame["environment"]) == {"lab"}
    assert sorted(set(frame["container"])) == ["db", "web"]
    assert len(frame) == 2 * 6 * 2  # the two-hour-old sample is outside "1h"
    assert frame["time"].is_monotonic_increasing
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    wide = frame.wide()
    assert wide.loc[(slice(None), "lab", "db"), "cpu_cores"].tolist() == [2, 3, 4, 5, 6, 7]


def test_containers_metrics_and_until_narrow_the_read(store: MetricsStore) -> None:
    metrics = EnvironmentMetrics(_local("lab"), store=store)
    frame = asyncio.run(metrics.history("web", metrics="cpu_cores", since="3h",
                                        until=NOW - 300))
    assert set(frame["metric"]) == {"cpu_cores"} and set(frame["container"]) == {"web"}
    assert frame["value"].tolist() == [99.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_history_is_read_from_the_store_under_ghostpanel_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path / "home"))
    with MetricsStore() as default:
        default.write([Sample(NOW - 5, "laptop", "web", "id", "img", "pids", 4.0)])
    env = _local("laptop")
    frame = asyncio.run(env.metrics.history())
    assert frame["value"].tolist() == [4.0]
    assert env.metrics is env.metrics  # one accessor per environment
    assert "local store" in repr(env.metrics)


def test_events_come_with_the_environment_s_name_and_nullable_exit_codes(
        store: MetricsStore) -> None:
    events = asyncio.run(EnvironmentMetrics(_local("lab"), store=store).events(since="1h"))
    assert tuple(events.columns) == EVENT_COLUMNS
    assert events["kind"].tolist() == ["die", "restart"]
    assert events["exit_code"].dtype == "Int64"
    assert events["exit_code"].iloc[0] == 137 and pd.isna(events["exit_code"].iloc[1])
    only = asyncio.run(EnvironmentMetrics(_local("prod"), store=store).events(
        kinds="health"))
    assert only["health"].tolist() == ["unhealthy"]


def test_the_fan_out_mixes_local_environments_and_an_agent(store: MetricsStore) -> None:
    def agent(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"columns": ["time", "container", "metric", "value"],
                                         "rows": [[NOW - 30, "api", "cpu_cores", 0.5]]})

    edge = Environment("https://edge.test:9443", name="edge", token="tok",
                       transport=httpx.MockTransport(agent))
    frame = asyncio.run(history([_local("lab"), _local("prod"), edge], since="1h",
                                metrics="cpu_cores", store=store))
    assert frame.failures == {}
    assert frame.groupby("environment", observed=True)["value"].count().to_dict() == {
        "edge": 1, "lab": 12, "prod": 6}
    assert frame["time"].is_monotonic_increasing
    assert frame.wide().loc[(slice(None), "edge", "api"), "cpu_cores"].tolist() == [0.5]


def test_a_bad_time_is_the_caller_s_error_not_a_failed_environment(
        store: MetricsStore) -> None:
    with pytest.raises(ValueError, match="yesterday"):
        asyncio.run(EnvironmentMetrics(_local("lab"), store=store).history(
            since="yesterday"))
    frame = asyncio.run(history([_local("lab")], since="yesterday", store=store))
    assert frame.empty and "yesterday" in frame.failures["lab"]


def test_fleet_events_concatenate_in_time_order_and_name_a_dead_environment(
        store: MetricsStore) -> None:
    from ghostpanel_kernel.metrics import events

    def dead(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    edge = Environment("https://edge.test:9443", name="edge", token="tok",
                       transport=httpx.MockTransport(dead))
    found = asyncio.run(events([_local("lab"), _local("prod"), edge], since="1h",
                               store=store))
    assert found["kind"].tolist() == ["die", "restart", "health"]
    assert found["environment"].tolist() == ["lab", "lab", "prod"]
    assert list(found.attrs["failures"]) == ["edge"]
    nothing = asyncio.run(events([edge], store=store))
    assert nothing.empty and tuple(nothing.columns) == EVENT_COLUMNS

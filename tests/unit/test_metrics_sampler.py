"""The sampler against a canned engine: stats to Samples, CPU between rounds, events."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.engine._system import Event
from ghostpanel_kernel.metrics import METRICS, ContainerEvent
from ghostpanel_kernel.metrics._events import EventTranslator
from ghostpanel_kernel.metrics._sampler import Sampler
from ghostpanel_kernel.metrics._stats_convert import ContainerInfo, stats_samples
from ghostpanel_kernel.metrics._store import MetricsStore
from tests.unit.fake_engine import FakeEngine, env_for, json_answer, lines_answer

HOST_MEMORY = 8 * 2**30


def _stats(cpu_ns: int, read: str, *, limit: int = HOST_MEMORY) -> dict[str, Any]:
    return {
        "read": read,
        "cpu_stats": {"cpu_usage": {"total_usage": cpu_ns}},
        "memory_stats": {"usage": 50_000_000, "limit": limit,
                         "stats": {"inactive_file": 20_000_000}},
        "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 7},
                     "eth1": {"rx_bytes": 50, "tx_bytes": 3}},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 8, "op": "Read", "value": 4096}, {"major": 8, "op": "write", "value": 10},
            {"major": 9, "op": "read", "value": 1}]},
        "pids_stats": {"current": 4},
    }


INFO = ContainerInfo("local", "web", "abc123", "busybox")


def test_a_stats_answer_becomes_one_sample_per_metric() -> None:
    samples, reading = stats_samples(_stats(2_000_000_000, "2026-01-01T00:00:00Z"), INFO,
                                     1000.0, None, HOST_MEMORY)
    values = {s.metric: s.value for s in samples}
    assert [s.metric for s in samples] == list(METRICS)
    assert all(s.time == 1000.0 and s.container == "web" and s.container_id == "abc123"
               for s in samples)
    assert math.isnan(values["cpu_cores"])  # nothing to compare with yet
    assert values["cpu_usage_seconds_total"] == 2.0
    assert values["memory_working_set_bytes"] == 30_000_000  # usage less inactive file
    assert values["memory_usage_bytes"] == 50_000_000
    assert values["memory_limit_bytes"] == 0  # the host's memory: no limit
    assert values["network_receive_bytes_total"] == 150
    assert values["network_transmit_bytes_total"] == 10
    assert values["fs_reads_bytes_total"] == 4097 and values["fs_writes_bytes_total"] == 10
    assert values["pids"] == 4
    assert reading is not None
    later, _ = stats_samples(_stats(3_500_000_000, "2026-01-01T00:00:02Z", limit=2**28),
                             INFO, 1002.0, reading, HOST_MEMORY)
    values = {s.metric: s.value for s in later}
    assert values["cpu_cores"] == pytest.approx(0.75)  # 1.5 s of CPU over 2 s
    assert values["memory_limit_bytes"] == 2**28


def test_a_counter_that_went_back_leaves_cpu_unknown() -> None:
    _, first = stats_samples(_stats(9_000_000_000, "2026-01-01T00:00:00Z"), INFO, 0.0,
                             None, 0)
    restarted, _ = stats_samples(_stats(1_000_000, "2026-01-01T00:00:10Z"), INFO, 10.0,
                                 first, 0)
    assert math.isnan(restarted[0].value)


def _event(action: str, **attributes: str) -> Event:
    return Event("container", action, "abc123", {"name": "web", **attributes}, 5.0)


def test_engine_events_become_container_events() -> None:
    translate = EventTranslator("lab")
    assert translate(_event("create")) is None
    assert translate(Event("image", "pull", "x", {}, 1.0)) is None
    died = translate(_event("die", exitCode="3"))
    assert died == ContainerEvent(5.0, "lab", "web", "abc123", "die", 3, None)
    restarted = translate(_event("restart"))
    assert restarted is not None and restarted.kind == "restart"
    assert restarted.exit_code == 3  # from the die before it
    docker_health = translate(_event("health_status: unhealthy"))
    assert docker_health is not None and docker_health.health == "unhealthy"
    podman_health = translate(_event("health_status", health_status="healthy"))
    assert podman_health is not None and podman_health.kind == "health"
    assert podman_health.health == "healthy"
    for action in ("remove", "destroy"):
        gone = translate(_event(action))
        assert gone is not None and gone.kind == "destroy"
    oom = translate(_event("oom"))
    assert oom is not None and oom.kind == "oom"


async def test_a_round_samples_every_running_container(tmp_path: Path) -> None:
    listing = [{"Id": f"id{i}", "Names": [f"/c{i}"], "Image": "busybox", "State": "running"}
               for i in range(3)]
    reads = iter(range(100))

    def stats(request: httpx.Request) -> httpx.Response:
        second = next(reads)
        return httpx.Response(200, json=_stats(second * 10**9,
                                               f"2026-01-01T00:00:{second:02d}Z"))

    routes: dict[tuple[str, str], Any] = {
        ("GET", "/containers/json"): json_answer(listing),
        ("GET", "/info"): json_answer({"MemTotal": HOST_MEMORY}),
        ("GET", "/containers/id1/stats"): lambda r: httpx.Response(
            404, json={"message": "no such container"}),
        **{("GET", f"/containers/id{i}/stats"): stats for i in (0, 2)}}
    engine = FakeEngine(routes)
    store = MetricsStore(tmp_path)
    async with env_for(engine) as env:
        sampler = Sampler(env, store, interval=1.0)
        first = await sampler.sample_once()
        second = await sampler.sample_once()
    # c1 went between the listing and its stats: left out, not an error.
    assert {s.container for s in first} == {"c0", "c2"} and len(first) == 20
    assert set(sampler.latest()) == {"c0", "c2"} and sampler.rounds == 2
    cores = [s.value for s in second if s.metric == "cpu_cores"]
    assert all(v == pytest.approx(1.0) for v in cores)  # 2 s of CPU over 2 s
    assert all(c[2] == {"stream": "false"} for c in engine.calls if "stats" in c[1])
    assert len(store.rows(metrics="pids")) == 4


async def test_the_interval_must_be_positive(tmp_path: Path) -> None:
    async with env_for(FakeEngine()) as env:
        with pytest.raises(ValueError, match="interval"):
            Sampler(env, MetricsStore(tmp_path), interval=0)


def _engine_event(action: str, second: int, **attributes: str) -> dict[str, Any]:
    return {"Type": "container", "Action": action, "timeNano": (1000 + second) * 10**9,
            "Actor": {"ID": "abc123", "Attributes": {"name": "web", **attributes}}}


async def test_running_records_events_once_across_reconnections(tmp_path: Path) -> None:
    # The canned stream ends after four events; the sampler reconnects, is sent them
    # again, and records each once.
    events = [_engine_event("die", 1, exitCode="3"), _engine_event("restart", 2),
              _engine_event("start", 3), _engine_event("exec_create", 4),
              _engine_event("health_status", 5, health_status="unhealthy")]
    engine = FakeEngine({("GET", "/containers/json"): json_answer([]),
                         ("GET", "/info"): json_answer({"MemTotal": HOST_MEMORY}),
                         ("GET", "/events"): lines_answer(events)})
    store = MetricsStore(tmp_path)
    async with env_for(engine) as env:
        sampler = Sampler(env, store, interval=0.05)
        sampler.start()
        deadline = asyncio.get_running_loop().time() + 10
        while engine.count("/v1.41/events") < 3 or sampler.rounds < 3:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        await sampler.aclose()
    recorded = store.event_rows()
    assert [(e.kind, e.exit_code, e.health) for e in recorded] == [
        ("die", 3, None), ("restart", 3, None), ("start", None, None),
        ("health", None, "unhealthy")]
    assert sampler.restarts == {"web": 1}
    asked = [json.loads(query["filters"]) for _, path, query in engine.calls
             if path == "/events"]
    assert asked and all(f == {"type": ["container"]} for f in asked)
    # After the first connection it asks from the last event seen on.
    assert [query.get("since") for _, path, query in engine.calls if path == "/events"
            ][1:2] != [None]


async def test_running_downsamples_on_its_schedule(tmp_path: Path) -> None:
    engine = FakeEngine({("GET", "/containers/json"): json_answer([]),
                         ("GET", "/info"): json_answer({"MemTotal": HOST_MEMORY}),
                         ("GET", "/events"): lines_answer([])})
    store = MetricsStore(tmp_path)
    def marks() -> list[str]:
        with store._lock:  # the sampler's worker thread shares the connection
            return [row[0] for row in store._db.execute("SELECT key FROM meta ORDER BY key")]

    async with env_for(engine) as env:
        sampler = Sampler(env, store, interval=0.02, downsample_every=0.05)
        sampler.start()
        deadline = asyncio.get_running_loop().time() + 10
        while not marks():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        await sampler.aclose()
    assert marks() == ["rolled_up:hour", "rolled_up:minute"]

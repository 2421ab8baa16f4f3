"""The agent's ``/metrics``: exposition parsed back with prometheus-client's own parsers,
on a canned engine (fake_engine) and a fake sampler."""

from __future__ import annotations

import asyncio
import gzip
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from ghostpanel_kernel.metrics._names import METRICS, Sample
from ghostpanel_kernel.server._app import create_app
from ghostpanel_kernel.server._prometheus import (
    MetricsEndpoint,
    Snapshot,
    SnapshotCollector,
    text_exposition,
)
from ghostpanel_kernel.server._prometheus_facts import ContainerFacts, Reading
from ghostpanel_kernel.server._settings import AgentSettings
from tests.unit.fake_engine import FakeEngine, env_for, json_answer

WEB = "a" * 64
JOB = "b" * 64
#: What the tests let a scrape wait for the canned engine's listing: a loaded test host
#: must not make a scrape answer from the previous listing (tested on its own below).
WAIT = 10.0

LISTING = [
    {"Id": WEB, "Names": ["/web"], "Image": "nginx:1.27", "State": "running",
     "Status": "Up 3 minutes"},
    {"Id": JOB, "Names": ["/job"], "Image": "busybox", "State": "exited",
     "Status": "Exited (3) 2 minutes ago"},
]
INSPECT = {
    WEB: {"Id": WEB, "RestartCount": 2,
          "State": {"Status": "running", "ExitCode": 0, "FinishedAt": "2026-12-07T10:00:00Z",
                    "Health": {"Status": "unhealthy"}}},
    JOB: {"Id": JOB, "RestartCount": 0,
          "State": {"Status": "exited", "ExitCode": 3, "FinishedAt": "2026-12-07T10:00:00Z",
                    "Health": {"Status": ""}}},
}
RAW_STATS = {  # Podman's one-shot sample, trimmed
    "read": "2026-12-07T10:00:00Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}, "online_cpus": 2},
    "memory_stats": {"usage": 300 * 1024**2, "limit": 2**63 - 4096,
                     "stats": {"inactive_file": 100 * 1024**2}},
    "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
    "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096},
                                                   {"op": "write", "value": 8192}]},
    "pids_stats": {"current": 7},
}


class FakeSampler:
    """Stands in for the agent's Sampler: its last round, per container."""

    environment = "edge-1"

    def __init__(self, when: float = 1_796_000_000.0) -> None:
        values = {metric: float(index + 1) for index, metric in enumerate(METRICS)}
        self.values = values
        self.when = when

    def latest(self) -> dict[str, list[Sample]]:
        return {"web": [Sample(self.when, "edge-1", "web", WEB, "nginx:1.27", metric, value)
                        for metric, value in self.values.items()]}


def _engine(listing: list[dict[str, Any]] | None = None) -> FakeEngine:
    engine = FakeEngine()
    engine.routes[("GET", "/containers/json")] = lambda request: httpx.Response(
        200, json=listing if listing is not None else LISTING)
    for ident, attrs in INSPECT.items():
        engine.routes[("GET", f"/containers/{ident}/json")] = json_answer(attrs)
    engine.routes[("GET", f"/containers/{WEB}/stats")] = json_answer(RAW_STATS)
    return engine


def _client(endpoint: MetricsEndpoint) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=endpoint),
                             base_url="https://agent")


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(family: Any, series: str, **labels: str) -> float:
    found = [sample.value for sample in family.samples
             if sample.name == series and all(sample.labels.get(key) == value
                                            for key, value in labels.items())]
    assert len(found) == 1, (series, labels, family.samples)
    return float(found[0])


async def test_the_sampler_s_last_round_is_exposed_under_cadvisor_s_names() -> None:
    engine = _engine()
    sampler = FakeSampler()
    endpoint = MetricsEndpoint(env_for(engine), lambda: sampler, listing_wait=WAIT)
    async with _client(endpoint) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = _families(answer.text)
    expected = {
        "container_cpu_usage_seconds": ("counter", "cpu_usage_seconds_total"),
        "container_memory_working_set_bytes": ("gauge", "memory_working_set_bytes"),
        "container_memory_usage_bytes": ("gauge", "memory_usage_bytes"),
        "container_spec_memory_limit_bytes": ("gauge", "memory_limit_bytes"),
        "container_network_receive_bytes": ("counter", "network_receive_bytes_total"),
        "container_network_transmit_bytes": ("counter", "network_transmit_bytes_total"),
        "container_fs_reads_bytes": ("counter", "fs_reads_bytes_total"),
        "container_fs_writes_bytes": ("counter", "fs_writes_bytes_total"),
        "container_processes": ("gauge", "pids"),
    }
    labels = {"id": WEB, "name": "web", "image": "nginx:1.27", "environment": "edge-1"}
    for name, (kind, stored) in expected.items():
        family = families[name]
        assert family.type == kind, name
        exposed = f"{name}_total" if kind == "counter" else name
        assert [sample.labels for sample in family.samples] == [labels], name
        assert _value(family, exposed) == sampler.values[stored], name
    assert _value(families["container_last_seen"], "container_last_seen") == sampler.when
    # The sampler made the values: the scrape asked the engine for no stats at all.
    assert not any(path.endswith("/stats") for path in engine.paths)
    await endpoint.aclose()


async def test_lifecycle_series_cover_stopped_containers_too() -> None:
    endpoint = MetricsEndpoint(env_for(_engine()), lambda: FakeSampler(), listing_wait=WAIT)
    async with _client(endpoint) as client:
        families = _families((await client.get("/metrics")).text)
    restarts = families["ghostpanel_container_restarts"]
    assert restarts.type == "counter"
    assert _value(restarts, "ghostpanel_container_restarts_total", name="web") == 2
    assert _value(restarts, "ghostpanel_container_restarts_total", name="job") == 0
    health = families["ghostpanel_container_health_status"]
    for status, expected in (("unhealthy", 1), ("healthy", 0), ("starting", 0), ("none", 0)):
        assert _value(health, "ghostpanel_container_health_status", name="web",
                      status=status) == expected
    assert _value(health, "ghostpanel_container_health_status", name="job",
                  status="none") == 1
    state = families["ghostpanel_container_state"]
    assert _value(state, "ghostpanel_container_state", name="job", state="exited") == 1
    assert _value(state, "ghostpanel_container_state", name="job", state="running") == 0
    assert _value(state, "ghostpanel_container_state", name="web", state="running") == 1
    exit_code = families["ghostpanel_container_exit_code"]
    assert _value(exit_code, "ghostpanel_container_exit_code", name="job") == 3
    assert _value(exit_code, "ghostpanel_container_exit_code", name="web") == 0
    # A stopped container has no resource series (as in cAdvisor), only its state.
    assert {s.labels["name"] for s in families["container_processes"].samples} == {"web"}
    await endpoint.aclose()


async def test_without_a_sampler_one_stats_round_gives_the_values() -> None:
    engine = _engine()
    endpoint = MetricsEndpoint(env_for(engine), environment="local", listing_wait=WAIT)
    async with _client(endpoint) as client:
        families = _families((await client.get("/metrics")).text)
    labels = {"name": "web", "environment": "local"}
    assert _value(families["container_cpu_usage_seconds"],
                  "container_cpu_usage_seconds_total", **labels) == 2.5
    # Working set: usage less the inactive page cache; usage counts it.
    assert _value(families["container_memory_working_set_bytes"],
                  "container_memory_working_set_bytes", **labels) == 200 * 1024**2
    assert _value(families["container_memory_usage_bytes"],
                  "container_memory_usage_bytes", **labels) == 300 * 1024**2
    # No limit reads as the host's memory or more: exposed as 0, as cAdvisor does.
    assert _value(families["container_spec_memory_limit_bytes"],
                  "container_spec_memory_limit_bytes", **labels) == 0
    assert _value(families["container_network_transmit_bytes"],
                  "container_network_transmit_bytes_total", **labels) == 2000
    assert _value(families["container_fs_writes_bytes"],
                  "container_fs_writes_bytes_total", **labels) == 8192
    assert _value(families["container_processes"], "container_processes", **labels) == 7
    # Only the running container was sampled, in one request (no CPU % window).
    assert [path for path in engine.paths if path.endswith("/stats")] == [
        f"/v1.41/containers/{WEB}/stats"]
    await endpoint.aclose()


async def test_openmetrics_when_asked_and_gzip_when_accepted() -> None:
    endpoint = MetricsEndpoint(env_for(_engine()), lambda: FakeSampler(), listing_wait=WAIT)
    async with _client(endpoint) as client:
        answer = await client.get("/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
            "Accept-Encoding": "gzip"})
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.headers["content-encoding"] == "gzip"
    text = answer.text  # httpx undid the gzip
    assert text.endswith("# EOF\n")
    families = {family.name: family for family in openmetrics_families(text)}
    assert families["container_cpu_usage_seconds"].type == "counter"
    assert _value(families["ghostpanel_container_exit_code"],
                  "ghostpanel_container_exit_code", name="job") == 3
    assert len(gzip.compress(text.encode())) < len(text)  # worth compressing
    await endpoint.aclose()


async def test_name_filter_head_and_other_methods() -> None:
    endpoint = MetricsEndpoint(env_for(_engine()), lambda: FakeSampler(), listing_wait=WAIT)
    async with _client(endpoint) as client:
        only = await client.get("/metrics", params=[
            ("name[]", "container_cpu_usage_seconds_total"),
            ("name[]", "ghostpanel_container_state")])
        head = await client.head("/metrics")
        get = await client.get("/metrics")
        post = await client.post("/metrics")
    assert set(_families(only.text)) == {"container_cpu_usage_seconds",
                                         "ghostpanel_container_state"}
    assert head.status_code == 200 and head.content == b""
    # What a GET would send (both gzipped: httpx accepts gzip by default).
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-encoding"] == "gzip"
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
    await endpoint.aclose()


async def test_inspects_are_cached_until_the_listed_state_changes() -> None:
    listing = [dict(entry) for entry in LISTING]
    engine = _engine(listing)
    endpoint = MetricsEndpoint(env_for(engine), lambda: FakeSampler(), listing_wait=WAIT)

    def inspects() -> int:
        return sum(1 for path in engine.paths if path.endswith("/json")
                   and "/containers/json" not in path)

    async with _client(endpoint) as client:
        await client.get("/metrics")
        assert inspects() == 2
        await client.get("/metrics")
        assert inspects() == 2  # nothing changed: answered from the cache
        listing[1]["State"], listing[1]["Status"] = "running", "Up 1 second"
        restarted = dict(INSPECT[JOB], RestartCount=1)
        engine.routes[("GET", f"/containers/{JOB}/json")] = json_answer(restarted)
        families = _families((await client.get("/metrics")).text)
    assert inspects() == 3  # only the container whose state changed
    assert _value(families["ghostpanel_container_restarts"],
                  "ghostpanel_container_restarts_total", name="job") == 1
    await endpoint.aclose()


async def test_an_engine_that_does_not_answer_is_a_502() -> None:
    engine = FakeEngine()
    engine.routes[("GET", "/containers/json")] = lambda request: httpx.Response(
        500, json={"message": "boom"})
    endpoint = MetricsEndpoint(env_for(engine))
    async with _client(endpoint) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/problem+json"
    await endpoint.aclose()


async def test_the_agent_serves_metrics_only_with_credentials(
        tmp_path: Path, token: str) -> None:
    settings = AgentSettings(engine_url=f"unix://{tmp_path}/engine.sock",
                             listen="127.0.0.1:9443", home=tmp_path)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="https://agent") as client:
        refused = await client.get("/metrics")
        # Let in, and routed to /metrics (not the engine passthrough): the engine
        # socket does not exist, which the endpoint says in its own words.
        down = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
    assert down.status_code == 502 and "engine did not answer" in down.json()["detail"]
    await app.shutdown()


@pytest.mark.parametrize("status", ["Exited (137) 5 seconds ago", "Exited (-1) now"])
async def test_exit_codes_come_from_the_listing(status: str) -> None:
    listing = [{"Id": JOB, "Names": ["/job"], "Image": "busybox", "State": "exited",
                "Status": status}]
    engine = FakeEngine()
    engine.routes[("GET", "/containers/json")] = json_answer(listing)
    # No inspect answers (404): the listing alone gives the exit code.
    endpoint = MetricsEndpoint(env_for(engine))
    async with _client(endpoint) as client:
        families = _families((await client.get("/metrics")).text)
    expected = int(status.split("(")[1].split(")")[0])
    assert _value(families["ghostpanel_container_exit_code"],
                  "ghostpanel_container_exit_code", name="job") == expected
    assert not families["ghostpanel_container_restarts"].samples  # unknown, not 0
    await endpoint.aclose()


def test_the_fast_encoders_write_what_prometheus_client_writes() -> None:
    odd = ContainerFacts(id=JOB, name='we"ird\\name', image="reg:5000/img\nx",
                         state="zombie", health="starting", exit_code=-1, restarts=4)
    web = ContainerFacts(id=WEB, name="web", image="nginx", state="running")
    values = {metric: float(index) * 1.5e9 for index, metric in enumerate(METRICS)}
    values["pids"] = math.nan
    snapshot = Snapshot('env "a"', [web, odd], {WEB: Reading(1_796_000_000.25, values),
                                               JOB: Reading(2.0, {"pids": 1.0})})
    for names in (None, ["container_cpu_usage_seconds_total", "ghostpanel_container_state"]):
        collector = SnapshotCollector(snapshot, names)
        assert text_exposition(collector) == generate_latest(collector)
        assert text_exposition(collector, openmetrics=True) == \
            generate_openmetrics(collector)
    # The unknown state shows as one more series, and the odd labels parse back.
    families = _families(text_exposition(SnapshotCollector(snapshot)).decode())
    assert _value(families["ghostpanel_container_state"], "ghostpanel_container_state",
                  name='we"ird\\name', state="zombie") == 1
    assert _value(families["container_processes"], "container_processes",
                  image="reg:5000/img\nx") == 1


async def test_a_slow_listing_is_used_by_the_next_scrape() -> None:
    listing = [dict(entry) for entry in LISTING]
    gate = asyncio.Event()
    gate.set()
    failing = False

    async def slow_listing(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        if failing:
            return httpx.Response(500, json={"message": "engine broke"})
        return httpx.Response(200, json=[dict(entry) for entry in listing])

    engine = _engine()
    engine.routes[("GET", "/containers/json")] = slow_listing
    endpoint = MetricsEndpoint(env_for(engine), lambda: FakeSampler(), listing_wait=0.05)

    async def states() -> dict[str, float]:
        text = (await client.get("/metrics", params={"name[]": "ghostpanel_container_state"})
                ).text
        family = _families(text)["ghostpanel_container_state"]
        return {s.labels["name"]: s.value for s in family.samples
                if s.labels["state"] == "exited"}

    async with _client(endpoint) as client:
        assert await states() == {"web": 0, "job": 1}
        gate.clear()  # the engine stalls: the scrape answers from the last listing
        listing.pop()
        assert await states() == {"web": 0, "job": 1}
        gate.set()
        endpoint.listing.wait = WAIT  # no race with a loaded host from here on
        assert await states() == {"web": 0}  # the listing that was under way
        failing = True
        assert (await client.get("/metrics")).status_code == 502
    await endpoint.aclose()


async def test_a_container_the_sampler_has_not_seen_yet_gets_a_one_shot_sample() -> None:
    new = "c" * 64
    listing = [*LISTING, {"Id": new, "Names": ["/new"], "Image": "busybox",
                          "State": "running", "Status": "Up 1 second"}]
    engine = _engine(listing)
    engine.routes[("GET", f"/containers/{new}/stats")] = json_answer(RAW_STATS)
    endpoint = MetricsEndpoint(env_for(engine), lambda: FakeSampler(), listing_wait=WAIT)
    async with _client(endpoint) as client:
        families = _families((await client.get("/metrics")).text)
    cpu = families["container_cpu_usage_seconds"]
    assert _value(cpu, "container_cpu_usage_seconds_total", name="new") == 2.5
    assert _value(cpu, "container_cpu_usage_seconds_total", name="web") == 2.0  # sampler's
    # Same environment label whichever source gave the values.
    assert {s.labels["environment"] for s in cpu.samples} == {"edge-1"}
    assert [path for path in engine.paths if path.endswith("/stats")] == [
        f"/v1.41/containers/{new}/stats"]
    await endpoint.aclose()

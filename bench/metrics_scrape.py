"""The agent's ``/metrics``: one Prometheus scrape at 100 containers.

Run from the repository root (needs podman + runc + busybox-static as ``bench/run.py``
for the engine part; ``--synthetic-only`` needs no engine)::

    .venv/bin/python bench/metrics_scrape.py                    # ~1-2 min on 2 cores
    .venv/bin/python bench/metrics_scrape.py --update-results   # + bench/RESULTS.md

Each scrape is a ``GET /metrics`` on :class:`MetricsEndpoint` in this process through
httpx's ASGI transport: the endpoint's whole work (container listing, inspect cache,
collector, encoding, gzip), without the agent's TLS and token check, which are the same
for every route (measured for the passthrough in ``bench/agent_passthrough.py``).

* **synthetic**: a canned engine (httpx MockTransport) listing ``--containers``
  containers (default 100) and a sampler whose last round holds 10 metrics for each:
  the cost of GhostPanel's own code, engine latency excluded. What Prometheus asks for
  (OpenMetrics, gzip), and the text format with and without gzip.
* **podman**: ``--containers`` real busybox containers running ``sleep`` on a private
  Podman engine (or ``--engine``). With a sampler (its last round synthesised in memory
  for the real containers: ``Sampler.latest()`` is an in-memory read) the scrape costs
  one real ``GET /containers/json?all=1`` plus the inspect cache; the engine's listing
  alone is timed as its floor. Without a sampler, one concurrent one-shot stats round
  (one ``GET /containers/{id}/stats?stream=0`` per running container).

The first scrape (inspect cache cold: one inspect per container) is reported apart.
Target (issue 12, item 7): a scrape of 100 containers under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

import httpx
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from bench._engine import (
    BenchEngine,
    add_engine_option,
    interrupt_on_sigterm,
    log,
    measure_on,
    publish_report,
)
from bench._report import load_average
from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.metrics._names import METRICS, Sample
from ghostpanel_kernel.server._prometheus import (
    MetricsEndpoint,
    SnapshotCollector,
    text_exposition,
)

SCRIPT = "bench/metrics_scrape.py"
TARGET_MS = 50.0
PODMAN_API = "/v1.41"


class RoundSampler:
    """A sampler whose last round is ``metrics`` for each of ``containers``."""

    environment = "bench"

    def __init__(self, containers: list[tuple[str, str]]) -> None:
        now = time.time()
        self._latest = {
            name: [Sample(now, "bench", name, ident, "localhost/busybox:latest", metric,
                          float(index * 1000 + number))
                   for number, metric in enumerate(METRICS)]
            for index, (ident, name) in enumerate(containers)}

    def latest(self) -> dict[str, list[Sample]]:
        return self._latest


def _canned_engine(count: int) -> tuple[Environment, list[tuple[str, str]]]:
    containers = [(f"{index:064x}", f"svc-{index:03d}") for index in range(count)]
    listing = json.dumps([{"Id": ident, "Names": [f"/{name}"],
                           "Image": "localhost/busybox:latest", "State": "running",
                           "Status": "Up 2 hours"} for ident, name in containers]).encode()
    inspect = {ident: json.dumps({"Id": ident, "RestartCount": 1, "State": {
        "Status": "running", "ExitCode": 0, "FinishedAt": "0001-01-01T00:00:00Z",
        "Health": {"Status": "healthy"}}}).encode() for ident, _ in containers}
    headers = {"Api-Version": "1.41", "Libpod-Api-Version": "4.3.1",
               "Content-Type": "application/json"}

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/_ping":
            return httpx.Response(200, headers=headers, content=b"OK")
        if path == "/version":
            return httpx.Response(200, json={"ApiVersion": "1.41", "Version": "4.3.1",
                                             "Components": [{"Name": "Podman Engine"}]})
        if path == f"{PODMAN_API}/containers/json":
            return httpx.Response(200, headers=headers, content=listing)
        ident = path.split("/")[-2]
        return httpx.Response(200, headers=headers, content=inspect[ident])

    env = Environment("unix:///canned.sock", name="bench",
                      transport=httpx.MockTransport(answer))
    return env, containers


async def _times(scrape: Callable[[], Awaitable[Any]], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await scrape()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _row(label: str, times: list[float], extra: str = "") -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    met = "yes" if statistics.median(times) < TARGET_MS else "no"
    return (f"| {label} | {len(times)} | {statistics.median(times):.2f} | {p99:.2f} | "
            f"{met} | {extra} |")


async def _scrapes(endpoint: MetricsEndpoint, repeats: int,
                   variants: list[tuple[str, dict[str, str]]]) -> list[str]:
    rows = []
    transport = httpx.ASGITransport(app=endpoint)
    async with httpx.AsyncClient(transport=transport, base_url="https://agent") as client:
        first = time.perf_counter()
        answer = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        cold = (time.perf_counter() - first) * 1000
        answer.raise_for_status()
        rows.append(_row("first scrape (inspect cache cold), text", [cold],
                         f"{len(answer.content) / 1024:.0f} KiB"))
        for label, headers in variants:
            sizes: list[int] = []

            async def one(headers: dict[str, str] = headers, sizes: list[int] = sizes
                          ) -> None:
                got = await client.get("/metrics", headers=headers)
                got.raise_for_status()
                sizes.append(int(got.headers["content-length"]))

            times = await _times(one, repeats)
            rows.append(_row(label, times, f"{sizes[-1] / 1024:.0f} KiB sent"))
    await endpoint.aclose()
    return rows


#: Prometheus 2.x's own Accept header (scrape.go): OpenMetrics first, gzip always.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-"
                     "text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")

VARIANTS = [
    ("Prometheus' request: OpenMetrics + gzip", {
        "Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}),
    ("text 0.0.4", {"Accept-Encoding": "identity"}),
    ("text 0.0.4 + gzip", {"Accept-Encoding": "gzip"}),
    ("OpenMetrics", {"Accept": "application/openmetrics-text;version=1.0.0",
                     "Accept-Encoding": "identity"}),
]


async def _reference_encoders(endpoint: MetricsEndpoint, repeats: int) -> list[str]:
    """prometheus-client's own encoders on the same snapshot: what the agent's
    ``text_exposition`` replaces (the same bytes, a unit test checks)."""
    snapshot = await endpoint.snapshot()
    collector = SnapshotCollector(snapshot)
    rows = []
    for label, encoder in (("prometheus-client generate_latest (text), encoding only",
                            generate_latest),
                           ("prometheus-client OpenMetrics generate_latest, encoding only",
                            generate_openmetrics),
                           ("GhostPanel text_exposition (OpenMetrics), encoding only",
                            lambda c: text_exposition(c, openmetrics=True))):
        async def one(encoder: Callable[[Any], bytes] = encoder) -> None:
            encoder(collector)

        rows.append(_row(label, await _times(one, repeats)))
    await endpoint.aclose()
    return rows


async def synthetic(count: int, repeats: int) -> list[str]:
    env, containers = _canned_engine(count)
    try:
        rows = await _scrapes(MetricsEndpoint(env, lambda: RoundSampler(containers)),
                              repeats, VARIANTS)
        return rows + await _reference_encoders(
            MetricsEndpoint(env, lambda: RoundSampler(containers)), repeats)
    finally:
        await env.aclose()


async def _start_all(env: Environment, ids: list[str]) -> None:
    limit = asyncio.Semaphore(8)

    async def start(ident: str) -> None:
        async with limit:
            await env.client._request("POST", f"/containers/{ident}/start")

    await asyncio.gather(*(start(ident) for ident in ids))


async def podman(engine: BenchEngine, count: int, repeats: int) -> list[str]:
    log(f"creating and starting {count} containers")
    began = time.monotonic()
    ids = await engine.create_containers(count, command=["sleep", "3600"])
    async with connect(engine.url, name="bench") as env:
        await _start_all(env, ids)
        log(f"{count} containers running after {time.monotonic() - began:.0f} s")
        listed = await env.containers.list(all=True)
        containers = [(c.id, c.name) for c in listed]
        floor = await _times(lambda: env.client.get_json(
            "/containers/json", params={"all": True}), repeats)
        rows = [_row("engine floor: GET /containers/json?all=1 alone", floor)]
        sampled = MetricsEndpoint(env, lambda: RoundSampler(containers))
        rows += [f"{row[:2]}sampler: {row[2:]}" for row in
                 await _scrapes(sampled, repeats, VARIANTS[:1])]
        unsampled = MetricsEndpoint(env)
        rows += [f"{row[:2]}no sampler (one-shot stats round): {row[2:]}" for row in
                 await _scrapes(unsampled, max(5, repeats // 10), VARIANTS[:1])]
    return rows


def _report(synthetic_rows: list[str], podman_rows: list[str] | None, count: int,
            engine: str, total: float) -> str:
    head = "| scrape | n | p50 ms | p99 ms | p50 < 50 ms | size |\n|---|---:|---:|---:|---|---|"
    lines = [
        f"### Metrics: `/metrics` scrape at {count} containers (`{SCRIPT}`)", "",
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  "
        f"python={sys.version.split()[0]}  load={load_average()}  engine={engine}  "
        "machine: 2 cores shared with other work", "",
        f"Command: `.venv/bin/python {SCRIPT} --update-results` (total {total:.0f} s). "
        "In-process `GET /metrics` through httpx's ASGI transport (no TLS, no token "
        "check).", "",
        f"**synthetic** (canned engine, {count} containers x 10 metrics from the "
        "sampler's last round; GhostPanel's own cost):", "", head, *synthetic_rows, ""]
    if podman_rows is not None:
        lines += [f"**podman** ({count} real running containers):", "", head,
                  *podman_rows, "",
                  "The sampler rows include the scrape's wait for a fresh container "
                  "listing (20 ms at most; a slower listing serves the next scrape: "
                  "docs/prometheus.md), which is why they stay under the engine's own "
                  "listing time. The first scrape waits for its listing and inspects "
                  "every container once. Without the sampler each scrape sends one "
                  "stats request per running container.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_engine_option(parser)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--synthetic-only", action="store_true")
    parser.add_argument("--update-results", action="store_true")
    args = parser.parse_args()
    interrupt_on_sigterm()
    began = time.monotonic()
    synthetic_rows = asyncio.run(synthetic(args.containers, args.repeats))
    podman_rows = None
    engine_label = "none (synthetic only)"
    if not args.synthetic_only:
        engine = BenchEngine(args.engine)
        podman_rows = measure_on(engine, lambda: asyncio.run(
            podman(engine, args.containers, args.repeats)))
        if podman_rows is None:
            return 130
        engine_label = engine.label
    report = _report(synthetic_rows, podman_rows, args.containers, engine_label,
                     time.monotonic() - began)
    publish_report(report, SCRIPT, update=args.update_results, section="Metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())

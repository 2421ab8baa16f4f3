"""Sampler overhead: CPU seconds the sampling process spends per wall second, with N
running containers on a private Podman engine, scaled to 100 containers at 10 s.

Run from the repository root::

    .venv/bin/python bench/metrics_sampler.py                      # ~1-2 min
    .venv/bin/python bench/metrics_sampler.py --containers 40 --update-results

What it does: starts a private Podman engine (or uses ``--engine``), creates and starts
``--containers`` busybox containers (``sleep``), then runs the real
:class:`~ghostpanel_kernel.metrics._sampler.Sampler` in this process for ``--rounds``
rounds at ``--interval`` seconds (event subscriber included) into a fresh store, and
reads this process's CPU time (``time.process_time``: every thread, the store's
writes included) and the engine's (``/proc/PID/stat`` of the private ``podman system
service``) around it. Last, it starts a real ``ghostpanel agent`` on the same engine
twice, sampling every second and with sampling off, and reads its RSS (``VmRSS``)
``--settle`` seconds after it is ready (restarted once, so that its certificate
exists, as in ``bench/agent_start.py``): the agent's idle budget is 50 MB.

Creating 100 containers on a busy Podman can take minutes, so the default is fewer
and the figure is scaled linearly: a round's whole CPU divided by the containers, times 100.
A round is one listing plus one stats request and ten samples per container, so the
linear scale overstates the listing's share, a conservative projection. Target
(issue 12): under 2 % of one core at 100 containers and a 10 s interval.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench._engine import (
    BenchEngine,
    add_engine_option,
    interrupt_on_sigterm,
    log,
    measure_on,
    publish_report,
)
from bench._proc import cpu_seconds, rss_kib
from bench._report import load_average
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.metrics._sampler import Sampler
from ghostpanel_kernel.metrics._store import MetricsStore

SCRIPT = "bench/metrics_sampler.py"
TARGET_PERCENT = 2.0


def engine_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) of a process so far; None without one."""
    return None if pid is None else cpu_seconds(pid)


async def sample(engine: BenchEngine, rounds: int, interval: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gp-sbench-") as folder:
        store = MetricsStore(folder)
        async with Environment(engine.url, name="bench") as env:
            sampler = Sampler(env, store, interval)
            await sampler.sample_once()  # warm: connections, first CPU readings
            pid = engine.service.pid if engine.service is not None else None
            engine_before = engine_cpu(pid)
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            sampler.start()
            target = sampler.rounds + rounds
            while sampler.rounds < target:
                await asyncio.sleep(0.05)
            cpu = time.process_time() - cpu_before
            wall = time.perf_counter() - wall_before
            engine_after = engine_cpu(pid)
            await sampler.aclose()
            samples = len(store.rows(since=0))
        store.close()
    result = {"cpu": cpu, "wall": wall, "rounds": float(rounds), "samples": float(samples)}
    if engine_before is not None and engine_after is not None:
        result["engine_cpu"] = engine_after - engine_before
    return result


def agent_rss(engine: BenchEngine, settle: float) -> dict[str, float]:
    """RSS of a real ``ghostpanel agent`` on the engine (its containers running), with
    sampling at 1 s and with it off, ``settle`` seconds after it is ready."""
    from tests.agent_process import start_agent

    found: dict[str, float] = {}
    for label, interval in (("sampling every 1 s", "1"), ("sampling off", "0")):
        running = start_agent(engine.url, extra_args=["--metrics-interval", interval])
        try:
            # A first start makes the TLS certificate (and keeps `cryptography`'s
            # memory): measure a restart, as bench/agent_start.py's idle figure does.
            running.restart()
            time.sleep(settle)
            assert running.process is not None
            found[label] = rss_kib(running.process.pid) / 1024
        finally:
            running.stop()
    return found


def run(engine: BenchEngine, args: argparse.Namespace) -> dict[str, float]:
    async def setup_and_measure() -> dict[str, float]:
        log(f"creating and starting {args.containers} containers")
        ids = await engine.create_containers(args.containers, command=["sleep", "3600"])
        async with Environment(engine.url, name="bench") as env:
            for cid in ids:
                await (await env.containers.get(cid)).start()
        log(f"sampling {args.rounds} rounds every {args.interval} s")
        return await sample(engine, args.rounds, args.interval)

    result = asyncio.run(setup_and_measure())
    log("agent RSS with and without sampling")
    for label, mib in agent_rss(engine, args.settle).items():
        result[f"rss {label}"] = mib
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--settle", type=float, default=8.0,
                        help="seconds an agent runs before its RSS is read")
    parser.add_argument("--update-results", action="store_true")
    add_engine_option(parser)
    args = parser.parse_args()
    interrupt_on_sigterm()
    began = time.perf_counter()
    engine = BenchEngine(args.engine)
    result = measure_on(engine, lambda: run(engine, args))
    if result is None:
        raise SystemExit(130)
    per_round = result["cpu"] / result["rounds"]
    per_container = per_round / args.containers
    at_100 = per_container * 100 / 10.0 * 100  # % of one core at 100 containers, 10 s
    lines = [
        "### Metrics: sampler overhead (`bench/metrics_sampler.py`)", "",
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  "
        f"python={sys.version.split()[0]}  cpus=2  engine={engine.label}  "
        f"load={load_average()}  machine: 2 cores shared with other work", "",
        f"Command: `.venv/bin/python bench/metrics_sampler.py --containers "
        f"{args.containers} --rounds {args.rounds} --interval {args.interval:g}` (total "
        f"{time.perf_counter() - began:.0f} s). {args.containers} running busybox "
        f"containers" + ("." if args.containers == 100 else
                         " (the figure is scaled linearly to 100 per container, which "
                         "overstates the fixed listing cost).") + " The interval changes "
        "only how often a round runs: CPU per wall second at 10 s is a round's CPU / 10.",
        "",
        "| measured | value |", "|---|---:|",
        f"| rounds, wall seconds | {args.rounds}, {result['wall']:.1f} |",
        f"| samples written | {result['samples']:,.0f} |",
        f"| sampler CPU per round ({args.containers} containers) | "
        f"{per_round * 1000:.1f} ms |",
        f"| sampler CPU per container per round | {per_container * 1000:.2f} ms |",
        f"| **projected: 100 containers every 10 s** | **{at_100:.2f} % of one core** "
        f"(target < {TARGET_PERCENT:g} %) |"]
    if "engine_cpu" in result:
        engine_share = result["engine_cpu"] / result["rounds"] / args.containers * 100 / 10
        lines.append(f"| engine (podman service) CPU answering, projected the same way | "
                     f"{engine_share * 100:.2f} % of one core |")
    for key, mib in result.items():
        if key.startswith("rss "):
            lines.append(f"| agent RSS, {key[4:]} ({args.containers} containers, "
                         f"{args.settle:g} s after a restart) | {mib * 1.048576:.1f} MB |")
    publish_report("\n".join(lines), SCRIPT, update=args.update_results, section="Metrics")


if __name__ == "__main__":
    main()

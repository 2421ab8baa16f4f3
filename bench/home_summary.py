"""Home view: what one environment summary costs, and where the time goes.

    PYTHONPATH=. .venv/bin/python bench/home_summary.py [--engine unix:///p.sock]
        [--sizes 3,100] [--repeats 9] [--update-results]

A script, not a test. Without ``--engine`` it starts a private Podman engine (through
``bench/_engine.py``), runs ``--sizes`` sleeping containers there, and removes everything
at the end, also on Ctrl-C or SIGTERM. ``--update-results`` writes the figures into
bench/RESULTS.md, in this script's own block under "## Widgets".

What is measured (medians of the repeats, min..max beside), per number of running
containers, with one :class:`SummaryReader` (what a Home card refreshes with):

- a whole summary (listings, counts, one-shot stats of every running container), warm:
  the reader already knows the host (``/info`` is read once) and the version;
- the same without the stats round (``stats=False``): the counts alone;
- the stats round alone (one ``/stats?stream=false`` per running container, 16 in
  flight): the price of "CPU and memory in use" from container stats;
- ``GET /info`` alone: what reading the host's figures on every refresh would cost;
- a whole summary beside a silent environment (accepts, never answers) in one
  ``read_all``: the live summary's own time, which the silent one must not lengthen.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


async def _times(work: Callable[[], Awaitable[Any]], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def _cell(samples: list[float]) -> str:
    return f"{statistics.median(samples):.1f} ({min(samples):.1f}..{max(samples):.1f})"


async def _measure(engine: BenchEngine, sizes: list[int], repeats: int) -> str:
    from ghostpanel_kernel import connect
    from ghostpanel_kernel.environments import EnvironmentSpec
    from ghostpanel_kernel.environments._summary import SummaryReader

    rows = []
    running = 0
    with tempfile.TemporaryDirectory(prefix="gpb-home-") as folder:
        silent_path = f"{folder}/silent.sock"
        with socket.socket(socket.AF_UNIX) as silent:
            silent.bind(silent_path)
            silent.listen(64)
            async with connect(engine.url, name="bench") as env:
                for size in sizes:
                    ids = await engine.create_containers(size - running, command=SLEEPER)
                    limit = asyncio.Semaphore(8)

                    async def start(ident: str, limit: asyncio.Semaphore = limit) -> None:
                        async with limit:
                            await (await env.containers.get(ident)).start()

                    await asyncio.gather(*(start(ident) for ident in ids))
                    running = size
                    log(f"{size} containers running")
                    # Every read pays its stats round here: no pacing (the Home view paces).
                    reader = SummaryReader(timeout=30, stats_budget=25, stats_pacing=0)
                    counts = SummaryReader(timeout=30, stats=False)
                    first = await reader.read(env)
                    assert first.reachable and first.running >= size, first
                    await counts.read(env)
                    whole = await _times(lambda r=reader: r.read(env), repeats)
                    bare = await _times(lambda r=counts: r.read(env), repeats)
                    listed = [c.id for c in await env.containers.list()]

                    async def stats_round(r: SummaryReader = reader,
                                          ids: list[str] = listed) -> None:
                        await r._usage(env, ids, r.stats_budget)

                    stats = await _times(stats_round, repeats)
                    info = await _times(env.system.info, repeats)
                    beside = SummaryReader()  # the Home view's defaults: 5 s, 2 s of stats
                    silent_spec = EnvironmentSpec("silent", f"unix://{silent_path}")
                    await beside.read(env)
                    live_ms: list[float] = []
                    for _ in range(max(repeats // 3, 1)):
                        summaries = await beside.read_all([env, silent_spec])
                        assert summaries[0].reachable, summaries[0].reason
                        assert not summaries[1].reachable
                        live_ms.append(summaries[0].elapsed * 1000.0)
                    last = await reader.read(env)
                    rows.append(
                        f"| {size} | {_cell(whole)} | {_cell(bare)} | {_cell(stats)} | "
                        f"{_cell(info)} | {_cell(live_ms)} | "
                        f"{last.cpu_cores:.2f} cores, {last.memory_bytes or 0:,} B |")
    header = (
        f"### Home: one environment summary (`bench/home_summary.py`)\n\n"
        f"{engine.label}, private engine, this 2-core machine shared with other work; "
        f"milliseconds, median (min..max) of {repeats} warm reads. The silent column is "
        "the live summary's own time in a `read_all` beside an environment that never "
        "answers (that one ends at its 5 s timeout).\n\n"
        "| running containers | whole summary | counts only (no stats) | stats round | "
        "`GET /info` | whole, beside a silent host | in use (last read) |\n"
        "|---|---|---|---|---|---|---|\n")
    return header + "\n".join(rows) + (
        "\n\nHence: `/info` is read once per environment (host CPUs and memory), never "
        "per refresh; CPU and memory in use come from the one-shot stats of the running "
        "containers, the one cost that grows with them (the round has its own time "
        "budget, 2 s by default, and a card says how many containers it covered). The "
        "Home view paces what grows: a stats round over 0.1 s is repeated only after 4 "
        "times its duration (`SummaryReader(stats_pacing=4)`; this bench reads with "
        "pacing off), and a read after an engine event waits 4 times the last read's "
        "duration, so a card costs its engine at most about a fifth of its time.\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_engine_option(parser)
    parser.add_argument("--sizes", default="3,100",
                        help="running containers, increasing, comma-separated")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--update-results", action="store_true")
    arguments = parser.parse_args()
    sizes = sorted(int(size) for size in arguments.sizes.split(","))
    interrupt_on_sigterm()
    engine = BenchEngine(arguments.engine)
    report = measure_on(engine, lambda: asyncio.run(_measure(engine, sizes,
                                                             arguments.repeats)))
    if report is None:
        return 130
    publish_report(report, "bench/home_summary.py", update=arguments.update_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Metrics history to pandas: one million stored samples -> a tidy DataFrame, timed as a
notebook calls it (``await env.metrics.history(...)``), and ``.wide()`` on the result.

Run from the repository root (no engine needed: a local environment's history is the
store's)::

    .venv/bin/python bench/metrics_frame.py                    # ~1 min
    .venv/bin/python bench/metrics_frame.py --update-results   # + RESULTS.md

What it sets up: a fresh :class:`MetricsStore` in a temporary folder holding
``--samples`` raw samples (default 1,000,000: 100 containers x 10 metrics x 1,000
rounds, ten seconds apart, about 2.8 hours of a 100-container host), written in rounds
as the sampler writes them. Write time and file size are reported for context (the
store's own figures are M1's, under "Metrics: store").

What it times, each the median and range of ``--repeats`` runs:

* ``history(since=..., until=...)``: the whole call: the store's query, the frame
  built, the :class:`MetricsFrame` with UTC times, through the event loop's thread hop;
* the same call for one container (1 % of the rows);
* ``frame.wide()`` on the million-row frame (one column per metric).

Target (issue 12, item 7): 1 million samples -> DataFrame in under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench._engine import log, publish_report
from bench._report import load_average
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.metrics import METRICS, Sample
from ghostpanel_kernel.metrics._history import EnvironmentMetrics
from ghostpanel_kernel.metrics._store import MetricsStore

SCRIPT = "bench/metrics_frame.py"
TARGET_S = 1.0
START = 1_765_000_000.0
STEP = 10.0


def fill(store: MetricsStore, samples: int, containers: int) -> tuple[int, float]:
    """Write ``samples`` samples as sampler rounds; (rounds, seconds it took)."""
    per_round = containers * len(METRICS)
    rounds = max(samples // per_round, 1)
    started = time.perf_counter()
    for index in range(rounds):
        at = START + index * STEP
        store.write([Sample(at, "bench", f"app-{c:03d}", f"{c:064x}", "localhost/app",
                            metric, float((index * 7 + c) % 1000))
                     for c in range(containers) for metric in METRICS])
    return rounds, time.perf_counter() - started


def timed(repeats: int, call: Callable[[], object]) -> tuple[list[float], object]:
    times: list[float] = []
    result: object = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return times, result


def spread(times: list[float]) -> str:
    return (f"{statistics.median(times) * 1000:.0f} ms "
            f"({min(times) * 1000:.0f}-{max(times) * 1000:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--update-results", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gp-bench-metrics-") as folder, \
            MetricsStore(Path(folder)) as store:
        log(f"writing {args.samples:,} samples ...")
        rounds, write_s = fill(store, args.samples, args.containers)
        stored = rounds * args.containers * len(METRICS)
        env = Environment("unix:///nonexistent/engine.sock", name="bench")
        metrics = EnvironmentMetrics(env, store=store)
        until = START + rounds * STEP

        def whole() -> object:
            return asyncio.run(metrics.history(since=START, until=until))

        def one() -> object:
            return asyncio.run(metrics.history("app-007", since=START, until=until))

        log("timing history() ...")
        whole_times, frame = timed(args.repeats, whole)
        assert len(frame) == stored, (len(frame), stored)  # type: ignore[arg-type]
        one_times, single = timed(args.repeats, one)
        assert len(single) == rounds * len(METRICS)  # type: ignore[arg-type]
        wide_times, wide = timed(args.repeats, frame.wide)  # type: ignore[attr-defined]
        assert wide.shape == (rounds * args.containers, len(METRICS))  # type: ignore[attr-defined]
        size = store.size_bytes()

    median = statistics.median(whole_times)
    verdict = "met" if median < TARGET_S else "NOT met"
    report = "\n".join([
        f"### Metrics: history to pandas (`{SCRIPT}`)",
        "",
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  "
        f"python={sys.version.split()[0]}  load={load_average()}  "
        "machine: 2 cores shared with other work",
        "",
        f"Command: `.venv/bin/python {SCRIPT} --update-results`. A fresh SQLite "
        f"MetricsStore with {stored:,} raw samples ({args.containers} containers x "
        f"{len(METRICS)} metrics x {rounds:,} rounds, {STEP:g} s apart), written in "
        f"{write_s:.1f} s ({size / 1e6:.0f} MB). Median (min-max) of {args.repeats} runs.",
        "",
        "| call | rows | time |",
        "|---|---:|---:|",
        f"| `await env.metrics.history(since, until)` (whole call) | {stored:,} | "
        f"{spread(whole_times)} |",
        f"| same, one container | {rounds * len(METRICS):,} | {spread(one_times)} |",
        f"| `frame.wide()` | {stored:,} -> {rounds * args.containers:,} x "
        f"{len(METRICS)} | {spread(wide_times)} |",
        "",
        "The slowest whole call is the first: it imports pandas and numpy (nothing else "
        "in the process had). Store-side figures: \"Metrics: store layouts\".",
        "",
        f"Target (issue 12): 1 million samples -> DataFrame in under {TARGET_S:g} s: "
        f"**{verdict}** ({median:.2f} s).",
    ])
    publish_report(report, SCRIPT, update=args.update_results, section="Metrics")


if __name__ == "__main__":
    main()

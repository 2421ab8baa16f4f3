"""The cost of one alert evaluation round at fleet scale, no engine needed.

Run from the repository root::

    .venv/bin/python bench/alerts_round.py              # ~20 s

Data: ``--containers`` containers (default 100) sampled every 10 s for 30 minutes
(the default ``memory_growth`` window), all ten metrics, in a fresh
:class:`MetricsStore`; a canned engine listing. Rules: one of each built-in kind a
host would run (down, unhealthy, restart_loop, memory_growth over 30 min,
cpu_saturated, a pids threshold), over every container.

Reported (medians of ``--repeats`` rounds): the wall time of
:meth:`AlertEvaluator.evaluate` (store read, conditions, state update), its CPU time,
and that CPU as a share of one core at a 10 s interval.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ghostpanel_kernel.metrics import METRICS, Sample
from ghostpanel_kernel.metrics._alert_rules import parse_rules
from ghostpanel_kernel.metrics._alerts import AlertEvaluator
from ghostpanel_kernel.metrics._store import MetricsStore

RULES = parse_rules({"rules": [
    {"name": "down", "kind": "down"},
    {"name": "unhealthy", "kind": "unhealthy", "for": "1m"},
    {"name": "loop", "kind": "restart_loop"},
    {"name": "leak", "kind": "memory_growth", "window": "30m", "min_rate": "10MiB/h"},
    {"name": "cpu", "kind": "cpu_saturated", "cores": 1, "for": "2m"},
    {"name": "pids", "kind": "threshold", "metric": "pids", "op": ">", "value": 500}]})


class _Container:
    def __init__(self, index: int) -> None:
        self.name = f"c{index:03d}"
        self.id = f"{index:064x}"
        self.image = "busybox"
        self.state = "running"
        self.health = ""
        self.labels: dict[str, str] = {}
        self.status = "Up 2 hours"


class _Containers:
    def __init__(self, count: int) -> None:
        self.listed = [_Container(i) for i in range(count)]

    async def list(self, *, all: bool = False) -> list[_Container]:
        return self.listed


class _Env:
    """What the evaluator asks of an environment: a listing."""

    def __init__(self, count: int) -> None:
        self.name = "bench"
        self.containers = _Containers(count)


def _fill(store: MetricsStore, count: int, now: float) -> int:
    random.seed(1)
    rounds = 180  # 30 minutes at 10 s
    written = 0
    for step in range(rounds):
        when = now - (rounds - step) * 10
        batch = [Sample(when, "bench", f"c{i:03d}", f"{i:064x}", "busybox", metric,
                        random.random() * 1e8)
                 for i in range(count) for metric in METRICS]
        written += store.write(batch)
    return written


async def _measure(count: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = MetricsStore(Path(folder))
        now = time.time()
        samples = _fill(store, count, now)
        evaluator = AlertEvaluator(_Env(count), store, RULES,  # type: ignore[arg-type]
                                   deliveries=[], environment="bench")
        walls, cpus = [], []
        for index in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            await evaluator.evaluate(now + index)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        await evaluator.aclose()
        store.close()
    return {"samples": samples, "wall": statistics.median(walls),
            "cpu": statistics.median(cpus)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    options = parser.parse_args()
    found = asyncio.run(_measure(options.containers, options.repeats))
    print(f"containers={options.containers} samples in window={found['samples']:,} "
          f"rules={len(RULES.rules)}")
    print("| measured | value |\n|---|---:|")
    print(f"| evaluate(): wall, median of {options.repeats} | {found['wall'] * 1e3:.1f} ms |")
    print(f"| evaluate(): CPU | {found['cpu'] * 1e3:.1f} ms |")
    print(f"| CPU share of one core at a 10 s interval | {found['cpu'] / 10 * 100:.2f} % |")


if __name__ == "__main__":
    main()

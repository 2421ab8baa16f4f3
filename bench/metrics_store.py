"""Metrics store layouts compared: SQLite (chosen: one row per sampling round, values as
blobs), SQLite one row per sample, and Parquet files (pyarrow), on the same samples.

Run from the repository root (no engine needed)::

    .venv/bin/python bench/metrics_store.py                    # ~1-2 min
    .venv/bin/python bench/metrics_store.py --update-results   # + RESULTS.md

Data: ``--samples`` samples (default 1,000,000: 100 containers x 10 metrics x 1,000
rounds ten seconds apart), written as the sampler writes them, one round at a time.
Parquet cannot append: it is modelled as the sampler would have to use it, rounds
buffered in memory and flushed as one file every ``--parquet-flush`` rounds (60 = ten
minutes at 10 s, what a crash would lose).

Per layout, medians of ``--repeats`` runs:

* write cost: milliseconds per 1,000-sample round (Parquet: a flush's cost spread over
  its rounds);
* 1 million samples -> the tidy DataFrame (time UTC, environment, container, metric,
  value), the whole call (target: under 1 s), read twice per run: the median of the
  second reads, and in brackets of the first (pandas' own first-use imports, a cold
  page cache);
* bytes per container-day at a 10 s interval (10 metrics x 8,640 rounds), from the
  files' size on disk (SQLite: after a checkpoint);
* the memory the writing side costs: RSS added by importing and writing one round in a
  fresh interpreter (the agent's idle budget is 50 MB).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench._engine import log, publish_report
from bench._report import load_average
from ghostpanel_kernel.metrics import METRICS, Sample
from ghostpanel_kernel.metrics._store import MetricsStore

SCRIPT = "bench/metrics_store.py"
START = 1_765_000_000.0
STEP = 10.0
CONTAINER_DAY = len(METRICS) * 8640  # samples of one container in a day at 10 s


def rounds_of(samples: int, containers: int) -> list[list[Sample]]:
    # Values vary like real ones (not a repeating pattern that columnar compression
    # would flatter): a seeded random walk per series.
    rng = random.Random(12)
    per_round = containers * len(METRICS)
    level = [rng.uniform(0, 1e6) for _ in range(per_round)]
    rounds = []
    for i in range(max(samples // per_round, 1)):
        level = [max(v + rng.gauss(0, 1e3), 0.0) for v in level]
        rounds.append([Sample(START + i * STEP, "bench", f"app-{c:03d}", f"{c:064x}",
                              "localhost/app", metric, level[c * len(METRICS) + m])
                       for c in range(containers) for m, metric in enumerate(METRICS)])
    return rounds


def median_ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:,.0f}"


# -- layouts -------------------------------------------------------------------------


class Layout:
    name = ""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, rounds: list[list[Sample]]) -> float:
        """Write every round; seconds per round."""
        raise NotImplementedError

    def frame(self) -> Any:
        raise NotImplementedError

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


class Chunked(Layout):
    name = "SQLite, a row per round (chosen)"

    def write(self, rounds: list[list[Sample]]) -> float:
        self.store = MetricsStore(self.folder)
        started = time.perf_counter()
        for samples in rounds:
            self.store.write(samples)
        spent = time.perf_counter() - started
        self.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return spent / len(rounds)

    def frame(self) -> Any:
        return self.store.samples()


class RowPerSample(Layout):
    name = "SQLite, a row per sample"

    def write(self, rounds: list[list[Sample]]) -> float:
        self.db = sqlite3.connect(self.folder / "rows.sqlite3", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE series (id INTEGER PRIMARY KEY, environment, "
                        "container, metric)")
        self.db.execute("CREATE TABLE raw (time REAL, series INTEGER, value REAL, "
                        "PRIMARY KEY (time, series)) WITHOUT ROWID")
        ids: dict[tuple[str, str, str], int] = {}
        started = time.perf_counter()
        for samples in rounds:
            self.db.execute("BEGIN")
            rows = []
            for s in samples:
                key = (s.environment, s.container, s.metric)
                if key not in ids:
                    ids[key] = len(ids) + 1
                    self.db.execute("INSERT INTO series VALUES (?, ?, ?, ?)", (ids[key], *key))
                rows.append((s.time, ids[key], s.value))
            self.db.executemany("INSERT INTO raw VALUES (?, ?, ?)", rows)
            self.db.execute("COMMIT")
        spent = time.perf_counter() - started
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return spent / len(rounds)

    def frame(self) -> Any:
        import numpy as np
        import pandas as pd

        found = self.db.execute("SELECT time, series, value FROM raw ORDER BY time, series"
                                ).fetchall()
        table = np.fromiter(found, dtype=[("time", "f8"), ("series", "i8"), ("value", "f8")],
                            count=len(found))
        labels = self.db.execute("SELECT id, environment, container, metric FROM series "
                                 "ORDER BY id").fetchall()
        frame: dict[str, Any] = {"time": pd.to_datetime(table["time"], unit="s", utc=True)}
        for index, name in enumerate(("environment", "container", "metric"), start=1):
            categories = sorted({row[index] for row in labels})
            code = {label: i for i, label in enumerate(categories)}
            codes = np.array([0] + [code[row[index]] for row in labels], dtype=np.int32)
            frame[name] = pd.Categorical.from_codes(codes[table["series"]],
                                                    pd.Index(categories))
        frame["value"] = table["value"]
        return pd.DataFrame(frame)


class ParquetFiles(Layout):
    name = "Parquet files (pyarrow)"

    def __init__(self, folder: Path, flush: int) -> None:
        super().__init__(folder)
        self.flush = flush

    def write(self, rounds: list[list[Sample]]) -> float:
        import pyarrow as pa
        import pyarrow.parquet as pq

        started = time.perf_counter()
        for first in range(0, len(rounds), self.flush):
            batch = [s for samples in rounds[first:first + self.flush] for s in samples]
            table = pa.table({
                "time": pa.array([s.time for s in batch], pa.float64()),
                "environment": pa.array([s.environment for s in batch]).dictionary_encode(),
                "container": pa.array([s.container for s in batch]).dictionary_encode(),
                "metric": pa.array([s.metric for s in batch]).dictionary_encode(),
                "value": pa.array([s.value for s in batch], pa.float64())})
            pq.write_table(table, self.folder / f"{first:08d}.parquet")
        return (time.perf_counter() - started) / len(rounds)

    def frame(self) -> Any:
        import pandas as pd

        frame = pd.read_parquet(self.folder)
        frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
        return frame


# -- memory of the writing side ------------------------------------------------------

_RSS = """
import sys, time
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
before = rss()
{code}
print(rss() - before)
"""

_WRITERS = {
    "baseline": "import ghostpanel_kernel.server._app\n",
    "SQLite (MetricsStore)": (
        "import tempfile, ghostpanel_kernel.server._app\n"
        "from ghostpanel_kernel.metrics import Sample\n"
        "from ghostpanel_kernel.metrics._store import MetricsStore\n"
        "s = MetricsStore(tempfile.mkdtemp())\n"
        "s.write([Sample(1.0, 'e', f'c{i}', 'id', 'img', 'pids', 1.0) for i in range(1000)])\n"
        "s.rows()\n"),
    "Parquet (pyarrow)": (
        "import tempfile, ghostpanel_kernel.server._app, pyarrow as pa, pyarrow.parquet as pq\n"
        "pq.write_table(pa.table({'time': [1.0] * 1000, 'value': [1.0] * 1000}),\n"
        "               tempfile.mkdtemp() + '/x.parquet')\n"),
}


def writer_rss() -> dict[str, float]:
    added: dict[str, float] = {}
    for name, code in _WRITERS.items():
        out = subprocess.run([sys.executable, "-c", _RSS.format(code=code)],
                             capture_output=True, text=True, check=True, timeout=120)
        added[name] = float(out.stdout.strip())
    return added


# -- main ----------------------------------------------------------------------------


def measure(make: Callable[[Path], Layout], rounds: list[list[Sample]], repeats: int
            ) -> dict[str, Any]:
    writes: list[float] = []
    reads: list[float] = []
    firsts: list[float] = []
    size = 0
    rows = 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="gp-mbench-") as folder:
            layout = make(Path(folder))
            writes.append(layout.write(rounds))
            size = layout.size()
            for times in (firsts, reads):  # the first read after writing, then again
                started = time.perf_counter()
                frame = layout.frame()
                times.append(time.perf_counter() - started)
            rows = len(frame)
            store = getattr(layout, "store", None)
            if store is not None:
                store.close()
    samples = sum(len(r) for r in rounds)
    return {"write": writes, "read": reads, "first": firsts, "rows": rows,
            "per_day": size / samples * CONTAINER_DAY, "name": make(Path(".")).name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parquet-flush", type=int, default=60)
    parser.add_argument("--update-results", action="store_true")
    args = parser.parse_args()
    began = time.perf_counter()
    import pandas  # noqa: F401  (imported once, before any timing: a notebook has it)

    rounds = rounds_of(args.samples, args.containers)
    layouts: list[Callable[[Path], Layout]] = [
        Chunked, RowPerSample, lambda folder: ParquetFiles(folder, args.parquet_flush)]
    results = []
    for make in layouts:
        log(f"measuring {make(Path('.')).name}")
        results.append(measure(make, rounds, args.repeats))
    log("measuring the writing side's memory")
    memory = writer_rss()
    samples = sum(len(r) for r in rounds)
    lines = [
        "### Metrics: store layouts (`bench/metrics_store.py`)", "",
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  "
        f"python={sys.version.split()[0]}  cpus=2  load={load_average()}  "
        "machine: 2 cores shared with other work (wall times are inflated by the load)",
        "",
        f"Command: `.venv/bin/python bench/metrics_store.py --update-results` (total "
        f"{time.perf_counter() - began:.0f} s). {samples:,} samples: {args.containers} "
        f"containers x {len(METRICS)} metrics x {len(rounds):,} rounds; medians of "
        f"{args.repeats} runs. Parquet flushes every {args.parquet_flush} rounds.", "",
        f"| layout | write, ms per {samples // len(rounds):,}-sample round "
        f"| {samples:,} samples -> DataFrame, ms (first read after writing) "
        "| rows | bytes per container-day (10 s) |",
        "|---|---:|---:|---:|---:|"]
    for result in results:
        per_round = statistics.median(result["write"]) * 1000 * 1000 / (
            samples / len(rounds))
        read = f"{median_ms(result['read'])} ({median_ms(result['first'])})"
        lines.append(f"| {result['name']} | {per_round:,.1f} | {read} "
                     f"| {result['rows']:,} | {result['per_day'] / 1e6:.2f} MB |")
    base = memory.pop("baseline")
    lines += ["", "RSS the writing side adds to the agent's own modules "
                  f"(`ghostpanel_kernel.server._app`, {base:.1f} MiB; then import, write 1,000 "
                  "samples, read back; fresh interpreter each): " + ", ".join(
                      f"{name} +{mib - base:.1f} MiB" for name, mib in memory.items()) + "."]
    report = "\n".join(lines)
    publish_report(report, SCRIPT, update=args.update_results, section="Metrics")


if __name__ == "__main__":
    main()

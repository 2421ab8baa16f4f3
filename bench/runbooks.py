"""Runbooks: what a run costs beyond its own cells, and the scheduler's bookkeeping.

    PYTHONPATH=. .venv/bin/python bench/runbooks.py [--runs 5]

A script, not a test; no engine is needed. Its GhostPanel home is a temporary folder.
It times, in one process after a warm-up run:

- **run**: ``run_runbook`` of a two-cell notebook that prints a line, split into the
  papermill execution (a kernel started, the cells run, the notebook written), the HTML
  export (nbconvert's ``lab`` template) and the rest (history rows, the audit row);
- **cron**: ``parse_cron(...).next_after`` of a common and of the rarest expression;
- **history**: one run written and finished, then the newest 50 read (what each run and
  each refresh of the launcher's grid cost).

Figures: p50 and p90 (nearest rank) in ms.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from ghostpanel_kernel.runbooks import RunHistory, RunRecord, _run, parse_cron, run_runbook


def percentiles(values: list[float], digits: int = 1) -> str:
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    return f"{rank(0.5):.{digits}f} / {rank(0.9):.{digits}f}"


def timed(function: Callable[[], object], runs: int) -> list[float]:
    function()  # warm-up
    values = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        values.append((time.perf_counter() - start) * 1000)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gp-bench-runbooks-"))
    os.environ["GHOSTPANEL_HOME"] = str(folder / "home")
    notebook = folder / "hello.ipynb"
    nbformat.write(new_notebook(cells=[
        new_code_cell("who = 'bench'", metadata={"tags": ["parameters"]}),
        new_code_cell("print(f'hello {who}')")]), notebook)

    phases: dict[str, list[float]] = {"export": []}
    export = _run.export_html

    def export_timed(path: Path) -> Path:
        start = time.perf_counter()
        try:
            return export(path)
        finally:
            phases["export"].append((time.perf_counter() - start) * 1000)

    _run.export_html = export_timed  # type: ignore[assignment]
    totals = timed(lambda: run_runbook(str(notebook), {"who": "x"}), options.runs)
    durations = [run.duration * 1000 for run in RunHistory().runs(limit=options.runs)
                 if run.duration is not None]
    exports = phases["export"][1:]
    print(f"run total p50/p90 ms: {percentiles(totals)}")
    print(f"  recorded duration (papermill + export): {percentiles(durations)}")
    print(f"  of which HTML export: {percentiles(exports)}")
    print(f"  the rest (history, audit): "
          f"{percentiles([t - d for t, d in zip(sorted(totals), sorted(durations), strict=True)])}")

    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    for expression in ("*/15 2 * * mon-fri", "0 0 29 2 *"):
        schedule = parse_cron(expression)
        values = timed(lambda s=schedule: s.next_after(now), options.runs * 20)
        print(f"cron next_after {expression!r} p50/p90 ms: {percentiles(values, 3)}")

    history = RunHistory(folder / "other")
    counter = iter(range(10**6))

    def write_and_read() -> None:
        run_id = f"run-{next(counter)}"
        history.start(RunRecord(run_id, "x", {}, None, "manual", "running", time.time(),
                                None, None, "/x.ipynb", None))
        history.finish(run_id, status="succeeded")
        history.runs(limit=50)

    print(f"history write+finish+read50 p50/p90 ms: "
          f"{percentiles(timed(write_and_read, options.runs * 20))}")


if __name__ == "__main__":
    main()

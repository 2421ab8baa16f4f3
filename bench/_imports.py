"""Import cost, measured in fresh interpreters.

Each statement runs in its own ``python -c`` subprocess (``PYTHONPATH`` = the project,
the working directory a neutral temp dir). Inside, the script reads ``VmRSS`` from
``/proc/self/status`` just before and just after the statement and times the statement
with ``perf_counter``; so "+RSS" is what the import added over the bare interpreter
(which has already run ``site``), and "ms" is the import alone, not interpreter start.
One unmeasured run first makes sure bytecode caches exist. Medians of ``reps`` runs.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ._scenarios import Result

ROOT = Path(__file__).resolve().parent.parent

STATEMENTS = [
    ("bare python", "pass"),
    ("import ghostpanel_kernel", "import ghostpanel_kernel"),
    ("from ghostpanel_kernel import connect", "from ghostpanel_kernel import connect"),
    ("import ghostpanel_kernel.engine", "import ghostpanel_kernel.engine"),
    ("import httpx (reference)", "import httpx"),
    ("import aiodocker (reference)", "import aiodocker"),
    ("import docker (reference)", "import docker"),
]

_PROBE = """\
import time
def _rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
_b = _rss(); _t = time.perf_counter()
{statement}
_d = time.perf_counter() - _t; _a = _rss()
print("PROBE", _b, _a, _d)
"""


CANDIDATE_STATEMENTS = [
    ("candidate: import ghostpanel_kernel", "import ghostpanel_kernel"),
    ("candidate: from ghostpanel_kernel import connect", "from ghostpanel_kernel import connect"),
    ("candidate: import ghostpanel_kernel.engine", "import ghostpanel_kernel.engine"),
]


def _env(root: Path = ROOT) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _probe(statement: str, cwd: str, root: Path = ROOT) -> tuple[int, int, float]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(statement=statement)],
                         capture_output=True, text=True, env=_env(root), cwd=cwd, check=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("PROBE"))
    _, before, after, seconds = line.split()
    return int(before), int(after), float(seconds)


def measure(reps: int, candidate: Path | None = None
            ) -> tuple[list[Result], dict[str, list[tuple[str, int, int]]]]:
    """Every statement ``reps`` times, round-robin (so load changes hit all alike)."""
    jobs = [(label, statement, ROOT) for label, statement in STATEMENTS]
    if candidate is not None:
        # The candidate is a copy of the ghostpanel_kernel folder: put its parent first.
        jobs += [(label, statement, candidate.parent)
                 for label, statement in CANDIDATE_STATEMENTS]
    results: list[Result] = []
    rows: dict[str, tuple[Result, Result, Result]] = {}
    with tempfile.TemporaryDirectory(prefix="gpb-imp-") as cwd:
        for label, statement, root in jobs:
            _probe(statement, cwd, root)  # bytecode caches
            rows[label] = (Result("import", label, "", "ms", "lower"),
                           Result("import", label, "", "MiB RSS added", "lower"),
                           Result("import", label, "", "MiB RSS total", "lower"))
        for _ in range(reps):
            for label, statement, root in jobs:
                times, rss, totals = rows[label]
                before, after, seconds = _probe(statement, cwd, root)
                times.samples.append(seconds * 1000)
                rss.samples.append((after - before) / 1024)
                totals.samples.append(after / 1024)
        for triple in rows.values():
            results += triple
        profiles = {stmt: importtime(stmt, cwd) for stmt in
                    ("from ghostpanel_kernel import connect", "import ghostpanel_kernel.engine")}
    return results, profiles


_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def importtime(statement: str, cwd: str, runs: int = 5) -> list[tuple[str, int, int]]:
    """``-X importtime`` rows (module, self us, cumulative us), medians of ``runs``."""
    samples: dict[str, list[tuple[int, int, int]]] = {}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                             capture_output=True, text=True, env=_env(), cwd=cwd, check=True)
        for match in _LINE.finditer(out.stderr):
            own, cumulative, indent, name = match.groups()
            depth = (len(indent) - 1) // 2
            samples.setdefault(name, []).append((int(own), int(cumulative), depth))
    rows = []
    for name, values in samples.items():
        rows.append((name, int(statistics.median(v[0] for v in values)),
                     int(statistics.median(v[1] for v in values)), values[0][2]))
    return rows  # type: ignore[return-value]


def summarize_importtime(rows: list, top: int = 12) -> str:
    """Top contributors: direct imports by cumulative time, and modules by self time."""
    out = []
    top_level = sorted((r for r in rows if r[3] <= 1), key=lambda r: -r[2])[:top]
    out.append("  cumulative (top-level and first-level imports):")
    for name, _own, cumulative, depth in top_level:
        out.append(f"    {cumulative / 1000:7.1f} ms  {'  ' * depth}{name}")
    out.append("  self time (any module):")
    for name, own, _cumulative, _depth in sorted(rows, key=lambda r: -r[1])[:top]:
        out.append(f"    {own / 1000:7.1f} ms  {name}")
    packages: dict[str, int] = {}
    for name, own, _cumulative, _depth in rows:
        package = name.split(".")[0]
        packages[package] = packages.get(package, 0) + own
    total = sum(packages.values())
    out.append(f"  self time summed by top-level package (all modules: {total / 1000:.1f} ms):")
    for package, own in sorted(packages.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"    {own / 1000:7.1f} ms  {package}")
    return "\n".join(out)

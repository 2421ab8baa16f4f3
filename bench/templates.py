"""App templates: how long listing, importing, rendering and ``template ls`` take.

    PYTHONPATH=. .venv/bin/python bench/templates.py [--count 100] [--runs 20]

A script, not a test; no engine is needed. Its GhostPanel home is a temporary folder.
It writes a Portainer v3 file of ``--count`` container templates (each with ports,
volumes, three env variables, one of them a select), then times, in one process after
a warm-up run:

- **import**: ``TemplateLibrary.import_source(file)``: JSON, the conversion of every
  template to TOML, and the files written;
- **list**: ``TemplateLibrary.templates()``: the 6 curated templates and the imported
  source, every file read and parsed (what ``ls``, ``show`` and the gallery do);
- **render**: ``render_template`` of each curated template: placeholders, the Boltfile
  parse and the validator (what each keystroke of the gallery's form costs);
- **cli**: ``ghostpanel template ls`` as a user runs it (a fresh interpreter: imports
  included), once per run.

Figures: p50 and p90 (nearest rank) in ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ghostpanel_kernel.templates import TemplateLibrary, render_template


def portainer(count: int) -> dict[str, object]:
    """A Portainer v3 file of ``count`` container templates."""
    return {"version": "3", "templates": [{
        "type": 1, "title": f"App {index}", "image": f"registry.example/app{index}:1.0",
        "categories": ["bench", f"group{index % 5}"], "description": "an app",
        "ports": [f"{8000 + index}:80/tcp", "53/udp"],
        "volumes": [{"container": "/data"}, {"container": "/conf", "bind": "/srv/conf",
                                             "readonly": True}],
        "env": [{"name": "MODE", "select": [{"text": "A", "value": "a", "default": True},
                                            {"text": "B", "value": "b"}]},
                {"name": "TOKEN", "label": "Token"},
                {"name": "LEVEL", "default": "3"}]} for index in range(count)]}


def timed(function: Callable[[], object], runs: int) -> list[float]:
    function()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


def rank(times: list[float], fraction: float) -> float:
    return times[max(0, math.ceil(fraction * len(times)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gp-bench-templates-") as folder:
        home = Path(folder) / "home"
        source = Path(folder) / "portainer.json"
        source.write_text(json.dumps(portainer(args.count)), encoding="utf-8")
        library = TemplateLibrary(home)
        curated = [t for t in library.templates() if t.source == "curated"]
        cli_env = {**os.environ, "GHOSTPANEL_HOME": str(home)}
        rows = [
            (f"import ({args.count} templates)",
             timed(lambda: library.import_source(str(source), name="bench"), args.runs)),
            (f"list (6 curated + {args.count})", timed(library.templates, args.runs)),
            ("render + validate (6 curated, each)",
             timed(lambda: [render_template(t) for t in curated], args.runs)),
            ("cli: ghostpanel template ls", timed(lambda: subprocess.run(
                [sys.executable, "-m", "ghostpanel_kernel.cli", "template", "ls"],
                check=True, capture_output=True, env=cli_env), max(3, args.runs // 4))),
        ]
    print("| what | p50 ms | p90 ms | runs |")
    print("|---|---:|---:|---:|")
    for name, times in rows:
        if name.startswith("render"):
            times = [t / len(curated) for t in times]
        print(f"| {name} | {rank(times, 0.5):.1f} | {rank(times, 0.9):.1f} | {len(times)} |")


if __name__ == "__main__":
    main()

"""Compose -> Boltfile and Boltfile -> Kubernetes: how long a conversion takes.

    PYTHONPATH=. .venv/bin/python bench/conversions.py [--services 1,10,100] [--runs 20]

A script, not a test; no engine is needed. For each size it writes a Compose file of
that many services (each with an image, two ports, env, a named volume, a bind mount,
limits, a health check and a dependency on the previous service), then times, in one
process after a warm-up run:

- **from-compose**: ``from_compose(path)`` -- YAML, interpolation, the conversion, the
  formatter and the validator (which runs twice: once to find errors to note, and once
  more in ``fmt``'s read-back);
- **export**: ``to_kubernetes(boltfile)`` -- validation, the objects and the YAML dump;
- **cli**: ``ghostpanel boltfile from-compose FILE`` as a user runs it (a fresh
  interpreter: imports included), once per run.

Figures: p50 and p90 (nearest rank) in ms.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ghostpanel_kernel.bolt import Boltfile, from_compose, to_kubernetes


def compose_text(services: int) -> str:
    """A Compose file of ``services`` services, each using most of what converts."""
    lines = ["services:"]
    for index in range(services):
        lines += [
            f"  svc{index}:",
            f"    image: registry.example/app{index}:${{TAG:-1.0}}",
            "    command: [serve, --port, '8080']",
            f"    ports: ['{10000 + 2 * index}:8080', '{10001 + 2 * index}:8443']",
            "    environment:",
            f"      NAME: svc{index}",
            "      LEVEL: ${LEVEL:-info}",
            f"    volumes: ['data{index}:/data', './conf:/conf:ro']",
            "    deploy: {replicas: 2, resources: {limits: {cpus: '0.5', memory: 256M}}}",
            "    healthcheck: {test: [CMD, true], interval: 10s}",
            "    restart: unless-stopped",
        ]
        if index:
            lines.append(f"    depends_on: [svc{index - 1}]")
    lines.append("volumes:")
    lines += [f"  data{index}: {{}}" for index in range(services)]
    return "\n".join(lines) + "\n"


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _timed(function: Callable[[], object], runs: int) -> tuple[float, float]:
    function()  # warm-up: imports and caches
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return _percentile(samples, 0.5), _percentile(samples, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--services", default="1,10,100")
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    print("| services | from-compose p50 / p90 | export p50 / p90 | cli p50 / p90 |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for count in (int(n) for n in options.services.split(",")):
            compose = Path(folder) / f"compose-{count}.yaml"
            compose.write_text(compose_text(count))
            result = from_compose(compose, environ={})
            boltfile = Boltfile.loads(result.boltfile_text, path=str(compose))
            convert = _timed(lambda: from_compose(compose, environ={}), options.runs)  # noqa: B023
            export = _timed(lambda: to_kubernetes(boltfile, base_dir=folder),  # noqa: B023
                            options.runs)
            command = [sys.executable, "-m", "ghostpanel_kernel.cli", "boltfile",
                       "from-compose", str(compose)]
            cli = _timed(lambda: subprocess.run(command, check=True,  # noqa: B023
                                                capture_output=True), max(3, options.runs // 4))
            print(f"| {count} | {convert[0]:.1f} / {convert[1]:.1f} | {export[0]:.1f} / "
                  f"{export[1]:.1f} | {cli[0]:.0f} / {cli[1]:.0f} |")


if __name__ == "__main__":
    main()

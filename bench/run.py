"""GhostPanel engine client benchmark: raw floors, aiodocker, docker-py, httpx, ghostpanel.

    PYTHONPATH=. .venv/bin/python bench/run.py [--engine unix:///path.sock] [--quick]
                                               [--json out.json] [--only ping,logs]

Without ``--engine`` a private Podman engine is started under /tmp, busybox imported,
and everything removed and stopped at the end (also on Ctrl-C, SIGTERM or an error).
See bench/README.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import _imports, _report, _scenarios
from bench._clients import ALL, RAW, Adapter, load_candidate
from bench._engine import BenchEngine, interrupt_on_sigterm, log

SCENARIOS = ("imports", "ping", "inflight", "logs", "list")


def _versions(engine: BenchEngine | None) -> dict[str, str]:
    versions = {"python": platform.python_version(), "cpus": str(os.cpu_count()),
                "machine": platform.machine(), "kernel": platform.release()}
    for dist in ("httpx", "httpcore", "aiodocker", "aiohttp", "docker", "requests", "anyio",
                 "sniffio"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    if engine is not None and getattr(engine, "engine_version", None):
        versions["engine"] = f"Podman {engine.engine_version} (API {engine.api})"
    return versions


async def _engine_scenarios(engine: BenchEngine, cfg: _scenarios.Config, only: set[str],
                            extra: list[type[Adapter]]) -> list[_scenarios.Result]:
    adapters: list[Adapter] = [cls(engine.socket_path, engine.api)
                               for cls in [*ALL.values(), *extra]]
    opened: list[Adapter] = []
    results: list[_scenarios.Result] = []
    try:
        for adapter in adapters:
            await adapter.open()
            opened.append(adapter)
        raw = next(a for a in opened if a.name == RAW)
        base_count = raw.list_all() if "list" in only else 0  # containers already there
        if "ping" in only:
            log("ping: sequential /_ping")
            results += await _scenarios.ping(opened, cfg)
        if "inflight" in only:
            log(f"in flight: {cfg.inflight_width} concurrent /_ping")
            results += await _scenarios.inflight(opened, cfg)
        if "logs" in only:
            log("logs")
            results += await _scenarios.logs(opened, engine, cfg)
        if "list" in only:
            log("list")
            results += await _scenarios.listing(opened, engine, cfg, base_count=base_count)
    finally:
        for adapter in opened:
            try:
                await adapter.close()
            except Exception as exc:
                log(f"closing {adapter.name}: {exc!r}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--engine", help="unix:///path/to.sock of a running engine "
                        "(default: start a private Podman engine)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller sizes")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--candidate", metavar="PACKAGE_DIR",
                        help="also measure a modified copy of the ghostpanel_kernel folder "
                        "(imported as ghostpanel_candidate), side by side")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    cfg = _scenarios.Config.quick() if args.quick else _scenarios.Config()
    interrupt_on_sigterm()

    started = time.monotonic()
    results: list[_scenarios.Result] = []
    profiles: dict[str, list] = {}
    engine: BenchEngine | None = None
    try:
        if "imports" in only:
            log(f"imports: fresh interpreters, {cfg.import_reps} runs each")
            rows, profiles = _imports.measure(
                cfg.import_reps, Path(args.candidate).resolve() if args.candidate else None)
            results += rows
        if only & {"ping", "inflight", "logs", "list"}:
            engine = BenchEngine(args.engine)
            engine.start()
            extra = load_candidate(args.candidate) if args.candidate else []
            results += asyncio.run(_engine_scenarios(engine, cfg, only, extra))
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    finally:
        if engine is not None:
            engine.close_ignoring_ctrl_c()

    versions = _versions(engine)
    checks = _report.targets(results)
    print()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  "
          + "  ".join(f"{k}={v}" for k, v in versions.items()))
    print(f"mode: {'quick' if args.quick else 'full'}; wall time "
          f"{time.monotonic() - started:.0f} s; load average at end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(_report.table(results))
    if any(r.scenario == "import" for r in results):
        print()
        print(_report.import_table(results))
        for statement, rows in profiles.items():
            print(f"\n-X importtime, `{statement}` (median of 5 runs; importtime inflates):")
            print(_imports.summarize_importtime(rows))
    print("\nTargets:")
    print(_report.targets_text(checks))
    if args.json:
        payload = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions,
            "config": vars(cfg), "quick": args.quick,
            "results": [{**vars(r), "median": r.median} for r in results],
            "targets": checks,
            "importtime": {k: [list(row) for row in v] for k, v in profiles.items()},
        }
        args.json.write_text(json.dumps(payload, indent=1, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

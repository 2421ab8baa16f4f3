"""Image update checks: what ``check_updates`` (``ghostpanel ps --updates``) costs.

    PYTHONPATH=. .venv/bin/python bench/image_updates.py [--containers 50] [--images 10]
        [--repeats 5]

A script, not a test. It starts a private ``docker-registry`` on loopback and a private
Podman engine that trusts it over plain HTTP (as the tests do, through
``tests/image_registry.py`` and ``tests/podman_service.py``), pushes ``--images``
distinct images, pulls them, creates ``--containers`` containers spread over them
(created, not started: the check reads images, not processes), and measures, medians
over ``--repeats`` with min..max:

- **listing**: ``containers.list(all=True)`` alone, what plain ``ps`` asks;
- **cold**: ``check_updates`` on those containers with no kept answer (``max_age=0``):
  one image inspect per distinct image and one registry ``HEAD`` per distinct
  reference, 8 at a time;
- **warm**: the same with the registry's answers kept (the default 60 s): the inspects
  only;
- **one HEAD**: ``RegistryClient.manifest_digest`` alone, for scale.

Everything it made is removed at the end (the engine is reset and stopped, the registry
stopped), also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import check_updates
from ghostpanel_kernel.registry import RegistryClient, parse_image_name
from tests.image_registry import ImageRegistry
from tests.podman_service import PodmanService, build_busybox_archive


async def _timed(repeats: int, work: Callable[[], Awaitable[object]]) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _row(what: str, times: list[float]) -> str:
    return (f"| {what} | {statistics.median(times):.1f} | {min(times):.1f}..{max(times):.1f} "
            f"| {len(times)} |")


async def _measure(engine: PodmanService, references: list[str], containers: int,
                   repeats: int) -> list[str]:
    async with connect(engine.url, name="bench") as env:
        for reference in references:
            await env.images.pull(reference)
        for index in range(containers):
            await env.containers.create(image=references[index % len(references)],
                                        command=["true"], name=f"gp-bench-upd-{index}")
        listed = await env.containers.list(all=True)
        statuses = await check_updates(env, listed, max_age=0)
        states = {s.state for s in statuses.values()}
        assert states == {"current"}, {s.container: s.reason for s in statuses.values()}
        insecure = {references[0].split("/", 1)[0]}
        async with RegistryClient(insecure=insecure) as registry:
            name = parse_image_name(references[0])
            head = await _timed(repeats * 4, lambda: registry.manifest_digest(name))
        return [
            "| what | median ms | min..max ms | runs |", "|---|---:|---|---:|",
            _row("listing (plain `ps`)", await _timed(
                repeats, lambda: env.containers.list(all=True))),
            _row(f"check_updates cold ({containers} containers, {len(references)} images)",
                 await _timed(repeats, lambda: check_updates(env, listed, max_age=0))),
            _row("check_updates warm (answers kept)", await _timed(
                repeats, lambda: check_updates(env, listed))),
            _row("one manifest HEAD (client open, loopback)", head)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="gp-bu-", dir="/tmp"))
    (base / "r").mkdir()
    registry = ImageRegistry(base / "r")
    registry.start()
    engine = PodmanService(base / "e", insecure_registries=registry.locations)
    try:
        engine.start()
        archive = build_busybox_archive(base / "busybox.tar")
        references = []
        run = uuid.uuid4().hex[:6]
        for index in range(options.images):
            staged = f"localhost/bench-{run}-{index}:latest"
            engine.import_image(archive, staged, changes=('CMD ["sh"]', f"ENV I={index}"))
            references.append(registry.push(engine, staged, f"bench/app{index}:latest"))
        for line in asyncio.run(_measure(engine, references, options.containers,
                                         options.repeats)):
            print(line)
    finally:
        try:
            if engine.running:
                engine.reset()
        finally:
            engine.stop()
            registry.stop()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The engine the bench runs against, and the containers it creates there.

``BenchEngine`` either starts a private Podman service (own storage under a short
``/tmp`` directory, busybox imported) or uses the ``--engine unix:///...`` given. Every
container the bench creates carries the label ``ghostpanel.bench=<run id>`` and is
removed by :meth:`BenchEngine.cleanup`; a private engine is also reset, stopped and its
directory deleted. :meth:`close` is safe to call twice and from ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.podman_service import (
    BUSYBOX_REFERENCE,
    PodmanService,
    build_busybox_archive,
    mounts_under,
)

from ._raw import AsyncRawConnection, RawSync
from ._results_file import RESULTS, record_report

LABEL = "ghostpanel.bench"

_T = TypeVar("_T")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so that a benchmark stopped by a timeout or
    ``kill`` still runs its ``finally`` blocks: its containers and private engine go."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--engine``, which :class:`BenchEngine` takes: a running engine to measure
    instead of a private Podman one."""
    parser.add_argument("--engine", help="unix:///path/to.sock of a running engine with "
                        "localhost/busybox:latest (default: start a private Podman engine)")


def measure_on(engine: BenchEngine, measure: Callable[[], _T]) -> _T | None:
    """Start ``engine``, run ``measure`` and close the engine whatever happens.

    Parameters
    ----------
    engine
        The engine to measure on; it is closed with :meth:`BenchEngine.close_ignoring_ctrl_c`
        even when ``measure`` fails, so that no container or private engine is left.
    measure
        The benchmark itself.

    Returns
    -------
    object or None
        What ``measure`` returned; ``None`` when Ctrl-C or SIGTERM (see
        :func:`interrupt_on_sigterm`) stopped it: the script then exits 130.
    """
    try:
        engine.start()
        return measure()
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return None
    finally:
        engine.close_ignoring_ctrl_c()


def publish_report(report: str, script: str, *, update: bool,
                   section: str = "Widgets") -> None:
    """Print a benchmark's ``report``; with ``update``, also put it in its block of
    ``bench/RESULTS.md`` and say so.

    Parameters
    ----------
    report
        The Markdown the script made of its figures.
    script
        The script's path from the repository root (``bench/agent_start.py``): its
        block's markers.
    update
        Whether ``--update-results`` was given.
    section
        The ``## section`` of ``RESULTS.md`` the block goes under when it is new.
    """
    print()
    print(report)
    if update:
        record_report(script, report, section=section)
        log(f"written to {RESULTS}")


class BenchEngine:
    def __init__(self, url: str | None) -> None:
        self.run_id = uuid.uuid4().hex[:12]
        self.service: PodmanService | None = None
        self.base_dir: Path | None = None
        self.created: set[str] = set()
        self.given_url = url
        self.url = url or ""
        self.api = "1.41"

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        if self.given_url is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="gpb-", dir="/tmp"))
            self.service = PodmanService(self.base_dir)
            archive = build_busybox_archive(self.base_dir / "busybox.tar")
            log(f"starting a private engine in {self.base_dir}")
            self.service.start()
            self.service.import_image(archive)
            self.url = self.service.url
        elif not self.given_url.startswith("unix://"):
            raise SystemExit("--engine must be a unix:// URL (the raw floors speak AF_UNIX)")
        raw = RawSync(self.socket_path, "1.41")
        try:
            status, body = raw.get("/version")
            if status != 200:
                raise RuntimeError(f"GET /version answered {status}: {body[:200]!r}")
            version = json.loads(body)
            server_api = str(version.get("ApiVersion") or "1.41")
            self.api = min(server_api, "1.43", key=lambda v: tuple(map(int, v.split("."))))
            self.engine_version = str(version.get("Version", "?"))
            status, _ = raw.get(f"/v{self.api}/images/{BUSYBOX_REFERENCE}/json")
            if status != 200:
                raise RuntimeError(f"{BUSYBOX_REFERENCE} is missing on {self.url}")
        finally:
            raw.close()

    @property
    def label(self) -> str:
        """``Podman 4.3.1``: the engine the figures were measured on, for a report."""
        return f"Podman {getattr(self, 'engine_version', '?')}"

    @property
    def socket_path(self) -> str:
        return self.url[len("unix://"):]

    def close(self) -> None:
        """Remove what the bench created; stop and delete a private engine."""
        errors: list[str] = []
        try:
            asyncio.run(self.remove_all())
        except BaseException as exc:
            errors.append(f"removing containers: {exc!r}")
        service, self.service = self.service, None
        if service is not None:
            try:
                service.reset()
            except BaseException as exc:
                errors.append(f"reset: {exc!r}")
            try:
                service.stop()
            except BaseException as exc:
                errors.append(f"stop: {exc!r}")
            if self.base_dir is not None:
                # conmon's cleanup may still be exiting; never delete through a mount.
                deadline = time.monotonic() + 10
                while mounts_under(self.base_dir) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if not mounts_under(self.base_dir):
                    shutil.rmtree(self.base_dir, ignore_errors=True)
                else:
                    errors.append(f"still mounted under {self.base_dir}")
        for error in errors:
            log(f"cleanup: {error}")

    def close_ignoring_ctrl_c(self) -> None:
        """:meth:`close`, saying what it does, with Ctrl-C ignored until it is done: a
        second Ctrl-C during the clean-up would leave containers or the engine behind."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            log("cleanup: removing containers" + ("" if self.given_url else
                                                  ", resetting and stopping the engine"))
            self.close()
        finally:
            signal.signal(signal.SIGINT, previous)

    # -- containers ----------------------------------------------------------------

    async def _pool(self, jobs: list, work, concurrency: int = 8) -> list:
        """Run ``work(conn, job)`` over ``jobs`` with ``concurrency`` raw connections."""
        queue: asyncio.Queue = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        results: list = []

        async def worker() -> None:
            conn = await AsyncRawConnection.open(self.socket_path)
            try:
                while not queue.empty():
                    results.append(await work(conn, queue.get_nowait()))
            finally:
                await conn.close()

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs) or 1))))
        return results

    async def create_containers(self, count: int, *, command: list[str] | None = None,
                                concurrency: int = 8) -> list[str]:
        """Create (not start) ``count`` labelled containers through the API, concurrently."""
        body = json.dumps({"Image": BUSYBOX_REFERENCE, "Cmd": command or ["true"],
                           "Labels": {LABEL: self.run_id}}).encode()

        async def create(conn: AsyncRawConnection, _: int) -> str:
            status, answer = await conn.request("POST", f"/v{self.api}/containers/create", body)
            if status != 201:
                raise RuntimeError(f"create answered {status}: {answer[:200]!r}")
            cid = json.loads(answer)["Id"]
            self.created.add(cid)
            return cid

        return await self._pool(list(range(count)), create, concurrency)

    async def start_and_wait(self, cid: str) -> int:
        conn = await AsyncRawConnection.open(self.socket_path)
        try:
            status, answer = await conn.request("POST", f"/v{self.api}/containers/{cid}/start")
            if status not in (204, 304):
                raise RuntimeError(f"start answered {status}: {answer[:200]!r}")
            status, answer = await conn.request("POST", f"/v{self.api}/containers/{cid}/wait")
            return int(json.loads(answer).get("StatusCode", -1))
        finally:
            await conn.close()

    async def labelled(self) -> list[str]:
        flt = json.dumps({"label": [f"{LABEL}={self.run_id}"]})
        from urllib.parse import quote
        conn = await AsyncRawConnection.open(self.socket_path)
        try:
            status, answer = await conn.request(
                "GET", f"/v{self.api}/containers/json?all=1&filters={quote(flt)}")
        finally:
            await conn.close()
        return [c["Id"] for c in json.loads(answer)] if status == 200 else []

    async def remove(self, ids: list[str], concurrency: int = 8) -> None:
        async def delete(conn: AsyncRawConnection, cid: str) -> None:
            status, answer = await conn.request(
                "DELETE", f"/v{self.api}/containers/{cid}?force=1&v=1")
            if status not in (200, 204, 404):
                raise RuntimeError(f"delete answered {status}: {answer[:200]!r}")
            self.created.discard(cid)

        if ids:
            await self._pool(list(ids), delete, concurrency)

    async def remove_all(self) -> None:
        if not self.url or not os.path.exists(self.socket_path):
            return
        ids = set(self.created)
        try:
            ids |= set(await self.labelled())
        except OSError:
            pass
        await self.remove(sorted(ids))

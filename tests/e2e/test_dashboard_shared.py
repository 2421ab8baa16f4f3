"""``ghostpanel up --shared``: watch-only viewers served by ONE Panel server process.

One server for the module on the session's private engine; two browser sessions (two
Chromium contexts) each see the container rows, and a container created afterwards
appears in both, live.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ghostpanel_kernel import connect
from tests.e2e.conftest import Server, registered_environment, start_server
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

ENV = "e2e-shared"
LOAD_TIMEOUT_MS = 60_000


def run(coroutine: Any) -> Any:
    """Run ``coroutine`` in a thread of its own (Playwright's loop runs in this one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _create(url: str, name: str) -> None:
    async with connect(url, name="check") as env:
        await env.containers.create(image=BUSYBOX_REFERENCE, name=name,
                                    command=["sleep", "300"])


async def _remove(url: str, names: list[str]) -> None:
    async with connect(url, name="check") as env:
        for name in names:
            container = await env.containers.get(name)
            await container.remove(force=True)


@pytest.fixture(scope="module")
def first(podman_engine: PodmanService) -> Iterator[str]:
    """A container made before the server starts."""
    name = f"gp-shared-{uuid.uuid4().hex[:8]}"
    run(_create(podman_engine.url, name))
    yield name
    run(_remove(podman_engine.url, [name]))


@pytest.fixture(scope="module")
def server(podman_engine: PodmanService, first: str) -> Iterator[Server]:
    """``ghostpanel up --shared`` for the module, stopped with Ctrl-C after it."""
    with registered_environment(ENV, podman_engine.url):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        served = start_server(["up", "--shared", "--port", str(port), "--env", ENV,
                               "--no-browser"], banner="GhostPanel shared dashboard:")
        yield served
        try:
            assert served.interrupt() == 0, served.output()
            # A session's table, its follower or its end failed in the server.
            assert "Traceback" not in served.output(), served.output()
        finally:
            served.ensure_stopped()


def _open(browser: Browser, url: str) -> Page:
    page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    page.goto(url)
    return page


def test_two_sessions_see_rows_and_a_new_container(browser: Browser, server: Server,
                                                   podman_engine: PodmanService,
                                                   first: str) -> None:
    pages = [_open(browser, server.url), _open(browser, server.url)]
    try:
        for page in pages:
            expect(page.locator(".tabulator-cell", has_text=first)).to_be_visible(
                timeout=LOAD_TIMEOUT_MS)
        later = f"gp-shared-{uuid.uuid4().hex[:8]}"
        run(_create(podman_engine.url, later))
        try:
            for page in pages:
                expect(page.locator(".tabulator-cell", has_text=later)).to_be_visible(
                    timeout=20_000)
        finally:
            run(_remove(podman_engine.url, [later]))
    finally:
        for page in pages:
            page.context.close()

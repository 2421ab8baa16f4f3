"""``ContainerPage`` in Voila, driven by Debian's Chromium through Playwright.

A notebook of two cells shows the page of a running container on the session's
engine; the browser must draw the header and the Overview, show a line of the
container's log in the Logs tab, draw the Stats tab's chart, and stop the container
with the Stop button (the engine says so, and the header follows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import NotFound
from tests.agent_process import free_port
from tests.e2e.conftest import ROOT, Server, wait_until
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, screenshot_page, write_notebook
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

NAME = f"gp-page-e2e-{uuid.uuid4().hex[:6]}"
LINE = "page-e2e-says-hello"
# Voila as `ghostpanel up` runs it, in the parts that matter here: the unload beacon is
# accepted (else each page view leaves its kernel running), kernels on Unix sockets.
VOILA_CONFIG = {"Voila": {"tornado_settings": {"disable_check_xsrf": True}},
                "KernelManager": {"transport": "ipc"}}


def run(coroutine: Any) -> Any:
    """Run ``coroutine`` in a thread of its own (Playwright's loop runs in this one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _start_container(url: str) -> None:
    async with connect(url, name="e2e-page") as env:
        container = await env.containers.create(
            image=BUSYBOX_REFERENCE, name=NAME, labels={"gp.e2e": "container-page"},
            restart_policy="unless-stopped",
            command=["sh", "-c", f"trap 'exit 0' TERM; echo {LINE}; "
                     "while :; do sleep 0.1; done"])
        await container.start()


async def _remove_container(url: str) -> None:
    async with connect(url, name="e2e-page") as env:
        with contextlib.suppress(NotFound):
            await (await env.containers.get(NAME)).remove(force=True)


async def _state(url: str) -> str:
    async with connect(url, name="e2e-page") as env:
        return (await env.containers.get(NAME)).state


@pytest.fixture(scope="module")
def voila(podman_engine: PodmanService) -> Iterator[Server]:
    """The container running, and Voila serving a notebook that shows its page."""
    run(_start_container(podman_engine.url))
    folder = Path(tempfile.mkdtemp(prefix="gp-page-voila-"))
    process: subprocess.Popen[str] | None = None
    try:
        write_notebook(folder / "page.ipynb", [
            "from ghostpanel_kernel import connect\n"
            "from ghostpanel_widgets import ContainerPage\n"
            f"env = connect({podman_engine.url!r}, name='e2e-page')",
            f"ContainerPage(env, {NAME!r}, stats_interval=1.0)",
        ])
        (folder / "voila.json").write_text(json.dumps(VOILA_CONFIG), encoding="utf-8")
        port = free_port()
        with (folder / "voila.log").open("w") as log:  # a file: a full pipe would block
            process = subprocess.Popen(
                [sys.executable, "-m", "voila", str(folder / "page.ipynb"), "--no-browser",
                 "--Voila.ip=127.0.0.1", f"--Voila.port={port}", "--Voila.port_retries=0",
                 f"--Voila.config_file_paths={folder}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                env=dict(os.environ), cwd=ROOT)
        server = Server(process)
        server.url = f"http://127.0.0.1:{port}/"

        def answers() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(lambda: answers() or process.poll() is not None, timeout=90,
                   message="Voila listening")
        yield server
    finally:
        if process is not None:
            Server(process).ensure_stopped()  # Voila, and any kernel left below it
        run(_remove_container(podman_engine.url))
        with contextlib.suppress(OSError):
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()


def test_the_page_renders_shows_the_log_and_stops_the_container(
        browser: Browser, voila: Server, podman_engine: PodmanService) -> None:
    with screenshot_page(browser, voila.url, "voila-container-page", voila) as page:
        widget = page.locator(".gp-container-page")
        title = widget.locator(".gp-page-title")
        expect(title).to_contain_text(NAME, timeout=LOAD_TIMEOUT_MS)
        expect(title.locator(".gp-state-badge")).to_have_text("running",
                                                              timeout=LOAD_TIMEOUT_MS)
        overview = widget.locator(".gp-container-overview")
        for text in ("Restart policy", "unless-stopped", "gp.e2e", "container-page",
                     BUSYBOX_REFERENCE):
            expect(overview).to_contain_text(text)

        page.get_by_role("tab", name="Logs", exact=True).click()
        expect(widget.locator(".gp-log-output")).to_contain_text(LINE,
                                                                 timeout=LOAD_TIMEOUT_MS)

        # The Stats chart is a Panel view made on this click, in a comm callback: it
        # draws only because the page loaded Panel's browser side from its cell.
        page.get_by_role("tab", name="Stats", exact=True).click()
        expect(widget.locator(".gp-stats-monitor canvas").first).to_be_visible(
            timeout=LOAD_TIMEOUT_MS)

        widget.locator("button[title='Stop']").click()
        expect(title.locator(".gp-state-badge")).to_have_text("exited",
                                                              timeout=LOAD_TIMEOUT_MS)
        assert run(_state(podman_engine.url)) == "exited"
        expect(widget.locator("button[title='Start']")).to_be_enabled()

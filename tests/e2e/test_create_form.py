"""``CreateContainerForm`` in Voila, driven by Chromium: an invalid port shows its error
beside the field and disables Create; the fixed form creates and starts the container on
the session's Podman engine, and the live previews show the same container.

One Voila server (``python -m voila`` with ``ghostpanel up``'s settings) on a notebook of
the test's own; the container is removed after the test whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import NotFound
from tests.agent_process import free_port
from tests.e2e.conftest import SCREENSHOTS, voila_notebook
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, write_notebook
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

ACTION_TIMEOUT_MS = 60_000


def _run(coroutine: Any) -> Any:
    """Run ``coroutine`` in a thread of its own (Playwright's sync API holds this one's
    event loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _inspect(url: str, name: str) -> dict[str, Any] | None:
    async with connect(url, name="check") as env:
        try:
            return (await env.containers.get(name)).attrs
        except NotFound:
            return None


async def _remove(url: str, name: str) -> None:
    async with connect(url, name="check") as env:
        with contextlib.suppress(NotFound):
            await (await env.containers.get(name)).remove(force=True)


def test_the_form_in_voila_checks_a_port_then_creates(browser: Browser,
                                                      podman_engine: PodmanService) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gp-create-form-"))
    name = f"gp-e2e-create-{uuid.uuid4().hex[:8]}"
    host_port = free_port()
    write_notebook(folder / "create.ipynb", [
        "from ghostpanel_kernel import connect\n"
        "from ghostpanel_widgets import CreateContainerForm\n"
        f"env = connect({podman_engine.url!r}, name='e2e-create')\n"
        f"CreateContainerForm(env, boltfile={str(folder / 'Boltfile.toml')!r})",
    ])
    suffix = "-FAILED"
    try:
        with voila_notebook(folder / "create.ipynb") as server:
            context = browser.new_context(viewport={"width": 1400, "height": 1400})
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            try:
                page.goto(server.url, timeout=LOAD_TIMEOUT_MS)
                form = page.locator(".gp-create-form")
                expect(form).to_be_visible(timeout=LOAD_TIMEOUT_MS)
                create = form.locator(".gp-create-button")
                expect(create).to_be_disabled()  # no image yet
                form.locator(".gp-field-image input[type=text]").fill(BUSYBOX_REFERENCE)
                form.locator(".gp-field-name input").fill(name)
                form.locator(".gp-field-command input").fill("sleep 300")
                ports = form.locator(".gp-field-ports textarea")
                ports.fill("99999")
                expect(form.locator(".gp-field-ports .gp-field-error")).to_contain_text(
                    "out of range 1-65535", timeout=ACTION_TIMEOUT_MS)
                expect(create).to_be_disabled()
                ports.fill(f"{host_port}:80")
                expect(form.locator(".gp-field-ports .gp-field-error")).to_have_text(
                    "", timeout=ACTION_TIMEOUT_MS)
                expect(create).to_be_enabled()
                # The live previews: the Boltfile service and the docker run line.
                expect(form.locator(".gp-create-boltfile")).to_contain_text(
                    f"[services.{name}]")
                expect(form.locator(".gp-create-diagnostics")).to_contain_text(
                    "validator accepts")
                expect(form.locator(".gp-create-docker-run")).to_contain_text(
                    f"docker run -d --name {name} -p {host_port}:80 {BUSYBOX_REFERENCE} "
                    "sleep 300")
                page.screenshot(path=str(SCREENSHOTS / "voila-create-form-preview.png"),
                                full_page=True)
                create.click()
                expect(form.locator(".gp-status")).to_contain_text(
                    f"Started {name}", timeout=ACTION_TIMEOUT_MS)
                attrs = _run(_inspect(podman_engine.url, name))
                assert attrs is not None and attrs["State"]["Running"] is True
                assert attrs["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == \
                    str(host_port)
                # The name is taken now: shown beside it, Create off again.
                expect(form.locator(".gp-field-name .gp-field-error")).to_contain_text(
                    "already exists")
                expect(create).to_be_disabled()
                suffix = ""
            finally:
                SCREENSHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"voila-create-form{suffix}.png"),
                                full_page=True)
                if suffix:
                    (SCREENSHOTS / "voila-create-form.log").write_text(
                        "\n".join(console) + "\n--- server ---\n" + server.output())
                page.goto("about:blank")
                page.close(run_before_unload=True)
                context.close()
    finally:
        _run(_remove(podman_engine.url, name))
        shutil.rmtree(folder)

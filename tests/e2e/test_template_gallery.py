"""``TemplateGallery`` in Voila, driven by Chromium: the curated cards show, the search
narrows them, a card's Deploy… opens the form with the Boltfile it will apply, and
Deploy applies it on the session's Podman engine (the Valheim template, its image
swapped for the test image by its variable). The ``RunbookLauncher`` in Voila too: a bad
parameter is refused beside its field, a run succeeds and its page shows
(tests/e2e/test_runbook_launcher.py does the same in JupyterLab).

One Voila server (``python -m voila`` with ``ghostpanel up``'s settings) on a notebook of
the test's own; the project is destroyed after the test whatever happened.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import NotFound
from ghostpanel_kernel.surge import destroy_surge
from tests.agent_process import free_port
from tests.e2e.conftest import SCREENSHOTS, voila_notebook
from tests.e2e.greeting_runbook import launcher_cell
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, write_notebook
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

ACTION_TIMEOUT_MS = 60_000


def _run(coroutine: Any) -> Any:
    """Run ``coroutine`` in a thread of its own (Playwright's sync API holds this one's
    event loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _attrs(url: str, name: str) -> dict[str, Any] | None:
    async with connect(url, name="check") as env:
        try:
            return (await env.containers.get(name)).attrs
        except NotFound:
            return None


async def _destroy(url: str, project: str) -> None:
    async with connect(url, name="e2e-templates") as env:
        await destroy_surge(project, [env], volumes=True, stop_timeout=0)


def test_the_gallery_in_voila_searches_previews_and_deploys(
        browser: Browser, podman_engine: PodmanService) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gp-templates-"))
    project = f"v{uuid.uuid4().hex[:8]}"
    write_notebook(folder / "gallery.ipynb", [
        "from ghostpanel_kernel import connect\n"
        "from ghostpanel_kernel.templates import TemplateLibrary\n"
        "from ghostpanel_widgets import TemplateGallery\n"
        f"env = connect({podman_engine.url!r}, name='e2e-templates')\n"
        f"TemplateGallery(env, library=TemplateLibrary({str(folder)!r}), stop_timeout=0)",
    ])
    suffix = "-FAILED"
    try:
        with voila_notebook(folder / "gallery.ipynb") as server:
            context = browser.new_context(viewport={"width": 1400, "height": 1600})
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            try:
                page.goto(server.url, timeout=LOAD_TIMEOUT_MS)
                gallery = page.locator(".gp-template-gallery")
                expect(gallery).to_be_visible(timeout=LOAD_TIMEOUT_MS)
                cards = gallery.locator(".gp-template-card")
                expect(cards).to_have_count(6, timeout=ACTION_TIMEOUT_MS)
                page.screenshot(path=str(SCREENSHOTS / "voila-template-gallery.png"),
                                full_page=True)
                gallery.locator(".gp-template-search input").fill("valheim")
                expect(cards).to_have_count(1, timeout=ACTION_TIMEOUT_MS)
                expect(cards.first).to_contain_text("Valheim dedicated server")
                cards.first.locator(".gp-template-open").click()
                panel = gallery.locator(".gp-template-deploy-panel")
                expect(panel).to_be_visible(timeout=ACTION_TIMEOUT_MS)
                boltfile = panel.locator(".gp-template-boltfile")
                expect(boltfile).to_contain_text('project = "valheim"')
                expect(boltfile).to_contain_text('SERVER_NAME = "GhostPanel Valheim"')
                game, query = free_port(), free_port()
                for name, value in (("image", BUSYBOX_REFERENCE), ("command", "sleep 300"),
                                    ("port", str(game)), ("query_port", str(query))):
                    panel.locator(f".gp-template-var-{name} input").fill(value)
                panel.locator(".gp-template-project input").fill(project)
                expect(boltfile).to_contain_text(f'project = "{project}"',
                                                 timeout=ACTION_TIMEOUT_MS)
                expect(boltfile).to_contain_text(f'"{game}:2456/udp"')
                page.screenshot(path=str(SCREENSHOTS / "voila-template-deploy-form.png"),
                                full_page=True)
                panel.locator(".gp-template-deploy").click()
                expect(gallery.locator(".gp-status")).to_contain_text(
                    f"Deployed Valheim dedicated server as {project}",
                    timeout=ACTION_TIMEOUT_MS)
                attrs = _run(_attrs(podman_engine.url, f"{project}_server"))
                assert attrs is not None and attrs["State"]["Running"] is True
                assert attrs["HostConfig"]["PortBindings"]["2456/udp"][0]["HostPort"] == \
                    str(game)
                suffix = ""
            finally:
                SCREENSHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"voila-template-gallery-end{suffix}"
                                         ".png"), full_page=True)
                if suffix:
                    (SCREENSHOTS / "voila-template-gallery.log").write_text(
                        "\n".join(console) + "\n--- server ---\n" + server.output())
                page.goto("about:blank")
                page.close(run_before_unload=True)
                context.close()
    finally:
        _run(_destroy(podman_engine.url, project))
        shutil.rmtree(folder, ignore_errors=True)


def test_the_runbook_launcher_in_voila_refuses_a_bad_value_then_runs(
        browser: Browser) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gp-runbooks-voila-"))
    write_notebook(folder / "runbooks.ipynb", [launcher_cell(folder)])
    suffix = "-FAILED"
    try:
        with voila_notebook(folder / "runbooks.ipynb") as server:
            context = browser.new_context(viewport={"width": 1400, "height": 1400})
            page = context.new_page()
            try:
                page.goto(server.url, timeout=LOAD_TIMEOUT_MS)
                widget = page.locator(".gp-runbook-launcher")
                expect(widget).to_contain_text("Says hello a number of times.",
                                               timeout=LOAD_TIMEOUT_MS)
                expect(widget).to_contain_text("No runs yet.")
                times = widget.locator(".gp-runbook-param-times input")
                times.fill("lots")
                times.press("Enter")
                widget.locator(".gp-runbook-run").click()
                expect(widget.locator(".gp-field-error").first).to_contain_text(
                    "times takes a number", timeout=ACTION_TIMEOUT_MS)
                times.fill("3")
                times.press("Enter")
                widget.locator(".gp-runbook-run").click()
                expect(widget.locator(".gp-runbook-history")).to_contain_text(
                    "succeeded", timeout=90_000)
                expect(widget.frame_locator("iframe.gp-runbook-page").locator("body")
                       ).to_contain_text("hello operator", timeout=ACTION_TIMEOUT_MS)
                suffix = ""
            finally:
                SCREENSHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"voila-runbook-launcher{suffix}.png"),
                                full_page=True)
                page.goto("about:blank")
                page.close(run_before_unload=True)
                context.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

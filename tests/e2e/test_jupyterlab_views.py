"""The dashboard's views, each alone in a JupyterLab cell, offline: ``HomeView``,
``ContainerPage``, ``CreateContainerForm``, ``StacksView`` and ``TemplateGallery`` in one
notebook, run top to bottom by Chromium in one ``ghostpanel lab`` session for the module.

Each must render what the engine has (the environment's card and counts, the
container's page, the engine's images in the form, a stack found by its labels), with
no "Failed to create view" and no error in a cell, and a click must work in it (the
page's Logs tab shows the log; the form's ``docker run`` line follows what is typed).
The module's server, kernel and page are ended, and the folder removed, at its end.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import SCREENSHOTS, Server, failed, registered_environment, start_server
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, run_all_cells, write_notebook
from tests.podman_service import PodmanService

ENV = "e2e-views"
LABEL = "io.ghostpanel.test"  # the containers this module makes, for clean-up
STACK = f"gp-views-{uuid.uuid4().hex[:6]}"
TARGET = f"{STACK}_web_1"  # named as Bolt's CLI names a service's replica: a Bolt stack
BROKEN = re.compile(r"Failed to create view|Could not create a view|reading 'require'"
                    r"|Error displaying widget", re.IGNORECASE)

CELLS: dict[str, str] = {
    "HomeView": """import os
from ghostpanel_kernel import connect
from ghostpanel_widgets import HomeView
env = connect(os.environ["GHOSTPANEL_ENV"])
HomeView([env])""",
    "ContainerPage": ("from ghostpanel_widgets import ContainerPage\n"
                      f"ContainerPage(env, {TARGET!r})"),
    "CreateContainerForm": ("from ghostpanel_widgets import CreateContainerForm\n"
                            "CreateContainerForm(env)"),
    "StacksView": "from ghostpanel_widgets import StacksView\nStacksView([env])",
    "TemplateGallery": "from ghostpanel_widgets import TemplateGallery\nTemplateGallery(env)",
}


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` in a thread of its own (Playwright's sync API keeps an event
    loop running in this one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _make_target(url: str) -> None:
    from ghostpanel_kernel import connect

    async with connect(url, name="check") as env:
        container = await env.containers.create(
            image="localhost/busybox:latest", name=TARGET,
            labels={LABEL: "views"},
            command=["sh", "-c", f"echo hello-from-{TARGET}; "
                                 "trap 'exit 0' TERM; while true; do sleep 1; done"])
        await container.start()


async def _remove_targets(url: str) -> None:
    from ghostpanel_kernel import connect

    async with connect(url, name="check") as env:
        for container in await env.containers.list(all=True,
                                                    filters={"label": [f"{LABEL}=views"]}):
            await container.remove(force=True)


@dataclass
class Lab:
    """The module's JupyterLab, its notebook open and run in ``page``."""

    server: Server
    page: Page
    console: list[str] = field(default_factory=list)

    def cell(self, name: str) -> Locator:
        """The output area of ``name``'s cell, scrolled into view (JupyterLab lays out
        only the cells on screen)."""
        output = self.page.locator(".jp-Notebook .jp-CodeCell").nth(
            list(CELLS).index(name)).locator(".jp-OutputArea")
        output.wait_for(state="attached", timeout=LOAD_TIMEOUT_MS)
        output.scroll_into_view_if_needed()
        return output


@pytest.fixture(scope="module")
def lab(podman_engine: PodmanService, browser: Browser,
        request: pytest.FixtureRequest) -> Iterator[Lab]:
    """``ghostpanel lab --dir FOLDER`` with the notebook, opened and run in Chromium."""
    run(_make_target(podman_engine.url))
    folder = Path(tempfile.mkdtemp(prefix="gp-views-"))
    write_notebook(folder / "views.ipynb", list(CELLS.values()))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        with registered_environment(ENV, podman_engine.url):
            server = start_server(["lab", "--port", str(port), "--env", ENV, "--no-browser",
                                   "--dir", str(folder)], banner="GhostPanel notebooks:")
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            lab = Lab(server, page)
            page.on("console", lambda m: lab.console.append(f"{m.type}: {m.text}"))
            try:
                token = server.url.split("token=")[1]
                page.goto(f"http://127.0.0.1:{port}/lab/tree/views.ipynb?token={token}",
                          timeout=LOAD_TIMEOUT_MS)
                run_all_cells(page, len(CELLS))
                yield lab
            finally:
                suffix = "-FAILED" if failed(request) else ""
                SCREENSHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"jupyterlab-views{suffix}.png"),
                                full_page=True)
                if suffix:
                    (SCREENSHOTS / "jupyterlab-views.log").write_text(
                        "\n".join(lab.console) + "\n--- server ---\n" + server.output())
                context.close()
                try:
                    assert server.interrupt() == 0, server.output()
                finally:
                    server.ensure_stopped()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        run(_remove_targets(podman_engine.url))


def test_each_view_renders_what_the_engine_has(lab: Lab) -> None:
    card = lab.cell("HomeView").locator(".gp-home-card", has_text=ENV)
    expect(card).to_contain_text("running", timeout=60_000)
    expect(card.locator(".gp-home-open")).to_be_visible()

    page = lab.cell("ContainerPage").locator(".gp-container-page")
    expect(page).to_contain_text(TARGET, timeout=60_000)
    expect(page).to_contain_text("running")

    form = lab.cell("CreateContainerForm")  # the engine's images, offered for the image
    expect(form.locator(".gp-field-image datalist option[value='localhost/busybox:latest']")
           ).to_have_count(1, timeout=60_000)

    expect(lab.cell("StacksView")).to_contain_text(STACK, timeout=60_000)

    gallery = lab.cell("TemplateGallery")  # the curated templates, one card each
    for title in ("Minecraft (Java edition)", "Ollama (GPU)", "Valheim dedicated server"):
        expect(gallery.locator(".gp-template-card", has_text=title)).to_have_count(
            1, timeout=60_000)

    for name in CELLS:
        output = lab.cell(name)
        expect(output).not_to_contain_text("Failed to create view")
        assert output.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() \
            == 0, f"{name}'s cell wrote an error: {output.inner_text()[:2000]}"
    broken = [line for line in lab.console if BROKEN.search(line)]
    assert not broken, broken


def test_a_click_works_in_each(lab: Lab) -> None:
    page = lab.cell("ContainerPage").locator(".gp-container-page")
    page.get_by_role("tab", name="Logs", exact=True).click()
    expect(page).to_contain_text(f"hello-from-{TARGET}", timeout=60_000)

    form = lab.cell("CreateContainerForm")  # typed in: the preview follows
    form.locator(".gp-field-image input[type=text]").fill("localhost/busybox:latest")
    name_field = form.locator(".gp-field-name input")
    name_field.fill("gp-views-typed")
    name_field.press("Tab")
    preview = form.locator(".gp-create-docker-run")
    expect(preview).to_contain_text("docker run", timeout=30_000)
    expect(preview).to_contain_text("gp-views-typed")
    expect(preview).to_contain_text("localhost/busybox:latest")

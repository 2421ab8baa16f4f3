"""The Home view in Voila, in Chromium: a card per registered environment, the dead one
saying why, and a click on a card's button reaching the kernel.

A small notebook (written here) shows ``HomeView()``, which reads the session's
registry, where the session's engine and a socket with nothing behind it are
registered for the module; beside it an HTML line prints the name ``on_open`` hears.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.agent_process import free_port
from tests.e2e.conftest import Server, registered_environment, wait_until
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, screenshot_page, write_notebook
from tests.podman_service import PodmanService

LIVE = f"home-live-{uuid.uuid4().hex[:6]}"
DEAD = f"home-dead-{uuid.uuid4().hex[:6]}"

NOTEBOOK = """\
import ipywidgets
from ghostpanel_widgets import HomeView

home = HomeView(refresh=5, timeout=5)
opened = ipywidgets.HTML("Opened: nothing yet")
opened.add_class("gp-home-opened")
home.on_open(lambda name: setattr(opened, "value", f"Opened: {name}"))
ipywidgets.VBox([home, opened])
"""


@contextlib.contextmanager
def _voila(notebook: Path) -> Iterator[Server]:
    """``python -m voila NOTEBOOK`` with ``ghostpanel up``'s settings, for the block."""
    from ghostpanel_kernel.cli._up import _VOILA_CONFIG

    port = free_port()
    config = notebook.parent / "config"
    config.mkdir()
    (config / "voila.json").write_text(json.dumps(_VOILA_CONFIG), encoding="utf-8")
    log = notebook.parent / "voila.log"
    with log.open("w") as output:  # a file: a pipe nobody reads could fill and block
        process = subprocess.Popen(
            [sys.executable, "-m", "voila", str(notebook), "--no-browser",
             "--Voila.ip=127.0.0.1", f"--Voila.port={port}", "--Voila.port_retries=0",
             f"--Voila.config_file_paths={config}"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            cwd=notebook.parent)
    server = Server(process)
    server.url = f"http://127.0.0.1:{port}/"
    try:
        def answers() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(answers, timeout=90, message="Voila listening")
        yield server
    finally:
        server.ensure_stopped()  # Voila, and any kernel left below it
        server.lines = log.read_text(encoding="utf-8", errors="replace").splitlines()


@pytest.fixture(scope="module")
def home_server(podman_engine: PodmanService) -> Iterator[Server]:
    """Voila on the Home notebook, LIVE and DEAD registered for the module."""
    with tempfile.TemporaryDirectory(prefix="homeview-e2e-") as folder:
        dead_url = f"unix://{folder}/nothing.sock"
        with registered_environment(LIVE, podman_engine.url), \
                registered_environment(DEAD, dead_url):
            notebook = write_notebook(Path(folder) / "home.ipynb", [NOTEBOOK])
            with _voila(notebook) as server:
                yield server


def test_cards_render_the_dead_one_says_why_and_a_click_opens(
        browser: Browser, home_server: Server) -> None:
    with screenshot_page(browser, home_server.url, "voila-home-view", home_server) as page:
        live = page.locator(".gp-home-card", has_text=LIVE)
        expect(live.locator(".gp-home-state")).to_have_text("reachable",
                                                            timeout=LOAD_TIMEOUT_MS)
        expect(live).to_contain_text("Podman")
        expect(live.locator(".gp-home-running")).to_have_text(re.compile(r"^\d+$"))
        dead = page.locator(".gp-home-card", has_text=DEAD)
        expect(dead.locator(".gp-home-state")).to_have_text("unreachable")
        expect(dead.locator(".gp-home-error")).to_contain_text("nothing.sock does not exist")

        expect(page.locator(".gp-home-opened")).to_have_text("Opened: nothing yet")
        live.get_by_role("button", name=f"Open {LIVE}").click()
        expect(page.locator(".gp-home-opened")).to_have_text(f"Opened: {LIVE}")

"""The Home view in Voila, in Chromium: a card per registered environment, the dead one
saying why, and a click on a card's button reaching the kernel.

A small notebook (written here) shows ``HomeView()``, which reads the session's
registry, where the session's engine and a socket with nothing behind it are
registered for the module; beside it an HTML line prints the name ``on_open`` hears.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Server, registered_environment, voila_notebook
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


@pytest.fixture(scope="module")
def home_server(podman_engine: PodmanService) -> Iterator[Server]:
    """Voila on the Home notebook, LIVE and DEAD registered for the module."""
    with tempfile.TemporaryDirectory(prefix="homeview-e2e-") as folder:
        dead_url = f"unix://{folder}/nothing.sock"
        with registered_environment(LIVE, podman_engine.url), \
                registered_environment(DEAD, dead_url):
            notebook = write_notebook(Path(folder) / "home.ipynb", [NOTEBOOK])
            with voila_notebook(notebook) as server:
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

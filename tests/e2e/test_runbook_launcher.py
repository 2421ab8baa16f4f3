"""``RunbookLauncher`` in Chromium, in JupyterLab offline (``ghostpanel lab``): the form
drawn from a runbook's parameters cell, a bad value refused beside its field, Run
executing the runbook (papermill starts a kernel of its own), and the history grid and
the run's HTML page appearing inline.

The runbook is a tiny one written by the test (no engine needed by its cells); its runs
are recorded in a home of the test's own, given to the widget.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.agent_process import free_port
from tests.e2e.conftest import registered_environment, serving
from tests.e2e.greeting_runbook import launcher_cell
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, run_all_cells, screenshot_page, write_notebook
from tests.podman_service import PodmanService

ENV = "e2e-runbooks"
RUN_TIMEOUT_MS = 90_000  # a kernel of the run's own starts on a busy 2-core machine


def test_runbook_launcher_in_jupyterlab(browser: Browser, podman_engine: PodmanService
                                        ) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gp-runbooks-"))
    write_notebook(folder / "runbooks.ipynb", [launcher_cell(folder)])
    try:
        port = free_port()
        with registered_environment(ENV, podman_engine.url), \
                serving(["lab", "--dir", str(folder), "--port", str(port), "--env", ENV,
                         "--no-browser"], banner="GhostPanel notebooks:") as server:
            token = server.url.split("token=")[1]
            url = f"http://127.0.0.1:{port}/lab/tree/runbooks.ipynb?token={token}"
            with screenshot_page(browser, url, "jupyterlab-runbook-launcher", server) as page:
                run_all_cells(page, 1)
                widget = page.locator(".gp-runbook-launcher")
                widget.scroll_into_view_if_needed(timeout=LOAD_TIMEOUT_MS)
                expect(widget).to_contain_text("Says hello a number of times.")
                expect(widget).to_contain_text("No runs yet.")
                times = widget.locator(".gp-runbook-param-times input")
                times.fill("lots")
                times.press("Enter")
                widget.locator(".gp-runbook-run").click()
                expect(widget.locator(".gp-field-error").first).to_contain_text(
                    "times takes a number")
                times.fill("3")
                times.press("Enter")
                widget.locator(".gp-runbook-run").click()
                history = widget.locator(".gp-runbook-history")
                expect(history).to_contain_text("succeeded", timeout=RUN_TIMEOUT_MS)
                expect(widget).to_contain_text("greeting succeeded in")
                page_frame = widget.frame_locator("iframe.gp-runbook-page")
                expect(page_frame.locator("body")).to_contain_text("hello operator")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

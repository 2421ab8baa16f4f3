"""Driving a notebook in JupyterLab from Chromium: write it, run all its cells.

Shared by every e2e test that shows widgets in JupyterLab (``ghostpanel lab``), so that
the ways JupyterLab's start can go wrong on a busy machine are handled in one place;
and :func:`screenshot_page`, the page every browser test opens (JupyterLab or Voila),
with its screenshot and, on failure, its console log.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import SCREENSHOTS, Server

__all__ = ["LOAD_TIMEOUT_MS", "run_all_cells", "screenshot_page", "write_notebook"]

LOAD_TIMEOUT_MS = 180_000  # a kernel starts and runs a dozen cells on a busy 2-core machine

#: How long the kernel dialog's Select button may take to answer: on a loaded machine
#: it took longer than 2 s, and a missed click leaves the dialog up for good.
_SELECT_TIMEOUT_MS = 20_000



@contextlib.contextmanager
def screenshot_page(browser: Browser, url: str, name: str, server: Server) -> Iterator[Page]:
    """A page on ``url``; a screenshot after (``-FAILED`` and a log when it raised).

    Parameters
    ----------
    browser : Browser
        The session's Chromium.
    url : str
        What the page opens (given :data:`LOAD_TIMEOUT_MS` to load).
    name : str
        The screenshot's file name in ``SCREENSHOTS``, without ``.png``.
    server : Server
        The server behind ``url``: its output goes into the failure log.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    suffix = "-FAILED"
    try:
        page.goto(url, timeout=LOAD_TIMEOUT_MS)
        yield page
        suffix = ""
    finally:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}{suffix}.png"), full_page=True)
        if suffix:
            (SCREENSHOTS / f"{name}.log").write_text(
                "\n".join(console) + "\n--- server ---\n" + server.output())
        page.goto("about:blank")  # Voila's shutdown beacon, as a closing tab sends it
        page.close(run_before_unload=True)
        context.close()

def write_notebook(path: Path, cells: list[str]) -> Path:
    """Write a Python 3 notebook at ``path`` with one code cell per source in ``cells``."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, path)
    return path


def _choose_the_notebook_s_kernel(dialog: Locator) -> None:
    # The dialog can close by itself (the kernel started) between being seen and this
    # click: nothing to do if it has gone.
    with contextlib.suppress(PlaywrightTimeout):
        dialog.get_by_role("button", name="Select", exact=True).click(
            timeout=_SELECT_TIMEOUT_MS)
        return
    if dialog.is_visible():  # the click missed: Enter accepts too
        with contextlib.suppress(PlaywrightTimeout):
            dialog.press("Enter", timeout=_SELECT_TIMEOUT_MS)


def run_all_cells(page: Page, count: int) -> None:
    """Wait for the kernel, then Run > Run All Cells, and for the last of the notebook's
    ``count`` cells to finish."""
    # JupyterLab may ask which kernel to start, at any moment while it opens the
    # notebook: take the notebook's own (Python 3) whenever it does. no_wait_after: the
    # dialog can come back (a second one), and Playwright would otherwise wait for it
    # to hide without calling the handler again (seen on a loaded machine: the cells
    # never ran, the dialog up for the whole 180 s).
    page.add_locator_handler(page.locator(".jp-Dialog").filter(has_text="Select Kernel"),
                             _choose_the_notebook_s_kernel, no_wait_after=True)
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    # The kernel is up when the status bar says Idle.
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=LOAD_TIMEOUT_MS)
    first = page.locator(".jp-Notebook .jp-CodeCell").first.locator(".jp-InputPrompt")
    for _ in range(3):
        # A request made while the kernel's connection is still settling can be
        # dropped (the cells stay "[ ]"), or JupyterLab may ask which kernel to start
        # (the handler above answers it): ask again.
        try:
            _run_all(page)
            expect(first).not_to_have_text(re.compile(r"\[ \]"), timeout=60_000)
            break
        except (AssertionError, PlaywrightTimeout):  # a dialog came first: see above
            continue
    last = page.locator(".jp-Notebook .jp-CodeCell").nth(count - 1).locator(
        ".jp-InputPrompt")
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while True:
        # A number, not "[*]" (queued or running) or "[ ]": which one depends on how
        # many tries it took.
        try:
            expect(last).to_have_text(re.compile(r"\[\d+\]"), timeout=20_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        # The last cell neither ran nor waits its turn while the kernel is idle: what
        # was queued was dropped (a kernel picked late in the dialog cancels the
        # queue, after the first cell ran). Run them all again.
        with contextlib.suppress(PlaywrightTimeout):
            if re.fullmatch(r"\[ \]:?", last.inner_text(timeout=5_000).strip()) and \
                    idle.count() == 1:
                _run_all(page)


def _run_all(page: Page) -> None:
    """Run > Run All Cells."""
    page.get_by_role("menuitem", name="Run", exact=True).click(timeout=10_000)
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click(timeout=10_000)

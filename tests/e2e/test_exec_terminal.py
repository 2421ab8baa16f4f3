"""``ExecConsole``'s shell in JupyterLab, offline: Panel's ``Terminal`` (xterm.js) drawn
from the project's Panel loader, keys typed in Chromium reaching ``sh`` in a container,
its size following the terminal's, and the exit code shown at the end.

One server, kernel and page for the module (``ghostpanel lab`` on a folder with a
one-cell notebook), ended at its end, as in ``test_jupyterlab_widgets.py``.
"""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    SCREENSHOTS,
    alive,
    descendants,
    failed,
    registered_environment,
    start_server,
)
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, run_all_cells, write_notebook
from tests.e2e.test_jupyterlab_widgets import (
    ALLOWED_OFFSITE,
    BROKEN,
    _make_container,
    _remove_containers,
    _suppress,
    run,
)
from tests.podman_service import PodmanService

ENV = "e2e-shell"
TARGET = f"gp-shell-{uuid.uuid4().hex[:6]}"
CELL = f"""import os
from ghostpanel_kernel import connect
from ghostpanel_widgets import ExecConsole
env = connect(os.environ["GHOSTPANEL_ENV"])
ExecConsole(env, {TARGET!r})"""


@pytest.fixture(scope="module")
def page(podman_engine: PodmanService, browser: Browser,
         request: pytest.FixtureRequest) -> Iterator[tuple[Page, list[str], list[str]]]:
    """The notebook run in Chromium; with what the page logged and fetched off-machine."""
    run(_make_container(podman_engine.url, TARGET))
    folder = Path(tempfile.mkdtemp(prefix="gp-shell-"))
    write_notebook(folder / "shell.ipynb", [CELL])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    console: list[str] = []
    offsite: list[str] = []
    try:
        with registered_environment(ENV, podman_engine.url):
            server = start_server(["lab", "--port", str(port), "--env", ENV, "--no-browser",
                                   "--dir", str(folder)], banner="GhostPanel notebooks:")
            below: dict[int, str] = {}
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            try:
                tab = context.new_page()
                tab.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(
                    (f"http://127.0.0.1:{port}/", "data:", "blob:", "about:")) else None)
                tab.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                token = server.url.split("token=")[1]
                tab.goto(f"http://127.0.0.1:{port}/lab/tree/shell.ipynb?token={token}",
                         timeout=LOAD_TIMEOUT_MS)
                run_all_cells(tab, count=1)
                below = descendants(server.pid)
                yield tab, console, offsite
            finally:
                suffix = "-FAILED" if failed(request) else ""
                with _suppress():
                    SCREENSHOTS.mkdir(exist_ok=True)
                    tab.screenshot(path=str(SCREENSHOTS / f"exec-terminal{suffix}.png"),
                                   full_page=True)
                context.close()
                try:
                    assert server.interrupt() == 0, server.output()
                finally:
                    server.ensure_stopped()
            left = {pid: command for pid, command in below.items() if alive(pid)}
            assert not left, f"processes outlived the lab: {left}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        run(_remove_containers(podman_engine.url))


def test_the_shell_runs_in_the_browser_terminal(
        page: tuple[Page, list[str], list[str]]) -> None:
    tab, console, offsite = page
    output = tab.locator(".jp-Notebook .jp-CodeCell").first.locator(".jp-OutputArea")
    terminal = output.locator(".xterm")
    expect(terminal).to_be_visible(timeout=60_000)
    # xterm.js's stylesheet applies (sent inline): its measuring helper is hidden.
    expect(terminal.locator(".xterm-char-measure-element")).to_be_hidden()
    output.get_by_role("button", name="Open shell").click()
    expect(output).to_contain_text("Shell open in", timeout=60_000)
    terminal.click()  # focus: keys now go to xterm.js
    # xterm.js draws on a canvas: what the shell saw comes back as its exit code, the
    # terminal's width, which the status line shows.
    tab.keyboard.type("exit $(stty size | cut -d' ' -f2)")
    tab.keyboard.press("Enter")
    try:
        expect(output).to_contain_text(re.compile(r"exited with \d+"), timeout=30_000)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- console ---\n" + "\n".join(console)) from None
    cols = int(re.findall(r"exited with (\d+)", output.inner_text())[0])
    assert 20 < cols < 255, cols  # the size xterm.js fitted itself to, not 0 or 80
    expect(output.get_by_role("button", name="Open shell")).to_be_enabled()
    broken = [line for line in console if BROKEN.search(line)]
    assert not broken, broken
    unexpected = [url for url in offsite if not ALLOWED_OFFSITE.match(url)]
    assert not unexpected, f"the page asked for resources off this machine: {unexpected}"

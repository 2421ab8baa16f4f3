"""Every public widget in JupyterLab, offline, as a user meets them: ``ghostpanel lab``
on a folder with one notebook that shows each widget in its own cell, run top to bottom
in a fresh kernel by Chromium, with no set-up cell (no ``pn.extension``): the first cell
makes a ``ContainerList``, so the browser gets BokehJS and Panel from that same cell
(``ghostpanel_widgets._panel_loader``).

Each widget must render (its grid, editor, chart or listing shows what the engine has;
no "Failed to create view"; no console error about a view or a model) and the live ones
must update (a container created after the cells ran appears in the ContainerList, the
EventFeed and the dashboard). Nothing may be fetched from off this machine but
stylesheets (the page renders without them). One server, kernel and page for the
module; all are ended, and the temporary folder removed, at its end.
"""

from __future__ import annotations

import asyncio
import json
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
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    SCREENSHOTS,
    Server,
    alive,
    descendants,
    failed,
    registered_environment,
    start_server,
    wait_until,
)
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, run_all_cells, write_notebook
from tests.podman_service import PodmanService

ENV = "e2e-lab"
LABEL = "io.ghostpanel.test"  # the containers this module makes, for clean-up
TARGET = f"gp-lab-{uuid.uuid4().hex[:6]}"  # running before the notebook opens
LATER = f"gp-lab-later-{uuid.uuid4().hex[:6]}"  # created once every widget is shown
BOLTFILE_MARK = "lab-boltfile-marker"
# Stylesheets Panel links from its CDN in a notebook kernel (its components' CSS, Font
# Awesome): the dead proxy refuses them and the widgets render without. No script.
ALLOWED_OFFSITE = re.compile(
    r"^https://cdn\.holoviz\.org/panel/[\w.]+/dist/[\w/@.-]+\.css(\?v=[\w.]+)?$"
    r"|^https://cdn\.jsdelivr\.net/npm/@fortawesome/fontawesome-free@[\w.^%]+/css/[\w.-]+\.css$")
# Console lines that mean a widget did not render.
BROKEN = re.compile(r"Failed to create view|Could not create a view|Cannot read properties "
                    r"of undefined|reading 'require'|model .*not found|Error displaying widget",
                    re.IGNORECASE)

# One cell per public widget (the first one also connects: no Panel set-up anywhere).
CELLS: dict[str, str] = {
    "ContainerList": """import os
from ghostpanel_kernel import connect
from ghostpanel_widgets import ContainerList
env = connect(os.environ["GHOSTPANEL_ENV"])
ContainerList(env)""",
    "EventFeed": "from ghostpanel_widgets import EventFeed\nEventFeed(env)",
    "LogStream": f"from ghostpanel_widgets import LogStream\nLogStream(env, {TARGET!r})",
    "StatsMonitor": ("from ghostpanel_widgets import StatsMonitor\n"
                     f"StatsMonitor(env, [{TARGET!r}], interval=1)"),
    "BoltfileEditor": ("from ghostpanel_widgets import BoltfileEditor\n"
                       f"BoltfileEditor('# {BOLTFILE_MARK}\\n[services.web]\\n"
                       "image = \"localhost/busybox:latest\"\\n')"),
    "ContainerInspector": ("from ghostpanel_widgets import ContainerInspector\n"
                           f"ContainerInspector(env, {TARGET!r})"),
    "ExecConsole": f"from ghostpanel_widgets import ExecConsole\nExecConsole(env, {TARGET!r})",
    "FileBrowser": f"from ghostpanel_widgets import FileBrowser\nFileBrowser(env, {TARGET!r})",
    "ImageBrowser": "from ghostpanel_widgets import ImageBrowser\nImageBrowser(env)",
    "VolumeBrowser": "from ghostpanel_widgets import VolumeBrowser\nVolumeBrowser(env)",
    "NetworkBrowser": "from ghostpanel_widgets import NetworkBrowser\nNetworkBrowser(env)",
    "EnvironmentPicker": "from ghostpanel_widgets import EnvironmentPicker\nEnvironmentPicker()",
    "OpsDashboard": "from ghostpanel_widgets import OpsDashboard\nOpsDashboard(env)",
}


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` in a thread of its own (Playwright's sync API keeps an event
    loop running in this one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _make_container(url: str, name: str) -> None:
    from ghostpanel_kernel import connect

    async with connect(url, name="check") as env:
        container = await env.containers.create(
            image="localhost/busybox:latest", name=name, labels={LABEL: "lab"},
            command=["sh", "-c", f"echo hello-from-{name}; "
                                 "trap 'exit 0' TERM; while true; do sleep 1; done"])
        await container.start()


async def _remove_containers(url: str) -> None:
    from ghostpanel_kernel import connect

    async with connect(url, name="check") as env:
        for container in await env.containers.list(all=True,
                                                    filters={"label": [f"{LABEL}=lab"]}):
            await container.remove(force=True)


@dataclass
class Lab:
    """The module's JupyterLab, its notebook open and run in ``page``."""

    server: Server
    page: Page
    folder: Path
    offsite: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def cell(self, name: str) -> Any:
        """The output area of widget ``name``'s cell, scrolled into view: JupyterLab
        lays out only the cells on screen, and a Tabulator grid off screen draws no
        rows (it has no height to fill) until it comes back into view."""
        index = list(CELLS).index(name)
        output = self.page.locator(".jp-Notebook .jp-CodeCell").nth(index).locator(
            ".jp-OutputArea")
        output.wait_for(state="attached", timeout=LOAD_TIMEOUT_MS)  # after a reload
        with _suppress():  # JupyterLab may be replacing the node (restoring the widgets)
            output.scroll_into_view_if_needed()
        return output


@pytest.fixture(scope="module")
def target(podman_engine: PodmanService) -> Iterator[str]:
    run(_make_container(podman_engine.url, TARGET))
    yield TARGET
    run(_remove_containers(podman_engine.url))


@pytest.fixture(scope="module")
def lab(podman_engine: PodmanService, target: str, browser: Browser,
        request: pytest.FixtureRequest) -> Iterator[Lab]:
    """``ghostpanel lab --dir FOLDER`` with the notebook, opened and run in Chromium."""
    folder = Path(tempfile.mkdtemp(prefix="gp-lab-"))
    write_notebook(folder / "widgets.ipynb", list(CELLS.values()))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with registered_environment(ENV, podman_engine.url):
        server = start_server(["lab", "--port", str(port), "--env", ENV, "--no-browser",
                               "--dir", str(folder)], banner="GhostPanel notebooks:")
        below: dict[int, str] = {}
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            lab = Lab(server, page, folder)
            page.on("request", lambda r: lab.offsite.append(r.url) if not r.url.startswith(
                (f"http://127.0.0.1:{port}/", "data:", "blob:", "about:")) else None)
            page.on("console", lambda m: lab.console.append(f"{m.type}: {m.text}"))
            token = server.url.split("token=")[1]
            page.goto(f"http://127.0.0.1:{port}/lab/tree/widgets.ipynb?token={token}",
                      timeout=LOAD_TIMEOUT_MS)
            run_all_cells(page, len(CELLS))
            below = descendants(server.pid)
            yield lab
        finally:
            suffix = "-FAILED" if failed(request) else ""
            with _suppress():
                SCREENSHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"jupyterlab-widgets{suffix}.png"),
                                full_page=True)
                (SCREENSHOTS / "jupyterlab-widgets.log").write_text(
                    "\n".join(lab.console) + "\n--- off this machine ---\n"
                    + "\n".join(sorted(set(lab.offsite)))
                    + "\n--- server ---\n" + server.output())
            context.close()
            try:
                assert server.interrupt() == 0, server.output()
            finally:
                server.ensure_stopped()
                shutil.rmtree(folder, ignore_errors=True)
        left = {pid: command for pid, command in below.items() if alive(pid)}
        assert not left, f"processes outlived the lab: {left}"


class _suppress:
    """Ignore any error (the screenshot after a failure must not hide the failure)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


# -- tests -------------------------------------------------------------------------------


def test_no_widget_failed_to_render(lab: Lab) -> None:
    notebook = lab.page.locator(".jp-Notebook")
    expect(notebook.locator(".jp-CodeCell .jp-OutputArea-output")).not_to_have_count(0)
    for name in CELLS:
        output = lab.cell(name)
        expect(output.locator(".jp-OutputArea-output").last).to_be_visible()
        expect(output).not_to_contain_text("Failed to create view")
        expect(output).not_to_contain_text("Error displaying widget")
        assert output.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() \
            == 0, f"{name}'s cell wrote an error: {output.inner_text()[:2000]}"
    broken = [line for line in lab.console if BROKEN.search(line)]
    assert not broken, broken


def test_tables_show_the_engines_rows(lab: Lab) -> None:
    for name in ("ContainerList", "OpsDashboard"):
        grid = lab.cell(name).locator(".tabulator-row", has_text=TARGET)
        expect(grid).to_contain_text("running", timeout=60_000)
    # Tabulator's bundled stylesheet applies: a bold header with a rule below.
    header = lab.cell("ContainerList").locator(".tabulator-header").first
    style = header.evaluate(
        "e => [getComputedStyle(e).fontWeight, getComputedStyle(e).borderBottomWidth]")
    assert style[0] == "700" and style[1] != "0px", style
    expect(lab.cell("EventFeed").locator(".tabulator")).to_be_visible()


def test_the_editor_shows_the_boltfile(lab: Lab) -> None:
    editor = lab.cell("BoltfileEditor").locator(".ace_content")
    expect(editor).to_contain_text(BOLTFILE_MARK, timeout=60_000)
    expect(editor).to_contain_text("services.web")
    # Highlighted as TOML (Ace's mode, defined offline by the editor): a comment token.
    expect(editor.locator(".ace_comment")).to_contain_text(BOLTFILE_MARK)


def test_logs_and_stats_render(lab: Lab) -> None:
    expect(lab.cell("LogStream")).to_contain_text(f"hello-from-{TARGET}", timeout=60_000)
    chart = lab.cell("StatsMonitor").locator("canvas")
    expect(chart.first).to_be_attached(timeout=60_000)


def test_the_other_widgets_show_the_engine(lab: Lab) -> None:
    expect(lab.cell("ContainerInspector")).to_contain_text(TARGET, timeout=60_000)
    expect(lab.cell("ExecConsole").locator("input[type=text]").first).to_be_visible()
    expect(lab.cell("FileBrowser")).to_contain_text("bin", timeout=60_000)
    expect(lab.cell("ImageBrowser")).to_contain_text("busybox", timeout=60_000)
    expect(lab.cell("VolumeBrowser").locator(".widget-html, .jupyter-widgets").first
           ).to_be_visible()
    expect(lab.cell("NetworkBrowser")).to_contain_text("bridge", timeout=60_000)
    expect(lab.cell("EnvironmentPicker")).to_contain_text(ENV, timeout=60_000)


def test_live_widgets_update(lab: Lab, podman_engine: PodmanService) -> None:
    run(_make_container(podman_engine.url, LATER))
    for name in ("ContainerList", "OpsDashboard"):
        expect(lab.cell(name).locator(".tabulator-row", has_text=LATER)).to_contain_text(
            "running", timeout=60_000)
    expect(lab.cell("EventFeed").locator(".tabulator-row", has_text=LATER).first
           ).to_be_visible(timeout=60_000)


def test_bokeh_and_panel_were_loaded_once_and_inline(lab: Lab) -> None:
    # The loader ran once: one copy of BokehJS in the page, Panel's models with it.
    loaded = lab.page.evaluate(
        "() => [window.Bokeh && window.Bokeh.version, !!(window.Bokeh && window.Bokeh.Panel),"
        " typeof window.Tabulator, typeof window.ace,"
        " Object.keys(window.__ghostpanel_parts || {}).length]")
    assert loaded[1] and loaded[2] == "function" and loaded[3] == "object", loaded
    assert loaded[4] > 0, loaded
    unexpected = [url for url in lab.offsite if not ALLOWED_OFFSITE.match(url)]
    assert not unexpected, f"the page asked for resources off this machine: {unexpected}"


def test_the_notebook_holds_one_copy_of_bokehjs(lab: Lab) -> None:
    # Saved as it is now: the loader's output is in the first cell, once, and Panel's
    # own (deferred) loader is not there at all.
    saved = _save(lab)
    outputs = [output for cell in saved["cells"] for output in cell.get("outputs", [])]
    copies = [output for output in outputs
              if "BEGIN bokeh.min.js" in json.dumps(output.get("data", {}))]
    assert len(copies) == 1, len(copies)
    assert "application/vnd.bokehjs_load.v0+json" in copies[0]["data"]
    first = saved["cells"][0].get("outputs", [])
    assert copies[0] in first


def _save(lab: Lab) -> dict[str, Any]:
    """File > Save Notebook; the notebook as saved, with its outputs."""
    lab.page.get_by_role("menuitem", name="File", exact=True).click()
    lab.page.locator("li[data-command='docmanager:save']").click()
    saved: dict[str, Any] = wait_until(
        lambda: _savedwrite_notebook(lab), timeout=60,
        message=f"the notebook saved with its outputs: {list(lab.folder.iterdir())}")
    return saved


def _savedwrite_notebook(lab: Lab) -> dict[str, Any]:
    """The notebook as saved now (empty until it is, with its outputs)."""
    try:
        saved: dict[str, Any] = json.loads((lab.folder / "widgets.ipynb").read_text())
    except (OSError, ValueError):  # being written
        return {}
    return saved if any(cell.get("outputs") for cell in saved["cells"]) else {}


def test_after_a_page_reload_the_widgets_render_again(lab: Lab) -> None:
    # The kernel keeps running and sends no loader again: the saved output of the first
    # cell brings BokehJS back before the widgets' views are made again.
    _save(lab)
    seen = len(lab.console)
    lab.page.reload(timeout=LOAD_TIMEOUT_MS)
    for name in ("ContainerList", "OpsDashboard"):
        expect(lab.cell(name).locator(".tabulator-row", has_text=TARGET)).to_contain_text(
            "running", timeout=LOAD_TIMEOUT_MS)
    expect(lab.cell("BoltfileEditor").locator(".ace_content")).to_contain_text(
        BOLTFILE_MARK, timeout=60_000)
    broken = [line for line in lab.console[seen:] if BROKEN.search(line)]
    assert not broken, broken


def test_a_notebook_that_loads_panel_from_its_cdn_first(lab: Lab, browser: Browser) -> None:
    # pn.extension('tabulator') as Panel's docs have it: BokehJS from a CDN, which this
    # machine cannot reach. The widgets still render.
    cells = ["import panel as pn\npn.extension('tabulator')", CELLS["ContainerList"],
             CELLS["BoltfileEditor"]]
    write_notebook(lab.folder / "cdn_first.ipynb", cells)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        token = lab.server.url.split("token=")[1]
        port = lab.server.url.split(":")[2].split("/")[0]
        # A workspace of its own: the default one would open widgets.ipynb here too.
        page.goto(f"http://127.0.0.1:{port}/lab/workspaces/cdn/tree/cdn_first.ipynb"
                  f"?token={token}", timeout=LOAD_TIMEOUT_MS)
        run_all_cells(page, len(cells))
        outputs = page.locator(".jp-Notebook .jp-CodeCell")
        expect(outputs.nth(1).locator(".tabulator-row", has_text=TARGET)).to_contain_text(
            "running", timeout=LOAD_TIMEOUT_MS)
        expect(outputs.nth(2).locator(".ace_content")).to_contain_text(BOLTFILE_MARK)
        broken = [line for line in console if BROKEN.search(line)]
        assert not broken, broken
    finally:
        with _suppress():
            page.screenshot(path=str(SCREENSHOTS / "jupyterlab-cdn-first.png"))
            (SCREENSHOTS / "jupyterlab-cdn-first.log").write_text("\n".join(console))
        context.close()


def test_the_loader_runs_each_part_at_once_and_once_per_page(browser: Browser) -> None:
    from ghostpanel_widgets._panel_loader import Part, loader_script

    core = Part("core", "window.Bokeh = {version: '9.9', Panel: {}};"
                        " window.coreRuns = (window.coreRuns || 0) + 1;")
    library = Part("library", "window.libRuns = (window.libRuns || 0) + 1;")
    css = Part("css", ".gp-probe { color: rgb(1, 2, 3); }")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content("<html><head></head><body><p class='gp-probe'>x</p></body></html>")
        after = "\nwindow.seen = [typeof window.Bokeh, window.coreRuns, window.libRuns];"
        page.add_script_tag(content=loader_script([css, core, library], "9.9") + after)
        # In the very script that ran the loader, everything is there already.
        assert page.evaluate("window.seen") == ["object", 1, 1]
        assert page.evaluate("getComputedStyle(document.querySelector('.gp-probe')).color"
                             ) == "rgb(1, 2, 3)"
        page.add_script_tag(content=loader_script([css, core, library], "9.9"))
        assert page.evaluate("[window.coreRuns, window.libRuns]") == [1, 1]  # once per page
        # BokehJS and Panel loaded by someone else (Panel's own loader): left as they are.
        page.evaluate("window.__ghostpanel_parts = {}")
        page.add_script_tag(content=loader_script([core, library], "9.9"))
        assert page.evaluate("[window.coreRuns, window.libRuns]") == [1, 2]
    finally:
        context.close()


# Rows that reach a Tabulator while its table is being built (the flake of
# test_tables_show_the_engines_rows: "1 containers" beside an empty grid). The hook makes
# that happen every time: it changes the table's data right after each render, while
# Tabulator builds the table (asynchronously), as a kernel's first listing can.
_WHILE_BUILDING = {
    "new rows (setData)": ([], "this.model.source.data = {name: ['web-1', 'web-2'], "
                                 "_index: [0, 1]};", ["web-1", "web-2"]),
    "changed cells (patch)": (["web-1"], "this.model.source.patch(new Map([['name', "
                                           "[[0, 'patched']]]]));", ["patched"]),
}


@pytest.mark.parametrize("case", list(_WHILE_BUILDING))
def test_a_tabulator_draws_the_rows_that_came_while_it_was_built(browser: Browser,
                                                                  case: str) -> None:
    import pandas as pd
    from bokeh.embed import components
    from ghostpanel_widgets._panel import load_panel
    from ghostpanel_widgets._panel_loader import _bokehjs_version, bundle_parts, loader_script

    rows, change, expected = _WHILE_BUILDING[case]
    pn = load_panel("tabulator")
    table = pn.widgets.Tabulator(pd.DataFrame({"name": pd.Series(rows, dtype=str)}),
                                 pagination="remote", disabled=True, show_index=False)
    script, div = components(table.get_root())
    hook = ("(function () { var proto = Bokeh.Panel.DataTabulator.prototype.default_view"
            ".prototype; var render = proto.render; proto.render = function () {"
            " render.apply(this, arguments); window.whileBuilding = this._building; "
            f"{change} }}; }})();")
    loader = loader_script(bundle_parts(), _bokehjs_version())
    context = browser.new_context()
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.set_content(f"<html><head><script>{loader}</script><script>{hook}</script>"
                         f"</head><body>{div}{script}</body></html>")
        grid = page.locator(".tabulator-row")
        expect(grid).to_have_count(len(expected), timeout=30_000)
        assert page.evaluate("window.whileBuilding") is True  # the change came in time
        assert [text.strip() for text in grid.all_inner_texts()] == expected
        # Drawn by the fix, once the table was built (not by some later redraw).
        assert any(line.startswith("GhostPanel: rows that came while the Tabulator")
                   for line in console), console
    finally:
        context.close()

"""Fleet health end to end, on a little real history: containers on the session's Podman
engine that burn CPU, grow their memory and crash, sampled for a few seconds by the real
:class:`Sampler` (stats and the engine's events) into the session's metrics store.

Then: the fleet-health notebook runs top to bottom (nbclient) and finds the leak and the
crash loop, and its incident report exports to HTML (nbconvert); the Voila fleet-health
dashboard shows its charts and findings in Chromium; the AlertFeed and MetricsChart
widgets render in JupyterLab, offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell
from playwright.sync_api import Browser, expect

from ghostpanel_kernel import connect
from ghostpanel_kernel.metrics._alert_builtin import Finding
from ghostpanel_kernel.metrics._alert_rules import predicate_rule
from ghostpanel_kernel.metrics._alert_state import AlertState
from ghostpanel_kernel.metrics._sampler import Sampler
from ghostpanel_kernel.metrics._store import MetricsStore
from tests.agent_process import free_port
from tests.e2e.conftest import (
    ROOT,
    SCREENSHOTS,
    Server,
    registered_environment,
    start_server,
    wait_until,
)
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, run_all_cells, write_notebook
from tests.podman_service import PodmanService

ENV = f"fleet-{uuid.uuid4().hex[:6]}"  # its own name: the session's store is shared
SAMPLING_SECONDS = 5.0
LABEL = {"io.ghostpanel.test": "fleet-health"}
# The leaker writes 512 KiB into /dev/shm (memory: tmpfs pages are the container's)
# every 0.1 s, for longer than the sampling lasts.
LEAKER = ("i=0; while [ $i -lt 100 ]; do dd if=/dev/zero of=/dev/shm/f$i bs=512k count=1 "
          "2>/dev/null; i=$((i+1)); sleep 0.1; done; sleep 3600")


async def _record(url: str) -> list[str]:
    """Run the containers, sample them, crash ``crasher`` three times; their names."""
    made: list[str] = []
    async with connect(url, name=ENV) as env:
        try:
            specs = {"burner": "while :; do :; done", "leaker": LEAKER, "idle": "sleep 3600",
                     "crasher": "sleep 0.2; exit 3"}
            containers = {}
            for role, script in specs.items():
                name = f"{ENV}-{role}"
                containers[role] = await env.containers.create(
                    image="localhost/busybox:latest", name=name, command=["sh", "-c", script],
                    labels=LABEL)
                made.append(name)
            with MetricsStore() as store:
                sampler = Sampler(env, store, interval=0.5, downsample_every=0)
                sampler.start()
                await asyncio.sleep(0.3)  # the event subscriber is listening
                for role in ("burner", "leaker", "idle"):
                    await containers[role].start()
                for _ in range(3):  # a restart loop, seen through the engine's events
                    await containers["crasher"].start()
                    await containers["crasher"].wait()
                    await asyncio.sleep(0.2)
                await asyncio.sleep(max(SAMPLING_SECONDS - 2.5, 1.0))
                await sampler.aclose()
        finally:
            for name in made:
                with contextlib.suppress(Exception):
                    await (await env.containers.get(name)).remove(force=True)
    return made


@pytest.fixture(scope="module")
def recorded(podman_engine: PodmanService) -> Iterator[str]:
    """A few seconds of real history of ENV (registered on the session engine)."""
    with registered_environment(ENV, podman_engine.url):
        # In a thread of its own: Playwright's sync API runs an event loop in this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _record(podman_engine.url)).result()
        yield ENV


def _facts(notebook: nbformat.NotebookNode, probe: str) -> dict[str, Any]:
    notebook.cells.append(new_code_cell(
        f"import json as _json\nprint('PROBE ' + _json.dumps({probe}, default=str))"))
    NotebookClient(notebook, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    probe_cell = notebook.cells.pop()
    for output in notebook.cells[-1].get("outputs", []) + probe_cell.get("outputs", []):
        if output.get("output_type") == "stream" and "PROBE " in output.get("text", ""):
            return dict(json.loads(output["text"].split("PROBE ", 1)[1]))
    raise AssertionError(f"the probe printed nothing: {probe_cell.get('outputs')}")


def test_the_notebook_finds_the_leak_and_the_crash_loop_and_exports_a_report(
        recorded: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GHOSTPANEL_FLEET", recorded)
    monkeypatch.setenv("GHOSTPANEL_FLEET_SINCE", "15m")
    notebook = nbformat.read(ROOT / "notebooks" / "fleet_health.ipynb", as_version=4)
    facts = _facts(notebook, """{
        "containers": sorted(set(frame["container"])),
        "cpu_p95": percentiles["cpu_cores_p95"].droplevel(0).to_dict(),
        "leaking": sorted(leaking["container"]),
        "looping": sorted(looping["container"]),
        "exit_codes": looping["last_exit_code"].tolist(),
        "verdicts": sizing["verdict"].droplevel(0).to_dict(),
        "wide": list(wide.columns)}""")
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", (
                f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    burner, leaker = f"{ENV}-burner", f"{ENV}-leaker"
    assert {burner, leaker, f"{ENV}-idle"} <= set(facts["containers"])
    assert facts["cpu_p95"][burner] > 0.2 > facts["cpu_p95"][f"{ENV}-idle"]
    assert leaker in facts["leaking"] and f"{ENV}-idle" not in facts["leaking"]
    assert facts["looping"] == [f"{ENV}-crasher"] and facts["exit_codes"] == [3]
    assert facts["verdicts"][burner] == "set a limit"  # created without a memory limit
    assert "memory_working_set_bytes" in facts["wide"] and "cpu_cores" in facts["wide"]

    # The report, exported as a reader gets it: no code, the charts' BokehJS inline.
    with warnings.catch_warnings():
        # Panel leaves an output with no data for its comm; nbconvert says it cannot
        # show it (a UserWarning) and leaves it out, as it should.
        warnings.filterwarnings("ignore", message="Your element with mimetype")
        body, _ = HTMLExporter(exclude_input=True).from_notebook_node(notebook)
    report = tmp_path / "fleet_health.html"
    report.write_text(body, encoding="utf-8")
    assert "Incident report: fleet health, last 15m" in body
    assert f"{leaker}</b> leaks memory" in body
    assert f"{ENV}-crasher</b> is in a restart loop: 3 restarts" in body
    assert "Bokeh.embed.embed_items" in body and "cdn.bokeh.org" not in body
    assert "import pandas" not in body  # --no-input: the code is left out


@contextlib.contextmanager
def _voila(environment: dict[str, str]) -> Iterator[Server]:
    """``python -m voila voila_apps/fleet_health.ipynb`` with ``ghostpanel up``'s settings."""
    from ghostpanel_kernel.cli._up import _VOILA_CONFIG

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gp-fleet-voila-") as config:
        Path(config, "voila.json").write_text(json.dumps(_VOILA_CONFIG), encoding="utf-8")
        log = Path(config, "voila.log")
        with log.open("w") as output:  # a file: a pipe nobody reads could fill and block
            process = subprocess.Popen(
                [sys.executable, "-m", "voila",
                 str(ROOT / "voila_apps" / "fleet_health.ipynb"), "--no-browser",
                 "--Voila.ip=127.0.0.1", f"--Voila.port={port}", "--Voila.port_retries=0",
                 f"--Voila.config_file_paths={config}"],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True, env={**os.environ, **environment}, cwd=ROOT / "voila_apps")
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


def test_the_voila_dashboard_charts_the_fleet(browser: Browser, recorded: str) -> None:
    with _voila({"GHOSTPANEL_FLEET": recorded, "GHOSTPANEL_FLEET_SINCE": "15m"}) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1400})
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        suffix = "-FAILED"
        try:
            page.goto(server.url, timeout=LOAD_TIMEOUT_MS)
            findings = page.locator(".gp-fleet-findings")
            expect(findings).to_contain_text(f"{ENV}-leaker", timeout=LOAD_TIMEOUT_MS)
            expect(findings).to_contain_text(f"{ENV}-crasher")
            expect(findings).to_contain_text("restart loop: 3 restarts")
            # Bokeh draws on canvases: the p50/p95 bars and the history charts.
            chart = page.locator(".gp-metrics-chart")
            expect(chart.locator("canvas").first).to_be_visible(timeout=LOAD_TIMEOUT_MS)
            assert page.locator("canvas").count() >= 3
            expect(page.locator(".gp-alert-feed")).to_contain_text("firing")
            suffix = ""
        finally:
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"voila-fleet-health{suffix}.png"),
                            full_page=True)
            if suffix:
                (SCREENSHOTS / "voila-fleet-health.log").write_text(
                    "\n".join(console) + "\n--- server ---\n" + server.output())
            page.goto("about:blank")
            page.close(run_before_unload=True)
            context.close()


def test_the_alert_feed_and_the_chart_render_in_jupyterlab(browser: Browser,
                                                           recorded: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gp-fleet-lab-"))
    state = AlertState(folder / "alerts.sqlite3")
    try:
        rule = predicate_rule("web-leak", lambda frame: [], severity="critical")
        state.apply([rule], recorded, {"web-leak": [Finding(f"{recorded}-leaker", 1.0,
                                                            "grows 600 MiB/h")]},
                    time.time())
    finally:
        state.close()
    write_notebook(folder / "fleet.ipynb", [
        "from ghostpanel_kernel import connect\n"
        "from ghostpanel_kernel.metrics._alert_client import LocalAlertClient\n"
        "from ghostpanel_widgets import AlertFeed, MetricsChart\n"
        f"env = connect({recorded!r})\n"
        "MetricsChart(env, since='15m')",
        f"AlertFeed(LocalAlertClient({str(folder)!r}, environment={recorded!r}), live=False)",
    ])
    port = free_port()
    server = start_server(["lab", "--dir", str(folder), "--port", str(port), "--env",
                           recorded, "--no-browser"], banner="GhostPanel notebooks:")
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    page = context.new_page()
    suffix = "-FAILED"
    try:
        token = server.url.split("token=")[1]
        page.goto(f"http://127.0.0.1:{port}/lab/tree/fleet.ipynb?token={token}",
                  timeout=LOAD_TIMEOUT_MS)
        run_all_cells(page, 2)
        outputs = page.locator(".jp-Notebook .jp-CodeCell .jp-OutputArea")
        chart = outputs.nth(0).locator(".gp-metrics-chart")
        chart.scroll_into_view_if_needed(timeout=LOAD_TIMEOUT_MS)
        expect(chart.locator("canvas").first).to_be_visible(timeout=LOAD_TIMEOUT_MS)
        feed = outputs.nth(1).locator(".gp-alert-feed")
        feed.scroll_into_view_if_needed(timeout=LOAD_TIMEOUT_MS)
        expect(feed.locator(".tabulator")).to_contain_text(f"{recorded}-leaker",
                                                           timeout=LOAD_TIMEOUT_MS)
        feed.locator("button", has_text="Acknowledge").click()
        expect(feed).to_contain_text("acknowledged", timeout=60_000)
        suffix = ""
    finally:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"jupyterlab-fleet-health{suffix}.png"),
                        full_page=True)
        page.goto("about:blank")
        page.close(run_before_unload=True)
        context.close()
        try:
            assert server.interrupt() == 0, server.output()
        finally:
            server.ensure_stopped()
            shutil.rmtree(folder, ignore_errors=True)

"""The curated notebooks run top to bottom in a real kernel (nbclient), against the
session's private engine, as CI runs them.

Each notebook must run without an error output, leave the engine as it found it, and
have done its job: a probe cell, appended to the notebook for the test only, prints
facts from the kernel's variables as JSON, and the test checks them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from ghostpanel_kernel import connect
from tests.podman_service import PodmanService

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT = 180

# Per notebook: the probe's expression (evaluated last, in the notebook's kernel).
PROBES = {
    "01_quickstart.ipynb": """{
        "stdout": logs.stdout, "stderr": logs.stderr, "exit_code": result.exit_code,
        "answer": result.stdout.split()[0], "state": hello.state, "name": name,
        "shown": shown.to_dict("records"),
        "streamed": sorted({(e.stream, e.text) for e in stream.lines}),
        "sampled": sorted(set(monitor.frame()["container"])),
        "inspected": inspector.attrs.get("Name", ""), "page": page.name,
        "closed": [w.comm is None for w in (table, stream, monitor, inspector, page)]}""",
    "02_containers_and_logs.ipynb": """{
        "followed": [line.text for line in followed],
        "streams": sorted(set(worker_logs["stream"])),
        "after_restart": [line.text for line in after],
        "merged": sorted(set(merged["container"])), "removed": removed,
        "app": app, "listed": listed.to_dict("records"),
        "streamed": sorted({e.container for e in stream.lines}),
        "page": page.name, "sampled": sorted(set(monitor.frame()["container"])),
        "ports": inspector.attrs["NetworkSettings"]["Ports"],
        "closed": [w.comm is None for w in (table, stream, page, monitor, inspector)]}""",
    "03_images_volumes_networks.ipynb": """{
        "tags": busybox.tags, "replies": {k: list(v) for k, v in replies.items()},
        "made": {kind: len(items) for kind, items in made.items()}}""",
    "04_incident_timeline.ipynb": """{
        "kinds": timeline["kind"].value_counts().to_dict(),
        "actions": sorted(set(event_frame["what"])),
        "errors": int((log_frame["level"] == "error").sum()),
        "joined": int(lines_with_stats["cpu_percent"].notna().sum()),
        "exit_code": api.attrs["State"]["ExitCode"]}""",
}


# Notebooks run by a test of their own (they need recorded history first).
TESTED_ELSEWHERE = {"fleet_health.ipynb": "tests/e2e/test_fleet_health.py"}


def test_every_notebook_is_tested() -> None:
    assert sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")) == sorted(
        [*PROBES, *TESTED_ELSEWHERE])


async def _engine_state(url: str) -> dict[str, list[str]]:
    async with connect(url, name="check") as env:
        return {
            "containers": sorted(c.name for c in await env.containers.list(all=True)),
            "volumes": sorted(v.name for v in await env.volumes.list()),
            "networks": sorted(n.name for n in await env.networks.list()),
            "images": sorted(tag for i in await env.images.list() for tag in i.tags),
        }


def engine_state(url: str) -> dict[str, list[str]]:
    return asyncio.run(_engine_state(url))


def run_notebook(name: str, engine_url: str, monkeypatch: pytest.MonkeyPatch,
                 ) -> tuple[nbformat.NotebookNode, dict[str, Any]]:
    """Run ``notebooks/NAME`` with its probe; the executed notebook and the probe's facts."""
    monkeypatch.setenv("GHOSTPANEL_ENGINE", engine_url)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    probe = f"import json as _json\nprint('PROBE ' + _json.dumps({PROBES[name]}, default=str))"
    notebook.cells.append(new_code_cell(probe))
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    facts: dict[str, Any] = {}
    for output in notebook.cells[-1].get("outputs", []):
        if output.get("output_type") == "stream" and "PROBE " in output.get("text", ""):
            facts = json.loads(output["text"].split("PROBE ", 1)[1])
    notebook.cells.pop()
    assert facts, f"the probe printed nothing: {notebook.cells[-1].get('outputs')}"
    return notebook, facts


def check_outputs(notebook: nbformat.NotebookNode) -> None:
    """No cell failed, and nothing printed a traceback on stderr."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", (
                f"cell {index} failed: {output.get('ename')}: {output.get('evalue')}")
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                assert "Traceback" not in output.get("text", ""), output["text"]


async def _remove_extras(url: str, before: dict[str, list[str]]) -> None:
    """Remove what is on the engine now and was not in ``before``."""
    async with connect(url, name="cleanup") as env:
        for container in await env.containers.list(all=True):
            if container.name not in before["containers"]:
                await container.remove(force=True, volumes=True)
        for volume in await env.volumes.list():
            if volume.name not in before["volumes"]:
                await volume.remove(force=True)
        for network in await env.networks.list():
            if network.name not in before["networks"]:
                await network.remove()
        for image in await env.images.list():
            extra = set(image.tags) - set(before["images"])
            if extra and len(extra) < len(image.tags):
                # A new tag of an image that was there before (the busybox every test
                # uses): untag it; removing the image would take the old tags with it.
                for tag in sorted(extra):
                    await env.images.remove(tag)
            elif extra:
                await image.remove(force=True)


@pytest.fixture
def engine(podman_engine: PodmanService) -> Any:
    """The session engine, and a check that the notebook left it as it found it.

    What a notebook left behind (its clean-up cell never ran if an earlier cell failed)
    is reported, then removed, so that one failing notebook does not fail the next.
    """
    before = engine_state(podman_engine.url)
    yield podman_engine
    after = engine_state(podman_engine.url)
    if after != before:
        asyncio.run(_remove_extras(podman_engine.url, before))
    assert after == before, "the notebook left things behind"


def test_quickstart(engine: PodmanService, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook, facts = run_notebook("01_quickstart.ipynb", engine.url, monkeypatch)
    check_outputs(notebook)
    assert facts["stdout"].startswith("hello from ")
    assert facts["stderr"] == "a warning"
    assert (facts["exit_code"], facts["answer"]) == (3, "42")
    assert facts["state"] == "exited"
    # The widgets beside the code showed the same container.
    name = facts["name"]
    assert [(row["name"], row["state"]) for row in facts["shown"]] == [(name, "running")]
    assert ["stderr", "a warning"] in facts["streamed"], facts["streamed"]
    assert any(stream == "stdout" and text.startswith("hello from ")
               for stream, text in facts["streamed"]), facts["streamed"]
    assert facts["sampled"] == [name]
    assert facts["inspected"].lstrip("/") == name
    assert facts["page"] == name
    assert facts["closed"] == [True] * 5
    widgets = [output for cell in notebook.cells for output in cell.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    assert len(widgets) >= 5, "the widgets' cells show no widget"


def test_containers_and_logs(engine: PodmanService, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook, facts = run_notebook("02_containers_and_logs.ipynb", engine.url, monkeypatch)
    check_outputs(notebook)
    assert facts["followed"][:2] == ["worker: job 1 done", "worker: job 2 done"]
    assert facts["streams"] == ["stderr", "stdout"]
    # The job counter starts again after the restart.
    assert "worker: job 1 done" in facts["after_restart"]
    assert len(facts["merged"]) == 2
    assert len(facts["removed"]) == 2
    # The widgets beside the code: the app's two containers in each.
    app = facts["app"]
    both = [f"{app}-web", f"{app}-worker"]
    assert sorted((row["name"], row["state"]) for row in facts["listed"]) == [
        (both[0], "running"), (both[1], "running")]
    assert facts["streamed"] == both
    assert facts["page"] == both[1]
    assert facts["sampled"] == both
    assert "8080/tcp" in facts["ports"]
    assert facts["closed"] == [True] * 5


def test_images_volumes_networks(engine: PodmanService,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    notebook, facts = run_notebook("03_images_volumes_networks.ipynb", engine.url,
                                   monkeypatch)
    check_outputs(notebook)
    assert any(tag.startswith("localhost/tools-") for tag in facts["tags"])
    for target, (exit_code, reply) in facts["replies"].items():
        assert exit_code == 0 and reply.startswith("hello from web-"), (target, reply)
    assert facts["made"] == {"containers": 5, "volumes": 1, "networks": 1, "tags": 1}
    printed = "".join(output.get("text", "") for cell in notebook.cells
                      for output in cell.get("outputs", []))
    assert "(0, 'written by the first container')" in printed  # read back from the volume


def test_incident_timeline(engine: PodmanService, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook, facts = run_notebook("04_incident_timeline.ipynb", engine.url, monkeypatch)
    check_outputs(notebook)
    kinds = facts["kinds"]
    assert kinds.get("event", 0) >= 3 and kinds.get("log", 0) >= 5 and \
        kinds.get("stats", 0) >= 3, kinds
    assert {"container create", "container start"} <= set(facts["actions"])
    assert any(action.endswith(("died", "die", "stop")) for action in facts["actions"])
    assert facts["errors"] >= 3
    assert facts["joined"] >= 1
    assert facts["exit_code"] == 143
    # The plot is a Panel pane holding Bokeh figures, rendered as the cell's output.
    plot_cell = next(cell for cell in notebook.cells if "pn.pane.Bokeh(" in cell.source)
    kinds_out = {key for output in plot_cell["outputs"] for key in output.get("data", {})}
    assert "application/vnd.holoviews_exec.v0+json" in kinds_out, kinds_out

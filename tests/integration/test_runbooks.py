"""Runbooks executed for real: papermill on this Python's kernel against the session's
Podman engine, the CLI's exit codes and traceback, the history, the audit log's link,
the RunbookLauncher headless, and an agent that runs a schedule (and runs it again after
a failure). Each execution starts a kernel (~3-5 s): they are few."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_notebook

from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.gateway._audit import AuditLog
from ghostpanel_kernel.runbooks import RunHistory
from ghostpanel_kernel.store import open_database
from tests.agent_process import run_cli, start_agent
from tests.orphans import claim

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GHOSTPANEL_DATABASE_URL", raising=False)
    return tmp_path / "home"


def _audit_rows(home: Path) -> list[dict[str, object]]:
    engine = open_database()
    try:
        return [row.as_dict() for row in AuditLog(engine).entries()
                if row.action == "runbook run"]
    finally:
        engine.dispose()


async def test_a_health_report_runs_is_kept_exported_and_audited(
        home: Path, env: Environment, engine_url: str, make_container) -> None:  # type: ignore[no-untyped-def]
    label = f"gp-runbook-test={time.monotonic_ns()}"
    container = await make_container(labels=dict([label.split("=")]))
    await container.start()
    result = CliRunner().invoke(cli, ["runbook", "run", "health_report", "-p",
                                      f"label={label}", "--env", engine_url])
    assert result.exit_code == 0, result.output
    assert "cell 6/6" in result.output  # progress, the injected parameters cell counted
    [run] = RunHistory().runs()
    assert run.status == "succeeded" and run.duration is not None and run.duration > 0
    assert run.parameters == {"label": label, "environment": engine_url}
    executed = json.loads(Path(run.notebook).read_text())
    printed = "".join("".join(output.get("text", "")) for cell in executed["cells"]
                      for output in cell.get("outputs", []))
    assert container.name in printed and "1 containers, 0 need attention" in printed
    assert run.html is not None and container.name in Path(run.html).read_text()
    # The audit row names the run and links the executed notebook and its page.
    [row] = _audit_rows(home)
    assert row["request_id"] == run.id and row["result"] == "allowed"
    assert row["target"] == "health_report" and row["environment"] == engine_url
    assert row["detail"]["notebook"] == run.notebook  # type: ignore[index]
    assert row["detail"]["html"] == run.html  # type: ignore[index]
    assert run.audit_seq == row["seq"]


async def test_a_failing_cell_fails_the_run_with_its_traceback(
        home: Path, env: Environment, engine_url: str, make_container) -> None:  # type: ignore[no-untyped-def]
    label = f"gp-runbook-fail={time.monotonic_ns()}"
    container = await make_container(command=["sh", "-c", "exit 3"],
                                     labels=dict([label.split("=")]))
    await container.start()
    await container.wait(condition="not-running")
    result = CliRunner().invoke(cli, [
        "runbook", "run", "health_report", "-p", f"label={label}",
        "-p", "fail_on_unhealthy=true", "-p", f"environment={engine_url}"])
    assert result.exit_code == 1, result.output
    assert "Traceback" in result.stderr or "Cell In[" in result.stderr
    assert f"RuntimeError: unhealthy or failed containers: {container.name}" in result.stderr
    [run] = RunHistory().runs()
    assert run.status == "failed" and "RuntimeError" in (run.error or "")
    assert run.html is not None and Path(run.html).exists()  # the failed page is kept too
    [row] = _audit_rows(home)
    assert row["result"] == "failed" and row["request_id"] == run.id


async def test_the_launcher_runs_a_runbook_and_shows_its_output(
        home: Path, engine_url: str) -> None:
    from ghostpanel_widgets import RunbookLauncher

    launcher = RunbookLauncher(runbook="image_prune")
    try:
        assert set(launcher.fields) == {"environment", "dangling_only", "dry_run"}
        launcher.fields["environment"].input.value = engine_url
        result = await launcher.run()
        assert result is not None and result.ok, launcher.status.message
        assert launcher.progress.value == launcher.progress.max == 5
        assert "succeeded" in launcher.status.message
        assert "image_prune" in launcher.history.value
        assert "succeeded" in launcher.history.value
        assert launcher.run_picker.value == result.record.id
        assert "dry run: nothing removed" in launcher.output.value  # the page, inline
        assert "data:text/html;base64," in launcher.output.value
    finally:
        launcher.close()


@pytest.fixture
def agent_home() -> Iterator[Path]:
    home = claim(Path(tempfile.mkdtemp(prefix="gp-agent-", dir="/tmp")))
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_the_agent_runs_a_schedule_again_after_a_failed_run(
        engine_url: str, agent_home: Path, tmp_path: Path) -> None:
    notebook = tmp_path / "always_fails.ipynb"
    nbformat.write(new_notebook(cells=[
        new_code_cell("reason = 'scheduled'", metadata={"tags": ["parameters"]}),
        new_code_cell("raise RuntimeError(f'fails on purpose: {reason}')")]), notebook)
    added = run_cli(agent_home, "runbook", "schedule", "add", str(notebook), "@every 2s")
    assert added.returncode == 0, added.stderr
    agent = start_agent(engine_url, home=agent_home, extra_args=["--runbooks"])
    try:
        history = RunHistory(agent_home)
        deadline = time.monotonic() + 60
        while len([run for run in history.runs() if run.status != "running"]) < 2:
            assert time.monotonic() < deadline, agent.log()
            time.sleep(0.2)
    finally:
        agent.stop()
    finished = [run for run in history.runs() if run.status != "running"]
    assert all(run.status == "failed" for run in finished)
    assert all("fails on purpose: scheduled" in (run.error or "") for run in finished)
    assert {run.trigger for run in finished} == {"schedule:1"}
    assert finished[0].started > finished[1].started  # two runs, one after the other

"""``ghostpanel surge`` on the session's two real Podman engines, through ``CliRunner``.

Each test has its own GhostPanel home with the engines registered as ``a`` (region
us-east) and ``b`` (eu-west), and its own project ``c<hex>``; teardown destroys the
project and fails if anything labelled with it is left on either engine.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ghostpanel_kernel import connect
from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.engine import NotFound
from ghostpanel_kernel.surge import LABEL_PROJECT, destroy_surge, lock_name
from ghostpanel_kernel.surge._lock import RunIdentity, acquire_lock
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

ENVS = ("--env", "a", "--env", "b")


@pytest.fixture
def project() -> str:
    return f"c{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def cleanup(project: str, podman_engine: PodmanService,
                  podman_engine_b: PodmanService) -> AsyncIterator[None]:
    """Destroy the project after the test; fail if anything of it is left."""
    yield
    envs = [connect(podman_engine.url, name="a"), connect(podman_engine_b.url, name="b")]
    try:
        await destroy_surge(project, envs, volumes=True, stop_timeout=0)
        label = {"label": [f"{LABEL_PROJECT}={project}"]}
        for env in envs:
            assert await env.containers.list(all=True, filters=label) == []
            assert await env.networks.list(filters=label) == []
            assert await env.volumes.list(filters=label) == []
    finally:
        for env in envs:
            await env.aclose()


@pytest.fixture
def ghostpanel(tmp_path: Path, podman_engine: PodmanService, podman_engine_b: PodmanService,
               cleanup: None) -> Callable[..., Result]:
    """Run ``ghostpanel ARGS...`` with a home where ``a`` and ``b`` are registered."""
    home = tmp_path / "home"

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False,
                                  env={"GHOSTPANEL_HOME": str(home),
                                       "GHOSTPANEL_DATABASE_URL": None})

    for name, engine, region in (("a", podman_engine, "us-east"),
                                 ("b", podman_engine_b, "eu-west")):
        added = run("env", "add", name, engine.url, "--label", f"region={region}")
        assert added.exit_code == 0, added.output
    return run


def write_boltfile(path: Path, project: str, body: str) -> Path:
    path.write_text(f'project = "{project}"\n{body}', encoding="utf-8")
    return path


STACK = f"""
[services.web]
image = "{BUSYBOX_REFERENCE}"
command = ["sh", "-c", "echo web up; exec sleep 300"]

[services.worker]
image = "{BUSYBOX_REFERENCE}"
command = ["sh", "-c", "echo worker up; exec sleep 300"]
replicas = 3
regions = ["us-east", "eu-west"]
"""


def test_plan_apply_status_logs_destroy(ghostpanel: Callable[..., Result], project: str,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    write_boltfile(tmp_path / "Boltfile.toml", project, STACK)
    monkeypatch.chdir(tmp_path)  # -f defaults to ./Boltfile.toml

    plan = ghostpanel("surge", "plan", *ENVS)
    assert plan.exit_code == 0, plan.output
    lines = plan.stdout.splitlines()
    assert lines[0] == "a:"
    assert lines[1].split() == ["ACTION", "SERVICE", "CONTAINER", "REASON"]
    assert lines[2].split()[:3] == ["create", "-", f"{project}_default"]
    assert [line.split()[:3] for line in lines[3:6]] == [
        ["create", "web", f"{project}_web"], ["create", "worker", f"{project}_worker_1"],
        ["create", "worker", f"{project}_worker_3"]]
    assert "b:" in lines

    applied = ghostpanel("surge", "apply", *ENVS, "-t", "0")
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines() == ["a: 3 created", "b: 2 created"]
    assert f"started {project}_worker_3" in applied.stderr  # the progress, on stderr

    status = ghostpanel("surge", "status", *ENVS, "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout) == [
        {"environment": "a", "service": "web", "desired": 1, "running": 1,
         "containers": [f"{project}_web"], "health": ""},
        {"environment": "a", "service": "worker", "desired": 2, "running": 2,
         "containers": [f"{project}_worker_1", f"{project}_worker_3"], "health": ""},
        {"environment": "b", "service": "web", "desired": 1, "running": 1,
         "containers": [f"{project}_web"], "health": ""},
        {"environment": "b", "service": "worker", "desired": 1, "running": 1,
         "containers": [f"{project}_worker_2"], "health": ""}]
    table = ghostpanel("surge", "status", *ENVS).stdout.splitlines()
    assert table[0].split() == ["ENVIRONMENT", "SERVICE", "DESIRED", "RUNNING", "HEALTH",
                                "CONTAINERS"]

    again = ghostpanel("surge", "plan", *ENVS, "--json")
    planned = json.loads(again.stdout)
    assert {a["kind"] for env in planned["environments"] for a in env["actions"]} == \
        {"unchanged"}
    assert ghostpanel("surge", "apply", *ENVS).stdout.splitlines() == [
        "a: 3 unchanged", "b: 2 unchanged"]

    logs = ghostpanel("surge", "logs", "-f", str(tmp_path / "Boltfile.toml"), "worker", *ENVS)
    assert logs.exit_code == 0, logs.output
    assert sorted(logs.stdout.splitlines()) == [
        f"a/{project}_worker_1 | worker up", f"a/{project}_worker_3 | worker up",
        f"b/{project}_worker_2 | worker up"]

    scaled = ghostpanel("surge", "scale", "worker", "1", *ENVS, "-t", "0")
    assert scaled.exit_code == 0, scaled.output
    assert scaled.stdout.splitlines() == ["a: 1 created, 2 removed", "b: 1 removed"]

    destroyed = ghostpanel("surge", "destroy", *ENVS, "-t", "0")
    assert destroyed.exit_code == 0, destroyed.output
    assert destroyed.stdout.splitlines() == ["a: 2 removed", "b: 1 removed"]
    gone = json.loads(ghostpanel("surge", "status", *ENVS, "--json").stdout)
    assert [(s["service"], s["running"]) for s in gone] == [
        ("web", 0), ("worker", 0), ("web", 0), ("worker", 0)]


def test_an_invalid_boltfile_prints_its_errors_and_applies_nothing(
        ghostpanel: Callable[..., Result], project: str, tmp_path: Path) -> None:
    path = write_boltfile(tmp_path / "bad.toml", project, f"""
[services.web]
image = "{BUSYBOX_REFERENCE}"
depends_on = ["db"]
""")
    result = ghostpanel("surge", "apply", "-f", str(path), *ENVS)
    assert result.exit_code == 1
    first, last = result.stderr.splitlines()
    assert first.startswith(f"{path}:5:15: error: ") and "`db`, which is not defined" in first
    assert last == f"Error: {path}: 1 error; Bolt refuses this Boltfile and Surge " \
                   "applies nothing"
    listed = ghostpanel("ps", "-a", "--json", *ENVS, "--filter",
                        f"label={LABEL_PROJECT}={project}")
    assert json.loads(listed.stdout) == []
    missing = ghostpanel("surge", "plan", "-f", str(tmp_path / "nope.toml"), *ENVS)
    assert missing.exit_code == 1
    assert "cannot read the Boltfile" in missing.stderr


def test_a_failed_apply_exits_1_with_one_line_per_failed_environment(
        ghostpanel: Callable[..., Result], project: str, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        path = write_boltfile(tmp_path / "Boltfile.toml", project, f"""
[services.api]
image = "{BUSYBOX_REFERENCE}"
command = ["sleep", "300"]

[services.web]
image = "{BUSYBOX_REFERENCE}"
command = ["httpd", "-f", "-p", "8080"]
ports = ["{port}:8080"]
regions = ["eu-west"]
""")
        result = ghostpanel("surge", "apply", "-f", str(path), *ENVS, "-t", "0")
    assert result.exit_code == 1
    summary_a, summary_b = result.stdout.splitlines()
    assert summary_a == "a: rolled-back (planned: 1 created)"
    assert summary_b.startswith("b: failed: [500] ") and "address already in use" in summary_b
    errors = result.stderr.splitlines()[-2:]
    assert errors[0].startswith("Error: environment 'b': ")
    assert "address already in use" in errors[0]
    assert errors[1] == "Error: every change of this run was rolled back"


async def test_a_held_lock_fails_apply_and_destroy_until_broken(
        ghostpanel: Callable[..., Result], project: str, tmp_path: Path,
        podman_engine: PodmanService) -> None:
    path = write_boltfile(tmp_path / "Boltfile.toml", project, f"""
[services.web]
image = "{BUSYBOX_REFERENCE}"
command = ["sleep", "300"]
regions = ["us-east"]
""")
    async with connect(podman_engine.url, name="a") as env:
        # What a run killed on another machine leaves behind.
        left = await acquire_lock(env, project, RunIdentity("apply", pid=7, host="far"),
                                  images=[BUSYBOX_REFERENCE])
        assert left is not None
        for command in ("apply", "destroy"):
            refused = await asyncio.to_thread(ghostpanel, "surge", command, "-f", str(path),
                                              *ENVS, "-t", "0")
            assert refused.exit_code == 1, refused.output
            assert f"Error: environment 'a': project {project!r} is locked on 'a' by " \
                   "apply (pid 7 on far, since " in refused.stderr
            assert "--break-lock" in refused.stderr
        applied = await asyncio.to_thread(ghostpanel, "surge", "apply", "-f", str(path),
                                          *ENVS, "-t", "0", "--break-lock")
        assert applied.exit_code == 0, applied.output
        assert applied.stdout.splitlines() == ["a: 1 created", "b: nothing to do"]
        assert "Warning: a: broke the lock of apply (pid 7 on far, since " in applied.stderr
        with pytest.raises(NotFound):  # gone, and this run gave its own lock back
            await env.containers.get(lock_name(project))

"""Faults lose nothing: Surge under races, interrupts and a dying engine, on real Podman.

- two applies of one project at once: one holds the project's lock (a container on the
  engine), the other fails naming it, and the winner's containers survive; a run whose
  plan went stale never removes a container another run made;
- Ctrl-C (a cancelled task, SIGINT to a real ``ghostpanel surge apply``), SIGTERM and
  SIGHUP while an old container is still stopping: the rollback waits for the stop to
  end and the old container runs again, under its name;
- an engine killed mid-apply: the command says one true thing, "rollback incomplete".

Projects come from ``surge_project`` (destroyed and swept after each test, lock
included); the killed engine is a throwaway one of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostpanel_kernel import connect
from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.engine import Environment, NotFound
from ghostpanel_kernel.surge import (
    ProjectLocked,
    SurgeResult,
    apply_surge,
    desired_state,
    destroy_surge,
    plan_surge,
)
from ghostpanel_kernel.surge._apply import execute_plan
from ghostpanel_kernel.surge._lock import RunIdentity, acquire_lock
from tests.integration import surge_project
from tests.integration.surge_project import BUSYBOX, FAST, SLEEPER, Project
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration

east = surge_project.east
west = surge_project.west
project = surge_project.project

#: A service whose PID 1 ignores SIGTERM: a stop takes the whole stop timeout.
STUBBORN = "[\"sh\", \"-c\", \"trap '' TERM; exec sleep 300\"]"
#: Seconds such a stop takes (then SIGKILL): long enough to interrupt it in the middle.
SLOW_STOP = 4


def stubborn_stack(version: int) -> str:
    return f"""
[services.web]
image = "{BUSYBOX}"
command = {STUBBORN}
env = {{ VERSION = "{version}" }}
regions = ["us-east"]
"""


async def until(check: Callable[[], object], timeout: float = 20.0, *,
                process: subprocess.Popen[str] | None = None) -> None:
    """Poll an async ``check`` until it returns something true (while ``process``, the
    command that should make it so, still runs)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the command ended ({process.returncode}): {out}{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {check}")
        await asyncio.sleep(0.05)


async def state_of(env: Environment, ident: str) -> str:
    try:
        return (await env.containers.get(ident)).state
    except NotFound:
        return "gone"


# -- two runs at once ------------------------------------------------------------------


async def test_two_applies_at_once_one_holds_the_lock_and_the_other_changes_nothing(
        project: Project, podman_engine: PodmanService,
        podman_engine_b: PodmanService) -> None:
    """Each round, two applies of a new stack start together (each with connections of
    its own, as two processes would have): exactly the containers of one of them run,
    and a run that failed says it was the lock."""
    bf = project.boltfile(f"""
[services.db]
image = "{BUSYBOX}"
command = {SLEEPER}

[services.web]
image = "{BUSYBOX}"
command = {SLEEPER}
depends_on = ["db"]
""")
    p = project.name
    locked = 0
    for _ in range(4):
        second = [connect(podman_engine.url, name="east", labels={"region": "us-east"}),
                  connect(podman_engine_b.url, name="west", labels={"region": "eu-west"})]
        try:
            results = await asyncio.gather(
                apply_surge(bf, project.envs, **FAST), apply_surge(bf, second, **FAST))
        finally:
            for env in second:
                await env.aclose()
        assert any(result.ok for result in results), [r.summary() for r in results]
        for result in results:
            if result.ok:
                continue
            locked += 1
            # Nothing was changed by the loser: its plan is empty, its errors the lock.
            assert all(isinstance(error, ProjectLocked) for error in result.errors.values()), \
                result.summary()
            assert not result.rolled_back and result.rollback_errors == ()
            assert "is locked on" in result.summary()[0]
        for env in project.envs:
            running = {name: c.state for name, c in (await project.containers(env)).items()}
            assert running == {f"{p}_db": "running", f"{p}_web": "running"}, env.name
            assert await project.lock(env) is None  # given back
        await destroy_surge(p, project.envs, stop_timeout=0)
    assert locked, "the two applies never met at the lock in 4 rounds"


async def test_a_stale_plan_never_removes_a_container_another_run_made(
        project: Project) -> None:
    """The interleaving of the old race, forced: run B planned "create" before run A
    created the container. B's create then meets A's container (409); B's rollback
    must leave it alone (it once removed it, same name, project and config hash)."""
    web = f"""
[services.web]
image = "{BUSYBOX}"
command = {SLEEPER}
regions = ["us-east"]
"""
    assert (await apply_surge(project.boltfile(web), project.envs, **FAST)).ok
    bf = project.boltfile(web + web.replace("services.web", "services.api"))
    stale = await plan_surge(bf, project.envs)
    winner = await apply_surge(bf, project.envs, **FAST)
    assert winner.ok
    made = await project.east.containers.get(f"{project.name}_api")
    loser = await execute_plan(desired_state(bf), stale, project.envs, **FAST)
    assert not loser.ok and list(loser.errors) == ["east"]
    assert "already in use" in str(loser.errors["east"])
    assert loser.rollback_errors == ()
    await made.reload()  # still there, still running: not the loser's to remove
    assert made.state == "running"


async def test_a_held_lock_refuses_an_apply_and_break_lock_takes_it(
        project: Project) -> None:
    bf = project.boltfile(stubborn_stack(1))
    # A lock left by a run that was killed (here: taken as that run took it).
    left = await acquire_lock(project.east, project.name, RunIdentity("apply", pid=1,
                                                                       host="elsewhere"),
                              images=[BUSYBOX])
    assert left is not None
    refused = await apply_surge(bf, project.envs, **FAST)
    assert not refused.ok and list(refused.errors) == ["east"]
    message = str(refused.errors["east"])
    assert message.startswith(f"project {project.name!r} is locked on 'east' by apply "
                              "(pid 1 on elsewhere, since ")
    assert await project.containers(project.east) == {}
    taken = await apply_surge(bf, project.envs, break_lock=True, **FAST)
    assert taken.ok, taken.summary()
    [broken] = taken.warnings  # said, since whoever held it should hear of it
    assert broken.startswith("east: broke the lock of apply (pid 1 on elsewhere, since ")
    assert await project.lock(project.east) is None
    with pytest.raises(NotFound):
        await left.reload()


# -- Ctrl-C while an old container is stopping --------------------------------------------


async def test_a_cancel_while_the_old_container_stops_restores_it(project: Project) -> None:
    p = project.name
    assert (await apply_surge(project.boltfile(stubborn_stack(1)), project.envs, **FAST)).ok
    old = await project.east.containers.get(f"{p}_web")
    left: list[SurgeResult] = []
    task = asyncio.create_task(apply_surge(project.boltfile(stubborn_stack(2)), project.envs,
                                           stop_timeout=SLOW_STOP, on_cancel=left.append))
    await until(lambda: _is_stopping(project.east, old.id))
    task.cancel()  # what Ctrl-C does to the CLI's apply
    with pytest.raises(asyncio.CancelledError):
        await task
    await old.reload()
    assert (old.name, old.state) == (f"{p}_web", "running")
    assert "VERSION=1" in old.attrs["Config"]["Env"]
    assert set(await project.containers(project.east)) == {f"{p}_web"}
    [result] = left
    assert result.cancelled and result.rolled_back and result.rollback_errors == ()
    assert result.conclusion() == ["every change of this run was rolled back"]
    assert await project.lock(project.east) is None


async def _is_stopping(env: Environment, ident: str) -> bool:
    return await state_of(env, ident) == "stopping"


# -- the real command, interrupted -----------------------------------------------------


@pytest.fixture
def cli_home(tmp_path: Path, podman_engine: PodmanService,
             podman_engine_b: PodmanService) -> Path:
    """A GhostPanel home where the session engines are ``east`` and ``west``."""
    home = tmp_path / "home"
    for name, engine, region in (("east", podman_engine, "us-east"),
                                 ("west", podman_engine_b, "eu-west")):
        add_environment(home, name, engine.url, "--label", f"region={region}")
    return home


def add_environment(home: Path, *args: str) -> None:
    """``ghostpanel env add ARGS`` in this process (a process of its own costs seconds)."""
    added = CliRunner().invoke(cli, ["env", "add", *args], catch_exceptions=False,
                               env={"GHOSTPANEL_HOME": str(home),
                                    "GHOSTPANEL_DATABASE_URL": None})
    assert added.exit_code == 0, added.output


def _cli_environment(home: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "GHOSTPANEL_DATABASE_URL"}
    return {**environment, "GHOSTPANEL_HOME": str(home)}


#: ``ghostpanel`` with Ctrl-C's default behaviour, as in a terminal: a test run in the
#: background of a shell without job control inherits SIGINT ignored, and so would the
#: command (Python and asyncio then leave SIGINT alone).
_AS_IN_A_TERMINAL = ("import runpy, signal, sys; "
                     "signal.signal(signal.SIGINT, signal.default_int_handler); "
                     "sys.argv[0] = 'ghostpanel'; "
                     "runpy.run_module('ghostpanel_kernel.cli', run_name='__main__')")


def start_cli(home: Path, *args: str) -> subprocess.Popen[str]:
    """``ghostpanel ARGS`` as its own process (signals reach it as they would a user's)."""
    return subprocess.Popen([sys.executable, "-c", _AS_IN_A_TERMINAL, *args],
                            env=_cli_environment(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", *args],
                          env=_cli_environment(home), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Commands a test started; killed (by pid) and reaped if the test did not end them."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
async def test_a_signal_to_apply_while_a_container_stops_rolls_back(
        project: Project, cli_home: Path, processes: list[subprocess.Popen[str]],
        stop: signal.Signals) -> None:
    p = project.name
    path = project.tmp_path / "Boltfile.toml"
    assert (await apply_surge(project.boltfile(stubborn_stack(1)), project.envs, **FAST)).ok
    old = await project.east.containers.get(f"{p}_web")
    project.boltfile(stubborn_stack(2))
    apply = start_cli(cli_home, "surge", "apply", "-f", str(path), "--env", "east",
                      "-t", str(SLOW_STOP))
    processes.append(apply)
    await until(lambda: _is_stopping(project.east, old.id), process=apply)
    apply.send_signal(stop)
    out, err = await asyncio.to_thread(apply.communicate, timeout=60)
    assert apply.returncode == 128 + stop, (out, err)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: apply interrupted by {stop.name}",
                      "Error: every change of this run was rolled back"], err
    await old.reload()
    assert (old.name, old.state) == (f"{p}_web", "running")
    assert "VERSION=1" in old.attrs["Config"]["Env"]
    assert set(await project.containers(project.east)) == {f"{p}_web"}
    assert await project.lock(project.east) is None


async def test_a_second_apply_fails_naming_the_run_that_holds_the_lock(
        project: Project, cli_home: Path, processes: list[subprocess.Popen[str]]) -> None:
    """While one real apply waits for a healthcheck, a second fails at once, exit 1,
    naming the first's pid and host, and the first still succeeds."""
    path = project.tmp_path / "Boltfile.toml"
    project.boltfile(f"""
[services.db]
image = "{BUSYBOX}"
command = ["sh", "-c", "sleep 5; touch /ready; exec sleep 300"]
healthcheck = {{ test = ["CMD", "test", "-e", "/ready"], interval = "500ms", disable = false }}
regions = ["us-east"]
""")
    first = start_cli(cli_home, "surge", "apply", "-f", str(path), "--env", "east",
                      "-t", "0")
    processes.append(first)
    await until(lambda: project.lock(project.east), process=first)
    second = await asyncio.to_thread(run_cli, cli_home, "surge", "apply", "-f", str(path),
                                     "--env", "east", "-t", "0")
    assert second.returncode == 1
    assert f"Error: environment 'east': project {project.name!r} is locked on 'east' by " \
           f"apply (pid {first.pid} on " in second.stderr
    assert "rolled back" not in second.stderr
    out, err = await asyncio.to_thread(first.communicate, timeout=60)
    assert first.returncode == 0, err
    assert out.splitlines() == ["east: 1 created"]
    db = await project.east.containers.get(f"{project.name}_db")
    assert db.state == "running"


# -- an engine killed mid-apply ---------------------------------------------------------


async def test_an_engine_killed_mid_apply_says_one_true_thing(
        extra_podman_engine: Callable[..., PodmanService], tmp_path: Path,
        processes: list[subprocess.Popen[str]]) -> None:
    engine = extra_podman_engine()
    home = tmp_path / "home"
    add_environment(home, "doomed", engine.url)
    path = tmp_path / "Boltfile.toml"
    path.write_text(f"""project = "killed"

[services.db]
image = "{BUSYBOX}"
command = {SLEEPER}
healthcheck = {{ test = ["CMD", "false"], interval = "1s", disable = false }}
""", encoding="utf-8")
    apply = start_cli(home, "surge", "apply", "-f", str(path), "--env", "doomed", "-t", "0",
                      "--health-timeout", "60")
    processes.append(apply)
    async with connect(engine.url, name="doomed") as env:

        async def db_runs() -> bool:
            return await state_of(env, "killed_db") == "running"

        await until(db_runs, process=apply)  # created and started: now waiting for it to be healthy
    engine.kill()
    out, err = await asyncio.to_thread(apply.communicate, timeout=60)
    assert apply.returncode == 1, (out, err)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert errors[0].startswith("Error: environment 'doomed': ")
    assert errors[1:], err
    assert all(line.startswith("Error: rollback incomplete: doomed: ") for line in errors[1:])
    assert "every change of this run was rolled back" not in err
    assert "Warning: doomed: could not release the lock killed.surge-lock" in err
    assert out.startswith("doomed: failed: ")

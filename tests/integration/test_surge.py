"""Surge on two real Podman engines standing for two regions: ``east`` (us-east) and
``west`` (eu-west).

Each test deploys its own project ``t<hex>`` (``tests/integration/surge_project.py``);
teardown destroys it and then sweeps both engines for anything still labelled with it
(or named after it, or its lock) and fails if it finds something. The two engines share
this machine, so Surge runs them in turn (see ``ghostpanel_kernel.surge._hosts``) and a
host port is taken for both at once.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime
from pathlib import Path

import pytest

from ghostpanel_kernel.engine import Container
from ghostpanel_kernel.surge import (
    LABEL_CONFIG_HASH,
    LABEL_PROJECT,
    LABEL_SERVICE,
    SurgeError,
    SurgeLogLine,
    SurgeProgress,
    apply_surge,
    destroy_surge,
    plan_surge,
    scale_surge,
    surge_logs,
    surge_status,
)
from ghostpanel_kernel.surge._logs import timestamp_key
from tests.integration import surge_project
from tests.integration.surge_project import BUSYBOX, FAST, SLEEPER, Project, free_port
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration

# The session engines as two regions, and each test's own project (see surge_project).
east = surge_project.east
west = surge_project.west
project = surge_project.project


# -- apply, re-apply, edit -----------------------------------------------------------

STACK = f"""
[services.db]
image = "{BUSYBOX}"
command = {SLEEPER}
env = {{ ROLE = "db" }}

[services.web]
image = "{BUSYBOX}"
command = ["httpd", "-f", "-p", "8080"]
depends_on = ["db"]
env = {{ GREETING = "hello" }}
labels = {{ team = "frontend" }}
volumes = ["data:/data", "./site:/site:ro"]
"""


async def test_apply_reapply_and_edit_recreate_only_what_changed(project: Project) -> None:
    (project.tmp_path / "site").mkdir()
    (project.tmp_path / "site" / "index.html").write_text("hi\n")
    bf = project.boltfile(STACK)
    events: list[SurgeProgress] = []
    first = await apply_surge(bf, project.envs, progress=events.append, **FAST)
    assert first.ok, first.summary()
    assert first.summary() == ["east: 2 created", "west: 2 created"]
    assert events[-1].step == events[-1].total == len(events)
    ids = await project.ids()
    p = project.name
    assert set(ids) == {(env, f"{p}_{s}") for env in ("east", "west") for s in ("db", "web")}
    for env in project.envs:
        web = await env.containers.get(f"{p}_web")
        assert web.state == "running"
        assert web.labels[LABEL_PROJECT] == p and web.labels[LABEL_SERVICE] == "web"
        assert web.labels["team"] == "frontend"
        assert len(web.labels[LABEL_CONFIG_HASH]) == 64
        networks = web.attrs["NetworkSettings"]["Networks"]
        assert list(networks) == [f"{p}_default"]
        assert "web" in networks[f"{p}_default"]["Aliases"]
        binds = web.attrs["HostConfig"]["Binds"]
        assert any(bind.startswith(f"{p}_data:/data") for bind in binds), binds
        assert any(bind.startswith(f"{project.tmp_path / 'site'}:/site:ro") for bind in binds)
        assert (await web.read_file("/site/index.html")) == b"hi\n"
        assert (await env.volumes.get(f"{p}_data")).labels[LABEL_PROJECT] == p

    # Apply again: the plan is all unchanged and no container is recreated.
    again = await plan_surge(bf, project.envs)
    kinds = {(p_.environment, a.kind) for p_ in again.environments for a in p_.actions}
    assert kinds == {("east", "unchanged"), ("west", "unchanged")}
    second = await apply_surge(bf, project.envs, **FAST)
    assert second.ok and second.summary() == ["east: 2 unchanged", "west: 2 unchanged"]
    assert await project.ids() == ids

    # Edit one service's env: only that service is recreated, on both environments.
    bf.set_service_key("web", "env", {"GREETING": "bonjour"})
    bf.save()
    edited = await plan_surge(bf, project.envs)
    assert [(a.kind, a.container) for a in edited.for_environment("east").actions] == [
        ("unchanged", f"{p}_db"), ("recreate", f"{p}_web")]
    assert "configuration changed" in edited.for_environment("east").actions[1].reason
    third = await apply_surge(bf, project.envs, **FAST)
    assert third.ok, third.summary()
    after = await project.ids()
    assert set(after) == set(ids)  # no -surge-old- container is left
    for env in ("east", "west"):
        assert after[(env, f"{p}_db")] == ids[(env, f"{p}_db")]
        assert after[(env, f"{p}_web")] != ids[(env, f"{p}_web")]
    web = await project.west.containers.get(f"{p}_web")
    assert "GREETING=bonjour" in web.attrs["Config"]["Env"]
    assert web.state == "running"


# -- regions, scale, status ----------------------------------------------------------


async def test_regions_spread_replicas_and_scale(project: Project) -> None:
    p = project.name
    bf = project.boltfile(f"""
[services.worker]
image = "{BUSYBOX}"
command = {SLEEPER}
replicas = 3
regions = ["us-east", "eu-west"]
""")
    result = await apply_surge(bf, project.envs, **FAST)
    assert result.ok, result.summary()
    assert set(await project.containers(project.east)) == {f"{p}_worker_1", f"{p}_worker_3"}
    assert set(await project.containers(project.west)) == {f"{p}_worker_2"}
    status = await surge_status(bf, project.envs)
    assert [(s.environment, s.desired, s.running, s.containers) for s in status.services] == [
        ("east", 2, 2, (f"{p}_worker_1", f"{p}_worker_3")),
        ("west", 1, 1, (f"{p}_worker_2",))]

    up = await scale_surge(bf, project.envs, service="worker", replicas=4, **FAST)
    assert up.ok, up.summary()
    assert set(await project.containers(project.west)) == {f"{p}_worker_2", f"{p}_worker_4"}
    down = await scale_surge(bf, project.envs, service="worker", replicas=1, **FAST)
    assert down.ok, down.summary()
    assert set(await project.containers(project.east)) == {f"{p}_worker"}
    assert await project.containers(project.west) == {}

    # Only regions that exist: a service for a region nobody has is refused, untouched.
    nowhere = project.boltfile(f"""
[services.worker]
image = "{BUSYBOX}"
command = {SLEEPER}
regions = ["ap-south"]
""")
    with pytest.raises(SurgeError, match="no selected environment"):
        await apply_surge(nowhere, project.envs, **FAST)
    assert set(await project.containers(project.east)) == {f"{p}_worker"}


async def test_status_reports_health_and_stopped_replicas(project: Project) -> None:
    p = project.name
    bf = project.boltfile(f"""
[services.db]
image = "{BUSYBOX}"
command = ["sh", "-c", "touch /tmp/ready; exec sleep 300"]
regions = ["us-east"]
healthcheck = {{ test = ["CMD-SHELL", "test -f /tmp/ready"], interval = "30s", disable = false }}

[services.worker]
image = "{BUSYBOX}"
command = {SLEEPER}
replicas = 2
""")
    result = await apply_surge(bf, project.envs, **FAST)
    assert result.ok, result.summary()
    status = await surge_status(bf, project.envs)
    db = status.service("east", "db")
    assert (db.desired, db.running, db.health) == (1, 1, "healthy")
    assert status.service("west", "worker").containers == (f"{p}_worker_1", f"{p}_worker_2")
    with pytest.raises(KeyError):
        status.service("west", "db")  # placed in us-east only, nothing runs in the west

    await (await project.west.containers.get(f"{p}_worker_2")).stop(timeout=0)
    await (await project.east.containers.get(f"{p}_db")).exec(["rm", "/tmp/ready"])
    status = await surge_status(bf, project.envs)
    worker = status.service("west", "worker")
    assert (worker.desired, worker.running, worker.converged) == (2, 1, False)
    assert status.service("east", "db").health == "unhealthy"
    # Apply brings the stopped replica back without recreating it.
    before = await project.ids()
    plan = await plan_surge(bf, project.envs)
    assert [a.kind for a in plan.for_environment("west").actions] == ["unchanged", "start"]
    assert (await apply_surge(bf, project.envs, **FAST)).ok
    assert await project.ids() == before
    assert (await surge_status(bf, project.envs, check_health=False)).service(
        "west", "worker").running == 2


# -- order and health ----------------------------------------------------------------


def _started_at(container: Container) -> datetime:
    return datetime.fromisoformat(container.attrs["State"]["StartedAt"][:26].rstrip("Z"))


async def test_depends_on_waits_for_a_healthy_dependency(project: Project) -> None:
    p = project.name
    bf = project.boltfile(f"""
[services.web]
image = "{BUSYBOX}"
command = {SLEEPER}
depends_on = ["db"]
regions = ["us-east"]

[services.db]
image = "{BUSYBOX}"
command = ["sh", "-c", "sleep 1.5; touch /tmp/ready; exec sleep 300"]
regions = ["us-east"]
healthcheck = {{ test = ["CMD-SHELL", "test -f /tmp/ready"], interval = "1s", disable = false }}
""")
    messages: list[str] = []
    result = await apply_surge(bf, project.envs, progress=lambda e: messages.append(e.message),
                               **FAST)
    assert result.ok, result.summary()
    assert messages.index(f"{p}_db is healthy") < messages.index(f"started {p}_web")
    db = await project.east.containers.get(f"{p}_db")
    web = await project.east.containers.get(f"{p}_web")
    log = db.attrs["State"]["Health"]["Log"]
    first_pass = min(entry["End"] for entry in log if entry["ExitCode"] == 0)
    passed = datetime.fromisoformat(first_pass[:26].rstrip("Z"))
    assert _started_at(db) < passed <= _started_at(web)
    assert (passed - _started_at(db)).total_seconds() >= 1.4


async def test_a_healthcheck_that_never_passes_rolls_back(project: Project) -> None:
    bf = project.boltfile(f"""
[services.db]
image = "{BUSYBOX}"
command = {SLEEPER}
regions = ["eu-west"]
healthcheck = {{ test = ["CMD", "false"], disable = false }}
""")
    result = await apply_surge(bf, project.envs, stop_timeout=0, health_timeout=1.5)
    assert not result.ok and result.rolled_back
    assert "was not healthy after 1.5 s" in str(result.errors["west"])
    assert await project.ids() == {}


# -- failure and rollback ------------------------------------------------------------


async def test_failure_mid_apply_rolls_back_everywhere(project: Project) -> None:
    p = project.name
    port, taken_port = free_port(), free_port()
    v1 = f"""
[services.api]
image = "{BUSYBOX}"
command = {SLEEPER}
env = {{ VERSION = "1" }}

[services.web]
image = "{BUSYBOX}"
command = ["httpd", "-f", "-p", "8080"]
regions = ["eu-west"]
ports = ["{port}:8080"]
"""
    assert (await apply_surge(project.boltfile(v1), project.envs, **FAST)).ok
    before = await project.ids()
    # v2 changes api everywhere, adds a service everywhere and moves web to a host port
    # that something else holds: east applies first (one host: in turn), then west fails.
    v2 = v1.replace('VERSION = "1"', 'VERSION = "2"').replace(
        f'"{port}:8080"', f'"{taken_port}:8080"') + f"""
[services.extra]
image = "{BUSYBOX}"
command = {SLEEPER}
"""
    messages: list[SurgeProgress] = []
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken_port))
        holder.listen()
        result = await apply_surge(project.boltfile(v2), project.envs,
                                   progress=messages.append, **FAST)
    assert not result.ok and result.rolled_back
    assert list(result.errors) == ["west"]
    assert "address already in use" in str(result.errors["west"])
    assert result.outcomes == {"east": "rolled-back", "west": "failed"}
    assert result.rollback_errors == ()
    assert any(m.environment == "east" and m.message.startswith("undo:") for m in messages)
    # Exactly the containers of before, the same ones, running, with their names back.
    assert await project.ids() == before
    for (env_name, name), _ in before.items():
        env = project.east if env_name == "east" else project.west
        container = await env.containers.get(name)
        assert container.state == "running", name
        if name == f"{p}_api":
            assert "VERSION=1" in container.attrs["Config"]["Env"]
    web = await project.west.containers.get(f"{p}_web")
    assert web.ports == [f"0.0.0.0:{port}->8080/tcp"]


async def test_a_cancelled_apply_is_rolled_back(project: Project) -> None:
    bf = project.boltfile(f"""
[services.db]
image = "{BUSYBOX}"
command = {SLEEPER}
healthcheck = {{ test = ["CMD", "false"], disable = false }}

[services.web]
image = "{BUSYBOX}"
command = {SLEEPER}
depends_on = ["db"]
""")
    started = asyncio.Event()

    def progress(event: SurgeProgress) -> None:
        if event.message.startswith("started"):
            started.set()

    task = asyncio.create_task(apply_surge(bf, project.envs, progress=progress,
                                           stop_timeout=0, health_timeout=30))
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()  # while it waits for db to be healthy (Ctrl-C in the CLI)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await project.ids() == {}
    for env in project.envs:
        assert await env.networks.list(
            filters={"label": [f"{LABEL_PROJECT}={project.name}"]}) == []


async def test_an_invalid_boltfile_applies_nothing(project: Project) -> None:
    bf = project.boltfile(f"""
[services.web]
image = "{BUSYBOX}"
ports = ["8080:80"]

[services.api]
image = "{BUSYBOX}"
ports = ["8080:81"]
depends_on = ["nowhere"]
""")
    with pytest.raises(SurgeError) as caught:
        await apply_surge(bf, project.envs, **FAST)
    assert len(caught.value.diagnostics) == 2
    assert {d.key for d in caught.value.diagnostics} == {"services.api.ports",
                                                          "services.api.depends_on"}
    with pytest.raises(SurgeError, match="uses `build`"):
        await apply_surge(project.boltfile('[services.web]\nbuild = "./app"\n'), project.envs)
    assert await project.ids() == {}
    assert await project.east.networks.list(
        filters={"label": [f"{LABEL_PROJECT}={project.name}"]}) == []


# -- adoption ------------------------------------------------------------------------


async def test_a_stack_started_by_hand_is_adopted_not_duplicated(project: Project) -> None:
    p = project.name
    by_hand = await project.east.containers.create(image=BUSYBOX, name=f"{p}_web",
                                                   command=["sleep", "300"])
    await by_hand.start()
    bf = project.boltfile(f"""
[services.web]
image = "{BUSYBOX}"
command = {SLEEPER}
regions = ["us-east"]
""")
    plan = await plan_surge(bf, project.envs)
    network, action = plan.for_environment("east").actions
    assert (network.kind, network.resource) == ("create", "network")
    assert (action.kind, action.container_id) == ("unchanged", by_hand.id)
    assert "adopted" in action.reason
    assert (await apply_surge(bf, project.envs, **FAST)).ok
    assert await project.ids() == {("east", f"{p}_web"): by_hand.id}
    status = await surge_status(bf, project.envs)
    assert status.service("east", "web").running == 1

    changed = project.boltfile(f"""
[services.web]
image = "{BUSYBOX}"
command = ["sleep", "301"]
regions = ["us-east"]
""")
    [action] = (await plan_surge(changed, project.envs)).for_environment("east").actions
    assert action.kind == "recreate" and action.container_id == by_hand.id
    assert action.kind == "recreate" and "adopted container runs" in action.reason
    assert (await apply_surge(changed, project.envs, **FAST)).ok
    containers = await project.containers(project.east)
    assert list(containers) == [f"{p}_web"]
    assert containers[f"{p}_web"].id != by_hand.id
    assert containers[f"{p}_web"].labels[LABEL_PROJECT] == p


async def test_leftovers_and_what_left_the_boltfile_are_removed(project: Project) -> None:
    p = project.name
    v1 = project.boltfile(f"""
[services.db]
image = "{BUSYBOX}"
command = {SLEEPER}
regions = ["us-east"]

[services.extra]
image = "{BUSYBOX}"
command = {SLEEPER}
regions = ["us-east"]
""")
    assert (await apply_surge(v1, project.envs, **FAST)).ok
    # As if an apply had died right after setting p_db aside.
    db = await project.east.containers.get(f"{p}_db")
    await db.rename(f"{p}_db-surge-old-{db.id[:12]}")
    v2 = project.boltfile(f"""
[services.db]
image = "{BUSYBOX}"
command = {SLEEPER}
regions = ["us-east"]
networks = ["back"]

[networks.back]
driver = "bridge"
""")
    plan = (await plan_surge(v2, project.envs)).for_environment("east")
    assert sorted((a.kind, a.container, a.reason) for a in plan.actions) == [
        ("create", f"{p}_back", "network the services join"),
        ("create", f"{p}_db", "new service"),
        ("remove", f"{p}_db-surge-old-{db.id[:12]}",
         "set aside by an apply that did not finish"),
        ("remove", f"{p}_default", "no service uses this network any more"),
        ("remove", f"{p}_extra", "service `extra` is no longer in the Boltfile")]
    result = await apply_surge(v2, project.envs, **FAST)
    assert result.ok and result.warnings == ()
    assert list(await project.containers(project.east)) == [f"{p}_db"]
    label = {"label": [f"{LABEL_PROJECT}={p}"]}
    assert [n.name for n in await project.east.networks.list(filters=label)] == [f"{p}_back"]


# -- destroy, networks, volumes ------------------------------------------------------


async def test_destroy_removes_containers_networks_and_volumes(project: Project) -> None:
    p = project.name
    bf = project.boltfile(f"""
[services.web]
image = "{BUSYBOX}"
command = {SLEEPER}
networks = ["front", "back"]
volumes = ["cache:/cache"]

[networks.front]
driver = "bridge"

[networks.back]
driver = "bridge"
internal = true
""")
    result = await apply_surge(bf, project.envs, **FAST)
    assert result.ok, result.summary()
    web = await project.west.containers.get(f"{p}_web")
    networks = web.attrs["NetworkSettings"]["Networks"]
    assert sorted(networks) == [f"{p}_back", f"{p}_front"]
    assert "web" in networks[f"{p}_back"]["Aliases"]
    assert (await project.west.networks.get(f"{p}_back")).attrs["Internal"] is True

    kept = await destroy_surge(bf, project.envs, stop_timeout=0)
    assert kept.ok and kept.summary() == ["east: 1 removed", "west: 1 removed"]
    label = {"label": [f"{LABEL_PROJECT}={p}"]}
    for env in project.envs:
        assert await project.containers(env) == {}
        assert await env.networks.list(filters=label) == []
        assert [v.name for v in await env.volumes.list(filters=label)] == [f"{p}_cache"]
    gone = await destroy_surge(bf, project.envs, volumes=True, stop_timeout=0)
    assert gone.ok
    for env in project.envs:
        assert await env.volumes.list(filters=label) == []


# -- pull ----------------------------------------------------------------------------


async def test_pull_recreates_only_the_services_whose_image_changed(
        project: Project, podman_engine: PodmanService, busybox_archive: Path) -> None:
    p = project.name
    reference = f"localhost/{p}:latest"
    podman_engine.import_image(busybox_archive, reference, changes=("ENV V=1",))
    try:
        bf = project.boltfile(f"""
[services.app]
image = "{reference}"
command = {SLEEPER}
regions = ["us-east"]

[services.side]
image = "{BUSYBOX}"
command = {SLEEPER}
regions = ["us-east"]
""")
        assert (await apply_surge(bf, project.envs, **FAST)).ok
        before = await project.ids()
        podman_engine.import_image(busybox_archive, reference, changes=("ENV V=2",))
        assert not (await plan_surge(bf, project.envs)).changes  # same config
        plan = await plan_surge(bf, project.envs, pull=True)
        assert [(a.kind, a.service) for a in plan.for_environment("east").actions] == [
            ("recreate", "app"), ("unchanged", "side")]
        assert "image changed" in plan.for_environment("east").actions[0].reason
        assert (await apply_surge(bf, project.envs, pull=True, **FAST)).ok
        after = await project.ids()
        assert after[("east", f"{p}_side")] == before[("east", f"{p}_side")]
        assert after[("east", f"{p}_app")] != before[("east", f"{p}_app")]
        app = await project.east.containers.get(f"{p}_app")
        assert "V=2" in app.attrs["Config"]["Env"]
    finally:
        await destroy_surge(project.name, project.envs, stop_timeout=0)
        podman_engine.podman("image", "rm", "--force", reference, check=False)
        podman_engine.podman("image", "prune", "--force", check=False)


# -- logs ----------------------------------------------------------------------------


async def test_logs_are_merged_across_environments(project: Project) -> None:
    p = project.name
    # 1.5 s between the two lines, far more than the ~0.3 s between the two starts (the
    # engines share a host and start in turn): the lines of the two interleave in time.
    bf = project.boltfile(f"""
[services.job]
image = "{BUSYBOX}"
command = ["sh", "-c", "echo one from $REGION; sleep 1.5; echo two from $REGION; sleep 300"]
env = {{ REGION = "any" }}
""")
    assert (await apply_surge(bf, project.envs, **FAST)).ok
    entries: list[SurgeLogLine] = []
    for _ in range(60):
        entries = [entry async for entry in surge_logs(bf, project.envs)]
        if len(entries) == 4:
            break
        await asyncio.sleep(0.1)
    assert sorted(f"{e.environment} {e.line.text}" for e in entries) == sorted(
        f"{env} {n} from any" for env in ("east", "west") for n in ("one", "two"))
    stamps = [timestamp_key(e.line.timestamp) for e in entries]
    assert stamps == sorted(stamps)
    assert [e.line.text.split()[0] for e in entries] == ["one", "one", "two", "two"]
    assert {e.environment for e in entries[:2]} == {"east", "west"}

    followed: list[str] = []
    stream = surge_logs(bf, project.envs, service="job", follow=True, tail=1)
    async for entry in stream:
        followed.append(str(entry))
        if len(followed) == 2:
            break
    await stream.aclose()
    assert followed == [f"{p}_job | two from any"] * 2

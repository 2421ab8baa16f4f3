"""Surge through a real agent's API on a real Podman engine: plan, apply (NDJSON), status,
the per-container route, destroy; a held lock; a client that disconnects mid-apply.

The agent serves the session's engine, which is also ``east`` of the Surge fixtures
(``tests/integration/surge_project.py``), so the project is checked, cleaned and swept
there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.engine import Container, NotFound
from ghostpanel_kernel.surge import apply_surge
from ghostpanel_kernel.surge._lock import RunIdentity, acquire_lock, release_lock
from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401
from tests.integration import surge_project
from tests.integration.surge_project import BUSYBOX, SLEEPER, Project

pytestmark = pytest.mark.integration

east = surge_project.east
west = surge_project.west
project = surge_project.project

TOML = {"Content-Type": "application/toml"}

#: A service whose PID 1 ignores SIGTERM: a stop takes the whole stop timeout.
STUBBORN = "[\"sh\", \"-c\", \"trap '' TERM; exec sleep 300\"]"
SLOW_STOP = 4


def _stack(replicas: int = 1) -> str:
    return f'\n[services.web]\nimage = "{BUSYBOX}"\ncommand = {SLEEPER}\n' \
           f"replicas = {replicas}\n"


def _stubborn(version: int) -> str:
    return f'\n[services.web]\nimage = "{BUSYBOX}"\ncommand = {STUBBORN}\n' \
           f'env = {{ VERSION = "{version}" }}\n'


@pytest.fixture
async def api(agent: RunningAgent) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=agent.url, verify=agent.ssl_context(),
                                 headers=agent.headers, timeout=60) as client:
        yield client


async def _streamed(client: httpx.AsyncClient, path: str, **kwargs: Any
                    ) -> tuple[httpx.Response, list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []
    async with client.stream("POST", path, **kwargs) as answer:
        async for line in answer.aiter_lines():
            if line:
                lines.append(json.loads(line))
    return answer, lines


async def test_plan_apply_status_scale_destroy(agent: RunningAgent, api: httpx.AsyncClient,
                                               project: Project) -> None:
    p = project.name
    text = project.boltfile(_stack()).dumps()
    plan = await api.post("/api/v1/surge/plan", content=text, headers=TOML)
    assert plan.status_code == 200, plan.text
    actions = plan.json()["environments"][0]["actions"]
    assert ("create", f"{p}_web") in [(a["kind"], a["container"]) for a in actions]

    answer, lines = await _streamed(api, "/api/v1/surge/apply", content=text, headers=TOML,
                                    params={"stop_timeout": "0"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-ndjson"
    assert [line["type"] for line in lines[:-1]] == ["progress"] * (len(lines) - 1)
    assert len(lines) > 2, (lines, agent.log())
    assert lines[-1]["type"] == "result" and lines[-1]["ok"] is True, lines[-1]
    assert f"started {p}_web" in [line.get("message") for line in lines]
    assert (await project.east.containers.get(f"{p}_web")).state == "running"

    # deploy = apply with pull on: the same file again changes nothing.
    answer, lines = await _streamed(api, "/api/v1/surge/deploy", json={"boltfile": text})
    assert answer.status_code == 200 and lines[-1]["ok"] is True, lines[-1]
    assert lines[-1]["outcomes"] == {"agent": "unchanged"}, lines[-1]

    status = await api.get("/api/v1/surge/status", params={"path": str(project.last.path)})
    assert status.status_code == 200, status.text
    [service] = status.json()["services"]
    assert (service["service"], service["desired"], service["running"]) == ("web", 1, 1)

    # The seed's per-container route: scale the container's service to 2.
    answer, lines = await _streamed(api, f"/api/v1/containers/{p}_web/surge",
                                    json={"path": str(project.last.path), "replicas": 2,
                                          "stop_timeout": 0})
    assert answer.status_code == 200 and lines[-1]["ok"] is True, lines[-1]
    assert set(await project.containers(project.east)) == {f"{p}_web_1", f"{p}_web_2"}

    answer, lines = await _streamed(api, "/api/v1/surge/destroy",
                                    json={"boltfile": text, "stop_timeout": 0})
    assert answer.status_code == 200 and lines[-1]["ok"] is True, lines[-1]
    assert await project.containers(project.east) == {}


async def test_deploy_pulls_and_a_held_lock_is_a_409(api: httpx.AsyncClient,
                                                     project: Project) -> None:
    text = project.boltfile(_stack()).dumps()
    lock = await acquire_lock(project.east, project.name, RunIdentity("apply"),
                              images=[BUSYBOX])
    try:
        locked = await api.post("/api/v1/surge/deploy", content=text, headers=TOML,
                                params={"pull": "false"})
        assert locked.status_code == 409, locked.text
        problem = locked.json()
        assert locked.headers["content-type"] == "application/problem+json"
        assert problem["project"] == project.name and "pid" in problem["holder"]
    finally:
        await release_lock(lock)
    assert await project.containers(project.east) == {}  # nothing was changed


async def test_a_client_that_disconnects_mid_apply_gets_it_rolled_back(
        agent: RunningAgent, api: httpx.AsyncClient, project: Project) -> None:
    p = project.name
    old, request = await _apply_while_old_stops(api, project)
    request.cancel()  # the client goes away while the old container stops
    with pytest.raises(asyncio.CancelledError):
        await request

    deadline = time.monotonic() + 30
    while "apply of project" not in agent.log() or "cancelled:" not in agent.log():
        assert time.monotonic() < deadline, agent.log()
        await asyncio.sleep(0.1)
    await old.reload()
    assert (old.name, old.state) == (f"{p}_web", "running")
    assert "VERSION=1" in old.attrs["Config"]["Env"]
    assert set(await project.containers(project.east)) == {f"{p}_web"}
    assert await project.lock(project.east) is None
    assert "every change of this run was rolled back" in agent.log()


async def _apply_while_old_stops(api: httpx.AsyncClient, project: Project
                                 ) -> tuple[Container, asyncio.Task[httpx.Response]]:
    """Version 1 of ``web`` applied straight on the engine, then version 2 applied
    through the agent, returned once the old container is stopping (it takes
    ``SLOW_STOP`` seconds to): the apply is then under way, with a change to undo.

    Returns
    -------
    tuple
        The old container and the request, still running.
    """
    assert (await apply_surge(project.boltfile(_stubborn(1)), [project.east],
                              stop_timeout=0)).ok
    old = await project.east.containers.get(f"{project.name}_web")
    second = project.boltfile(_stubborn(2)).dumps()
    request = asyncio.create_task(api.post("/api/v1/surge/apply", content=second,
                                           headers=TOML,
                                           params={"stop_timeout": str(SLOW_STOP)}))
    deadline = time.monotonic() + 20
    while (await _state(project, old.id)) != "stopping":
        assert time.monotonic() < deadline and not request.done()
        await asyncio.sleep(0.1)
    return old, request


async def _state(project: Project, ident: str) -> str:
    try:
        container = await project.east.containers.get(ident)
    except NotFound:
        return "gone"
    return str(container.attrs["State"]["Status"])


async def test_an_agent_stopped_mid_apply_rolls_it_back_before_it_exits(
        agent: RunningAgent, api: httpx.AsyncClient, project: Project) -> None:
    p = project.name
    old, request = await _apply_while_old_stops(api, project)
    await asyncio.to_thread(agent.stop)  # SIGTERM; exit status 0 asserted
    with contextlib.suppress(httpx.HTTPError):
        await request
    await old.reload()
    assert (old.name, old.state) == (f"{p}_web", "running"), agent.log()
    assert "VERSION=1" in old.attrs["Config"]["Env"]
    assert set(await project.containers(project.east)) == {f"{p}_web"}
    assert await project.lock(project.east) is None
    assert "every change of this run was rolled back" in agent.log()

"""The gateway's ``/api/v1`` side on a real Podman engine and a real agent.

A real gateway process (``tests/gateway_process.py``: the gateway's own code, with a
token table standing in for the hub) in front of the session's engine as environment
``prod``, and, for the forwarding cases, of a real ``ghostpanel agent`` registered as
``remote`` with its token and pinned certificate. Roles and teams decide what each
caller lists, stops, runs and hears about, and every refusal and change lands in the
audit log. What the engine did is read from the engine itself, not from the gateway.

Callers (``tests/gateway_process.TOKENS``): ``view-blue`` is vic, a viewer of team
blue; ``op-blue`` is olga, an operator of team blue; ``op-red`` is rick, an operator
of team red; ``scoped`` is sam of team blue, holding only the hub scope
``custom:ghostpanel:prod:read``; ``admin`` is ada, a hub admin.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from ghostpanel_kernel.engine import Container, Environment, NotFound
from ghostpanel_kernel.gateway._ownership import OWNER_LABEL, TEAMS_LABEL
from tests.agent_process import (  # noqa: F401 (fixtures)
    RunningAgent,
    agent_factory_fixture,
    agent_fixture,
    run_cli,
)
from tests.gateway_process import (  # noqa: F401 (fixtures)
    RunningGateway,
    gateway_factory_fixture,
    gateway_fixture,
)
from tests.integration.conftest import BUSYBOX, unique

pytestmark = pytest.mark.integration

MakeContainer = Callable[..., Awaitable[Container]]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def _running(make_container: MakeContainer, owner: str, team: str) -> Container:
    container = await make_container(labels={OWNER_LABEL: owner, TEAMS_LABEL: team})
    await container.start()
    return container


async def _state(env: Environment, ident: str) -> str:
    return (await env.containers.get(ident)).state


def _ws_url(gateway: RunningGateway, path: str) -> str:
    return gateway.url.replace("http://", "ws://", 1) + path.lstrip("/")


def _with_agent(gateway: RunningGateway, agent: RunningAgent) -> str:
    """Register ``agent`` as ``remote`` (token, pinned certificate) with ``prod``'s
    roles; return its name once the gateway serves it."""
    assert agent.fingerprint is not None
    added = run_cli(gateway.home, "env", "add", "remote", agent.url, "--token",
                    agent.token, "--fingerprint", agent.fingerprint)
    assert added.returncode == 0, added.stderr
    for subject, role in (("olga", "operator"), ("vic", "viewer"), ("@red", "operator")):
        gateway.grant(subject, role, "remote")
    deadline = time.monotonic() + 10
    with gateway.client("view-blue") as http:
        # The gateway re-reads the registry every 2 s.
        while "remote" not in http.get("api/v1/whoami").json()["permissions"]:
            assert time.monotonic() < deadline, "the gateway never saw `remote`"
            time.sleep(0.2)
    return "remote"


async def test_roles_and_teams_on_a_local_environment(
        gateway: RunningGateway, env: Environment, make_container: MakeContainer) -> None:
    blue = await _running(make_container, "olga", "blue")
    red = await _running(make_container, "rick", "red")
    with gateway.client("view-blue") as vic, gateway.client("op-blue") as olga, \
            gateway.client("scoped") as sam, gateway.client("admin") as ada:
        # A viewer lists her team's containers, and no other team's.
        listed = vic.get("env/prod/api/v1/containers")
        assert listed.status_code == 200, listed.text
        names = {c["name"] for c in listed.json()}
        assert blue.name in names and red.name not in names
        # So does a caller whose only right is the hub scope custom:ghostpanel:prod:read.
        assert {c["name"] for c in sam.get("env/prod/api/v1/containers").json()} == names

        # ...but she cannot stop one: 403, recorded, and the container runs on.
        refused = vic.post(f"env/prod/api/v1/containers/{blue.name}/stop?timeout=0")
        assert refused.status_code == 403
        assert refused.json()["permission"] == "lifecycle"
        assert "your role on prod does not allow lifecycle" in refused.json()["detail"]
        assert await _state(env, blue.id) == "running"

        # An operator stops her team's container, and not another team's.
        other = olga.post(f"env/prod/api/v1/containers/{red.name}/stop?timeout=0")
        assert other.status_code == 403
        assert await _state(env, red.id) == "running"
        stopped = olga.post(f"env/prod/api/v1/containers/{blue.id[:12]}/stop?timeout=0")
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["id"] == blue.id
        assert await _state(env, blue.id) == "exited"

        # The audit log: for admins only, with every refusal and the stop in it.
        assert olga.get("api/v1/audit").status_code == 403
        log = ada.get("api/v1/audit?environment=prod").json()
        assert [(e["user"], e["action"], e["result"], e["status"]) for e in log] == [
            ("vic", "container.stop", "denied", 403),
            ("olga", "container.stop", "denied", 403),
            ("olga", "container.stop", "allowed", 200)]
        assert log[-1]["target"] == blue.id
        assert log[0]["request_id"] == refused.headers["x-request-id"]
        everything = ada.get("api/v1/audit").json()
        assert (everything[-1]["user"], everything[-1]["action"]) == ("olga", "audit.read")
        assert [e["user"] for e in ada.get("api/v1/audit?user=vic").json()] == ["vic"]


def test_whoami_and_environments_answer_per_role(gateway: RunningGateway) -> None:
    with gateway.client("view-blue") as vic, gateway.client("op-red") as rick, \
            gateway.client(None) as nobody:
        me = vic.get("api/v1/whoami").json()
        assert (me["name"], me["teams"], me["admin"]) == ("vic", ["blue"], False)
        assert me["permissions"] == {"prod": ["read"]}
        theirs = rick.get("api/v1/environments").json()
        assert [(e["name"], e["kind"]) for e in theirs] == [("prod", "local")]
        assert theirs[0]["permissions"] == ["read", "logs", "lifecycle", "exec", "files"]
        assert nobody.get("api/v1/whoami").status_code == 401
        document = vic.get("api/v1/openapi.json").json()
        assert "/env/{name}/api/v1/containers/{id}/stop" in document["paths"]
        # The environment's own API answers as an agent's would.
        health = vic.get("env/prod/api/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"


async def _events_seen(gateway: RunningGateway, environment: str, token: str,
                       make: Callable[[], Awaitable[tuple[Container, Container]]]
                       ) -> tuple[list[dict[str, Any]], Container, Container]:
    """Subscribe with ``token``, make a red then a blue container; every message up to
    the blue one's start."""
    url = _ws_url(gateway, f"env/{environment}/api/v1/events?type=container")
    seen: list[dict[str, Any]] = []
    async with ws_connect(url, additional_headers=_auth(token), proxy=None) as connection:
        first = json.loads(await connection.recv())
        assert first["type"] == "agent.subscribed"
        red, blue = await make()
        async with asyncio.timeout(20):
            while not seen or not (seen[-1]["data"].get("id") == blue.id
                                   and seen[-1]["type"] == "container.started"):
                seen.append(json.loads(await connection.recv()))
    return seen, red, blue


async def test_the_events_websocket_shows_only_the_callers_team(
        gateway: RunningGateway, make_container: MakeContainer) -> None:
    async def make() -> tuple[Container, Container]:
        return (await _running(make_container, "rick", "red"),
                await _running(make_container, "olga", "blue"))

    seen, red, blue = await _events_seen(gateway, "prod", "view-blue", make)
    ids = {m["data"].get("id") for m in seen}
    assert blue.id in ids and red.id not in ids
    assert {m["data"]["environment"] for m in seen} == {"prod"}


async def test_an_agent_environment_is_forwarded_and_held_to_the_same_rules(
        gateway: RunningGateway, agent: RunningAgent, env: Environment,
        make_container: MakeContainer) -> None:
    blue = await _running(make_container, "olga", "blue")
    red = await _running(make_container, "rick", "red")
    remote = _with_agent(gateway, agent)
    with gateway.client("view-blue") as vic, gateway.client("op-blue") as olga:
        listed = vic.get(f"env/{remote}/api/v1/containers")
        assert listed.status_code == 200, listed.text
        names = {c["name"] for c in listed.json()}
        assert blue.name in names and red.name not in names
        info = vic.get(f"env/{remote}/api/v1/info").json()
        assert info["agent"]["url"] == agent.url  # the agent answered, not the gateway
        kinds = {e["name"]: e["kind"] for e in vic.get("api/v1/environments").json()}
        assert kinds == {"prod": "local", "remote": "agent"}
        refused = olga.post(f"env/{remote}/api/v1/containers/{red.name}/stop?timeout=0")
        assert refused.status_code == 403
        assert await _state(env, red.id) == "running"
        stopped = olga.post(f"env/{remote}/api/v1/containers/{blue.name}/stop?timeout=0")
        assert stopped.status_code == 200, stopped.text
        assert await _state(env, blue.id) == "exited"

    async def make() -> tuple[Container, Container]:
        return (await _running(make_container, "rick", "red"),
                await _running(make_container, "olga", "blue"))

    seen, red2, blue2 = await _events_seen(gateway, remote, "op-blue", make)
    ids = {m["data"].get("id") for m in seen}
    assert blue2.id in ids and red2.id not in ids


async def _exec_output(gateway: RunningGateway, environment: str, token: str,
                       container: Container) -> tuple[bytes, int | None]:
    """Run ``echo through-gateway`` in ``container`` through the exec WebSocket."""
    url = _ws_url(gateway, f"env/{environment}/api/v1/containers/{container.name}/exec"
                           "?cmd=echo&cmd=through-gateway&tty=0")
    output, code = b"", None
    async with ws_connect(url, additional_headers=_auth(token), proxy=None) as connection, \
            asyncio.timeout(20):
        async for message in connection:
            if isinstance(message, bytes):
                output += message[1:]
            elif json.loads(message).get("type") == "exit":
                code = json.loads(message)["code"]
    return output, code


@pytest.mark.parametrize("where", ["prod", "remote"])
async def test_exec_through_the_gateway_on_own_team_only(
        where: str, gateway: RunningGateway, agent: RunningAgent,
        make_container: MakeContainer) -> None:
    blue = await _running(make_container, "olga", "blue")
    red = await _running(make_container, "rick", "red")
    if where == "remote":
        _with_agent(gateway, agent)
    output, code = await _exec_output(gateway, where, "op-blue", blue)
    assert (output, code) == (b"through-gateway\n", 0)
    for token, container in (("op-blue", red), ("view-blue", blue)):
        with pytest.raises(InvalidStatus) as refused:
            await _exec_output(gateway, where, token, container)
        assert refused.value.response.status_code == 403
    # The environment's own refusal of a handshake comes back as it was made.
    url = _ws_url(gateway, f"env/{where}/api/v1/containers/{blue.name}/exec"
                           "?cmd=true&rows=0&cols=80")
    with pytest.raises(InvalidStatus) as bad:
        async with ws_connect(url, additional_headers=_auth("op-blue"), proxy=None):
            pass
    assert bad.value.response.status_code == 400
    assert b"rows and cols" in (bad.value.response.body or b"")
    log = gateway.audit(environment=where)
    assert [(e.user, e.action, e.result) for e in log] == [
        ("olga", "container.exec", "allowed"), ("olga", "container.exec", "denied"),
        ("vic", "container.exec", "denied"), ("olga", "container.exec", "failed")]


async def test_a_create_is_owned_by_the_creators_team_and_judged_first(
        gateway: RunningGateway, env: Environment,
        track_container: Callable[[str], None]) -> None:
    name, refused_name = unique(), unique()
    track_container(name)
    track_container(refused_name)
    with gateway.client("dep-red") as rex, gateway.client("op-red") as rick, \
            gateway.client("view-blue") as vic:
        made = rex.post(f"env/prod/api/v1/containers?name={name}",
                        json={"Image": BUSYBOX, "Cmd": ["sleep", "300"]})
        assert made.status_code == 201, made.text
        container = await env.containers.get(name)
        assert container.labels[OWNER_LABEL] == "rex"
        assert container.labels[TEAMS_LABEL] == "red"
        # Its team acts on it; another team does not even see it.
        assert rick.post(f"env/prod/api/v1/containers/{name}/start").status_code == 200
        assert name not in {c["name"] for c in vic.get("env/prod/api/v1/containers").json()}
        assert vic.get(f"env/prod/api/v1/containers/{name}").status_code == 403
        # A privileged one is refused before the engine hears of it.
        refused = rex.post(f"env/prod/api/v1/containers?name={refused_name}",
                           json={"Image": BUSYBOX, "HostConfig": {"Privileged": True}})
        assert refused.status_code == 403, refused.text
        with pytest.raises(NotFound):
            await env.containers.get(refused_name)
    actions = [(e.user, e.action, e.result) for e in gateway.audit(environment="prod")]
    assert actions == [("rex", "container.create", "allowed"),
                       ("rick", "container.start", "allowed"),
                       ("vic", "container.read", "denied"),
                       ("rex", "container.create", "denied")]

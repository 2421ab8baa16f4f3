"""``ws /api/v1/containers/{id}/exec`` on a real agent, over its Podman engine.

Two kinds of client: the kernel's session on an agent environment (``https://`` and
``h3://``, which uses the HTTPS side of the port), and a bare ``websockets`` client that
sees the protocol itself (handshake refusals, the exit message, closing).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from ghostpanel_kernel import connect as connect_env
from ghostpanel_kernel.engine import Conflict, Container, Environment, NotFound
from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401
from tests.integration.exec_helpers import MakeContainer, exec_processes, read_until, running

pytestmark = pytest.mark.integration


@pytest.fixture(params=["https", "h3"])
async def agent_env(request: pytest.FixtureRequest, agent: RunningAgent
                    ) -> AsyncIterator[Environment]:
    """The agent as an environment, registered as an operator would (token, pin)."""
    environment = connect_env(f"{request.param}://127.0.0.1:{agent.port}", name="remote",
                              token=agent.token, fingerprint=agent.fingerprint)
    try:
        yield environment
    finally:
        await environment.aclose()


def ws_url(agent: RunningAgent, ident: str, query: str = "") -> str:
    return f"wss://127.0.0.1:{agent.port}/api/v1/containers/{ident}/exec" + (
        f"?{query}" if query else "")


def ws_connect(agent: RunningAgent, url: str, *, token: bool = True) -> Any:
    headers = agent.headers if token else {}
    return connect(url, ssl=agent.ssl_context(), additional_headers=headers, proxy=None,
                   server_hostname="127.0.0.1", open_timeout=20)


async def test_shell_through_the_agent(agent_env: Environment,
                                       make_container: MakeContainer) -> None:
    container = await running(make_container)
    remote = await agent_env.containers.get(container.name)
    async with remote.exec_session(["sh"], size=(30, 100)) as shell:
        await shell.send(b"stty size\n")
        await read_until(shell, b"30 100")
        await shell.resize(41, 132)
        await shell.send(b"stty size; echo hi; exit 3\n")
        async with asyncio.timeout(20):
            output = b"".join([chunk async for chunk in shell])
    assert b"41 132" in output
    assert b"hi\r\n" in output
    assert shell.exit_code == 3


async def test_streams_apart_without_tty_through_the_agent(
        agent_env: Environment, make_container: MakeContainer) -> None:
    container = await running(make_container)
    remote = await agent_env.containers.get(container.name)
    async with remote.exec_session(["sh"], tty=False, env={"WHO": "gp"}) as shell:
        await shell.send(b"echo out $WHO; echo err >&2\n")
        await shell.close_stdin()
        pieces = []
        async with asyncio.timeout(20):
            while (piece := await shell.receive_output()) is not None:
                pieces.append(piece)
    assert b"".join(d for s, d in pieces if s == "stdout") == b"out gp\n"
    assert b"".join(d for s, d in pieces if s == "stderr") == b"err\n"
    assert shell.exit_code == 0


async def test_refusals_through_the_kernel(agent_env: Environment,
                                           make_container: MakeContainer) -> None:
    stopped: Container = await make_container()
    remote = await agent_env.containers.get(stopped.name)
    with pytest.raises(Conflict):
        await remote.exec_session(["sh"])
    with pytest.raises(NotFound):
        await Container(agent_env.client, {"Id": "no-such-container"}).exec_session()


async def refused(agent: RunningAgent, url: str, *, token: bool = True) -> Any:
    with pytest.raises(InvalidStatus) as caught:
        async with ws_connect(agent, url, token=token):
            pass
    return caught.value.response


async def test_handshake_refusals_are_problems(agent: RunningAgent,
                                               make_container: MakeContainer) -> None:
    missing = await refused(agent, ws_url(agent, "no-such-container"))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert json.loads(missing.body)["status"] == 404

    stopped: Container = await make_container()
    conflict = await refused(agent, ws_url(agent, stopped.name))
    assert conflict.status_code == 409
    assert "start it first" in json.loads(conflict.body)["detail"]

    container = await running(make_container)
    bad = await refused(agent, ws_url(agent, container.name, "rows=0&cols=80"))
    assert bad.status_code == 400
    assert (await refused(agent, ws_url(agent, container.name), token=False)
            ).status_code == 401


async def receive_until(ws: ClientConnection, wanted: bytes) -> bytes:
    seen = b""
    async with asyncio.timeout(20):
        while wanted not in seen:
            message = await ws.recv()
            if isinstance(message, bytes):
                seen += message
    return seen


async def test_protocol_exit_message(agent: RunningAgent,
                                     make_container: MakeContainer) -> None:
    container = await running(make_container)
    async with ws_connect(agent, ws_url(agent, container.name, "cmd=sh&tty=1")) as ws:
        await ws.send(b"echo hi; exit 3\n")
        texts = []
        async with asyncio.timeout(20):
            async for message in ws:
                if isinstance(message, str):
                    texts.append(json.loads(message))
        assert ws.close_code == 1000
    assert texts == [{"type": "exit", "code": 3}]


async def test_closing_the_websocket_ends_the_process(
        agent: RunningAgent, make_container: MakeContainer) -> None:
    container = await running(make_container)
    async with ws_connect(agent, ws_url(agent, container.name)) as ws:
        await ws.send(b"echo ready; exec sleep 778\n")
        await receive_until(ws, b"ready\r\n")
        await asyncio.sleep(0.3)
        assert "sleep 778" in await exec_processes(container)
    async with asyncio.timeout(10):
        while "sleep 778" in await exec_processes(container):
            await asyncio.sleep(0.1)


async def test_shell_through_an_agent_on_a_unix_socket(agent_factory: Any,
                                                       make_container: MakeContainer) -> None:
    running_agent = agent_factory(listen="unix")
    container = await running(make_container)
    async with connect_env(running_agent.url, name="local-agent",
                           token=running_agent.token) as environment:
        remote = await environment.containers.get(container.name)
        async with remote.exec_session(["sh", "-c", "echo via-unix; exit 5"]) as shell:
            async with asyncio.timeout(20):
                output = b"".join([chunk async for chunk in shell])
    assert b"via-unix" in output
    assert shell.exit_code == 5

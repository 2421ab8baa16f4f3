"""The kernel's interactive exec session against scripted engines.

Ordinary calls (create, resize, inspect) go to a :class:`FakeEngine`; the exec start,
which takes over its connection, goes to a small scripted server on a real unix socket,
where the test decides what the "engine" answers and reads what the session wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.engine import (
    Conflict,
    Container,
    EngineAPIError,
    Environment,
    NotFound,
    _exec_session,
)
from ghostpanel_kernel.engine._exec_session import (
    WebSocketExecSession,
    agent_query,
    check_size,
    exec_config,
)
from tests.unit.fake_engine import WEB_ID, WEB_INSPECT, FakeEngine, frame, json_answer

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class UpgradeServer:
    """Answers the exec start on a unix socket with what ``handler`` does."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.heads: list[bytes] = []
        self.received = bytearray()
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), b"0"))
        await reader.readexactly(length)
        try:
            await self.handler(head, reader, writer)
        finally:
            writer.close()

    async def __aenter__(self) -> UpgradeServer:
        self.server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


UPGRADED = (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")


def engine_routes(state: dict[str, Any]) -> FakeEngine:
    """Create answers exec ``e1``; its inspect says what ``state`` holds."""
    def inspect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"Running": state["running"],
                                         "ExitCode": state["code"], "Pid": 0})

    def create(request: httpx.Request) -> httpx.Response:
        state["config"] = json.loads(request.content)
        return httpx.Response(201, json={"Id": "e1"})

    return FakeEngine(routes={
        ("POST", f"/containers/{WEB_ID}/exec"): create,
        ("GET", "/exec/e1/json"): inspect,
        ("POST", "/exec/e1/resize"): lambda request: httpx.Response(201),
        ("GET", f"/containers/{WEB_ID}/json"): json_answer(WEB_INSPECT),
    })


@contextlib.asynccontextmanager
async def engine_on(tmp_path: Path, handler: Handler, state: dict[str, Any]
                    ) -> AsyncIterator[tuple[Environment, Container, FakeEngine,
                                             UpgradeServer]]:
    engine = engine_routes(state)
    socket = tmp_path / "engine.sock"
    async with UpgradeServer(socket, handler) as server:
        env = Environment(f"unix://{socket}", transport=httpx.MockTransport(engine))
        try:
            yield env, Container(env.client, WEB_INSPECT), engine, server
        finally:
            await env.aclose()


async def test_tty_session_sends_reads_and_reports_the_exit_code(tmp_path: Path) -> None:
    state = {"running": True, "code": None}

    async def echo_then_exit(head: bytes, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        writer.write(UPGRADED)
        typed = await reader.readexactly(5)
        writer.write(b"you typed " + typed)
        state.update(running=False, code=3)
        await writer.drain()

    async with engine_on(tmp_path, echo_then_exit, state) as (_env, web, engine, server):
        async with web.exec_session(["sh"], size=(30, 100)) as shell:
            await shell.send("hello")
            output = b"".join([chunk async for chunk in shell])
        assert output == b"you typed hello"
        assert shell.exit_code == 3
        head = server.heads[0]
        assert head.startswith(b"POST /v1.41/exec/e1/start HTTP/1.1\r\n")
        assert b"Upgrade: tcp" in head and b"Connection: Upgrade" in head
        assert state["config"]["Tty"] is True and state["config"]["AttachStdin"] is True
        assert ("POST", "/exec/e1/resize", {"h": "30", "w": "100"}) in engine.calls


async def test_without_tty_frames_are_demultiplexed(tmp_path: Path) -> None:
    # Podman labels the stream raw-stream even without a terminal, yet frames it.
    state = {"running": False, "code": 0}

    async def frames(head: bytes, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        writer.write(UPGRADED + frame(1, b"out\n") + frame(2, b"err\n")[:5])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(frame(2, b"err\n")[5:])

    async with engine_on(tmp_path, frames, state) as (_env, web, _engine, _server):
        async with web.exec_session(["sh"], tty=False) as shell:
            pieces = [piece async for piece in _outputs(shell)]
    assert pieces == [("stdout", b"out\n"), ("stderr", b"err\n")]
    assert shell.exit_code == 0


async def _outputs(shell: Any) -> AsyncIterator[Any]:
    while (piece := await shell.receive_output()) is not None:
        yield piece


async def test_engine_refusal_of_the_start_is_its_error(tmp_path: Path) -> None:
    async def missing(head: bytes, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        body = b'{"message": "no such exec"}'
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%b" % (len(body), body))

    async with engine_on(tmp_path, missing, {"running": False, "code": None}) as (
            _env, web, _engine, _server):
        with pytest.raises(NotFound, match="no such exec"):
            await web.exec_session(["sh"])


async def test_a_refused_upgrade_falls_back_to_the_websocket(tmp_path: Path) -> None:
    """An agent reached without a token (client certificates) refuses the upgrade with
    501, as its passthrough cannot hijack: the session then asks its WebSocket route."""
    async def agent(head: bytes, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        if b"Upgrade: tcp" in head:
            body = b'{"detail": "upgrades need the WebSocket route"}'
            writer.write(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: %d\r\n\r\n%b"
                         % (len(body), body))
            await writer.drain()
            await asyncio.sleep(0.05)  # the client hangs up first, then the next comes
            return
        body = b'{"status": 404, "detail": "no container web"}'
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\n"
                     b"Content-Length: %d\r\n\r\n%b" % (len(body), body))

    async with engine_on(tmp_path, agent, {"running": False, "code": None}) as (
            _env, web, _engine, server):
        with pytest.raises(NotFound, match="no container web"):
            await web.exec_session(["sh"])
    assert server.heads[1].startswith(b"GET /api/v1/containers/" + WEB_ID.encode()
                                      + b"/exec?cmd=sh&tty=1 HTTP/1.1")
    assert b"upgrade: websocket" in server.heads[1].lower()


async def test_a_stopped_container_is_a_conflict_on_podman() -> None:
    # Podman 4.3 answers an exec in a stopped container with 500 "state improper".
    stopped = {**WEB_INSPECT, "State": {**WEB_INSPECT["State"], "Running": False,
                                        "Status": "exited"}}
    engine = FakeEngine(routes={
        ("POST", f"/containers/{WEB_ID}/exec"): json_answer(
            {"message": "can only create exec sessions on running containers: container "
                        "state improper"}, 500),
        ("GET", f"/containers/{WEB_ID}/json"): json_answer(stopped),
    })
    env = Environment("unix:///nowhere.sock", transport=httpx.MockTransport(engine))
    try:
        with pytest.raises(Conflict, match=r"is exited.*start it first"):
            await Container(env.client, WEB_INSPECT).exec_session(["sh"])
        # Any other failure is the engine's own error.
        engine.routes[("GET", f"/containers/{WEB_ID}/json")] = json_answer(WEB_INSPECT)
        with pytest.raises(EngineAPIError) as caught:
            await Container(env.client, WEB_INSPECT).exec_session(["sh"])
        assert caught.value.status_code == 500
    finally:
        await env.aclose()


def test_agent_query_carries_the_whole_config() -> None:
    config = exec_config(["sh", "-c", "echo a&b"], tty=False, env={"A": "1=2"},
                         workdir="/tmp", user="nobody")
    assert agent_query(config, (24, 80)) == (
        "cmd=sh&cmd=-c&cmd=echo+a%26b&tty=0&rows=24&cols=80&env=A%3D1%3D2"
        "&workdir=%2Ftmp&user=nobody")


@pytest.mark.parametrize("size", [(0, 80), (24, 0), (70000, 80), (True, 80), (2.5, 80)])
def test_bad_sizes_are_refused(size: tuple[Any, Any]) -> None:
    with pytest.raises(ValueError, match="from 1 to 65535"):
        check_size(*size)


@pytest.mark.parametrize("command", [[], [""], ["sh", 3], 42])
def test_bad_commands_are_refused(command: Any) -> None:
    with pytest.raises(ValueError, match="needs a command"):
        exec_config(command, tty=True)


async def test_agent_environments_use_the_websocket(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []

    async def fake_start(cls: Any, client: Any, container_id: str, config: Any,
                         size: Any) -> Any:
        opened.append(client.url)
        raise NotFound(404, "stop here", method="GET", path="/")

    monkeypatch.setattr(WebSocketExecSession, "start", classmethod(fake_start))
    for url, token in (("h3://127.0.0.1:9", None), ("https://127.0.0.1:9", "t" * 20)):
        env = Environment(url, token=token, transport=httpx.MockTransport(FakeEngine()))
        with pytest.raises(NotFound):
            await Container(env.client, WEB_INSPECT).exec_session(["sh"])
        await env.aclose()
    assert opened == ["h3://127.0.0.1:9", "https://127.0.0.1:9"]


async def test_hang_up_signals_through_the_container_when_not_allowed_here(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A rootless engine's mapped users cannot be signalled by the agent's own user:
    a ``kill`` run in the container sends the signal, to the PID seen there."""
    state = {"running": True}
    commands: list[list[str]] = []

    def create(request: httpx.Request) -> httpx.Response:
        commands.append(json.loads(request.content)["Cmd"])
        state["running"] = False
        return httpx.Response(201, json={"Id": "k1"})

    engine = FakeEngine(routes={
        ("GET", f"/containers/{WEB_ID}/json"): json_answer(WEB_INSPECT),
        ("POST", f"/containers/{WEB_ID}/exec"): create,
        ("POST", "/exec/k1/start"): lambda request: httpx.Response(200, content=b""),
        ("GET", "/exec/e1/json"): lambda request: httpx.Response(
            200, json={"Running": state["running"]}),
    })

    def refused(pid: int, number: int) -> None:
        assert pid == 4242
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(_exec_session.os, "kill", refused)
    monkeypatch.setattr(_exec_session, "_namespace_pid",
                        lambda host, container: 17 if (host, container) == (4242, 19032)
                        else None)
    env = Environment("unix:///nowhere.sock", transport=httpx.MockTransport(engine))
    try:
        assert await _exec_session.hang_up(env.client, WEB_ID, "e1", {"Pid": 4242})
    finally:
        await env.aclose()
    assert commands == [["kill", "-s", "HUP", "17"]]


async def test_hang_up_elsewhere_is_logged_not_raised(caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    engine = FakeEngine(routes={
        ("GET", f"/containers/{WEB_ID}/json"): json_answer(WEB_INSPECT)})
    env = Environment("unix:///nowhere.sock", transport=httpx.MockTransport(engine))
    try:
        # No such process on this host: the engine runs on another one.
        assert not await _exec_session.hang_up(env.client, WEB_ID, "e1", {"Pid": 999_999_999})
    finally:
        await env.aclose()
    assert "cannot be ended from here" in caplog.text

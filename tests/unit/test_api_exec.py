"""``ws /api/v1/containers/{id}/exec``: handshakes the route refuses, and its document.

The app is driven as a server would, with ASGI messages: the test plays the client's
``websocket.connect`` and reads what the route sends back. Sessions that open for real
are tested on Podman (``tests/integration/test_api_exec.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ghostpanel_kernel.engine import EngineConnectionError
from ghostpanel_kernel.server import _routes_exec
from ghostpanel_kernel.server._api import api_app
from tests.unit.fake_engine import WEB_ID, WEB_INSPECT, FakeEngine, env_for, json_answer

STOPPED = {**WEB_INSPECT, "State": {**WEB_INSPECT["State"], "Status": "exited",
                                     "Running": False}}


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    yield FakeEngine(routes={
        ("GET", "/containers/web/json"): json_answer(WEB_INSPECT),
        ("GET", "/containers/stopped/json"): json_answer(STOPPED),
    })


async def handshake(engine: FakeEngine, path: str, query: str = "", *,
                    denial: bool = True) -> list[dict[str, Any]]:
    """Connect to ``path`` on the API app; the messages the route sent."""
    app = api_app()
    env = env_for(engine)
    app.state.engine = env
    scope = {"type": "websocket", "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "headers": [], "scheme": "wss",
             "server": ("127.0.0.1", 443), "client": ("127.0.0.1", 5000),
             "subprotocols": [], "root_path": "", "asgi": {"version": "3.0"},
             "extensions": {"websocket.http.response": {}} if denial else {}}
    sent: list[dict[str, Any]] = []
    messages = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "websocket.disconnect",
                                                 "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    finally:
        await env.aclose()
    return sent


def refusal(sent: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    start, body = sent
    assert start["type"] == "websocket.http.response.start"
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    return start["status"], json.loads(body["body"])


async def test_a_missing_container_is_a_404_problem(engine: FakeEngine) -> None:
    status, problem = refusal(await handshake(engine, "/api/v1/containers/nope/exec"))
    assert status == 404 and problem["status"] == 404
    assert "nope" in problem["detail"]


async def test_a_stopped_container_is_a_409_problem(engine: FakeEngine) -> None:
    status, problem = refusal(await handshake(engine, "/api/v1/containers/stopped/exec"))
    assert status == 409
    assert "exited" in problem["detail"] and "start it first" in problem["detail"]
    # Nothing was created in it.
    assert not [call for call in engine.calls if call[1].endswith("/exec")]


@pytest.mark.parametrize(("query", "wanted"), [
    ("tty=maybe", "tty must be 1 or 0"),
    ("rows=0&cols=80", "rows and cols"),
    ("rows=24", "rows and cols"),
    ("cmd=", "cmd must name a program"),
    ("env=NOEQUALS", "KEY=VALUE"),
    ("&".join(["cmd=x"] * 300), "at most 256"),
])
async def test_a_bad_query_is_a_400_problem(engine: FakeEngine, query: str,
                                            wanted: str) -> None:
    status, problem = refusal(await handshake(engine, "/api/v1/containers/web/exec", query))
    assert status == 400
    assert wanted in problem["detail"]
    assert not [call for call in engine.calls if call[1].endswith("/exec")]


async def test_without_denial_responses_the_socket_closes_with_4000_plus_status(
        engine: FakeEngine) -> None:
    sent = await handshake(engine, "/api/v1/containers/nope/exec", denial=False)
    assert sent == [{"type": "websocket.close", "code": 4404, "reason": "no container nope"}]


async def test_an_engine_error_is_a_502_problem(engine: FakeEngine) -> None:
    engine.routes[("POST", f"/containers/{WEB_ID}/exec")] = json_answer(
        {"message": "runtime exploded"}, 500)
    status, problem = refusal(await handshake(engine, "/api/v1/containers/web/exec"))
    assert status == 502
    assert "runtime exploded" in problem["detail"]


def test_the_route_is_documented_as_a_get_with_the_upgrade() -> None:
    item = _routes_exec.PATHS["/api/v1/containers/{id}/exec"]
    operation = item["get"]
    assert set(operation["responses"]) >= {"101", "400", "404", "409"}
    assert "101" in operation["description"] or "Upgrade" in operation["description"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert names == {"id", "cmd", "tty", "rows", "cols", "env", "workdir", "user"}
    assert [route.path for route in _routes_exec.ROUTES] == list(_routes_exec.PATHS)


class FakeSession:
    """An exec that echoes stdin as stdout and ``ERR`` on stderr, and ends at stdin's end;
    a write after that fails, as a real one's does."""

    def __init__(self, *, tty: bool) -> None:
        self.tty = tty
        self.exit_code: int | None = None
        self.output: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self.sizes: list[tuple[int, int]] = []
        self.closed = False
        self.stdin_closed = False

    async def send(self, data: bytes) -> None:
        if self.stdin_closed:
            raise EngineConnectionError("the exec ended", endpoint="fake")
        await self.output.put(("stdout", data))
        await self.output.put(("stderr", b"ERR"))

    async def resize(self, rows: int, cols: int) -> None:
        self.sizes.append((rows, cols))

    async def close_stdin(self) -> None:
        self.stdin_closed = True
        self.exit_code = 7
        # The process ends a moment later: a write in between fails.
        asyncio.get_running_loop().call_later(0.1, self.output.put_nowait, None)

    async def receive_output(self) -> tuple[str, bytes] | None:
        return await self.output.get()

    async def close(self) -> None:
        self.closed = True


async def bridge(monkeypatch: pytest.MonkeyPatch, session: FakeSession,
                 client_messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def opened(websocket: Any, engine: Any) -> FakeSession:
        return session

    monkeypatch.setattr(_routes_exec, "_open", opened)
    app = api_app()
    app.state.engine = None
    scope = {"type": "websocket", "path": "/api/v1/containers/web/exec", "query_string": b"",
             "headers": [], "scheme": "wss", "server": ("127.0.0.1", 443),
             "client": ("127.0.0.1", 5000), "subprotocols": [], "root_path": "",
             "asgi": {"version": "3.0"}, "extensions": {}}
    incoming = [{"type": "websocket.connect"}, *client_messages]
    sent: list[dict[str, Any]] = []
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if incoming:
            await asyncio.sleep(0.01)
            return incoming.pop(0)
        await never.wait()  # the client stays until the agent closes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with asyncio.timeout(5):
        await app(scope, receive, send)
    return sent


@pytest.mark.parametrize("tty", [True, False])
async def test_the_bridge_carries_bytes_control_and_the_exit(
        monkeypatch: pytest.MonkeyPatch, tty: bool) -> None:
    session = FakeSession(tty=tty)
    sent = await bridge(monkeypatch, session, [
        {"type": "websocket.receive", "bytes": b"hi"},
        {"type": "websocket.receive", "text": '{"type": "resize", "rows": 9, "cols": 33}'},
        {"type": "websocket.receive", "text": "not json"},
        {"type": "websocket.receive", "text": '{"type": "eof"}'},
        # After stdin's end, before the process's: dropped, the exit still goes out.
        {"type": "websocket.receive", "bytes": b"late"},
    ])
    assert sent[0] == {"type": "websocket.accept", "subprotocol": None, "headers": []}
    data = [message["bytes"] for message in sent if message.get("bytes")]
    assert data == ([b"hi", b"ERR"] if tty else [b"\x01hi", b"\x02ERR"])
    assert {"type": "websocket.send", "text": '{"type": "exit", "code": 7}'} in sent
    assert (sent[-1]["type"], sent[-1]["code"]) == ("websocket.close", 1000)
    assert session.sizes == [(9, 33)]
    assert session.closed


async def test_the_client_leaving_closes_the_session(monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    session = FakeSession(tty=True)
    sent = await bridge(monkeypatch, session, [
        {"type": "websocket.receive", "bytes": b"hi"},
        {"type": "websocket.disconnect", "code": 1000},
    ])
    assert session.closed and session.exit_code is None
    assert not [message for message in sent if message.get("text")]

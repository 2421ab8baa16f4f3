"""The Engine API passthrough against a recording engine on a real unix socket.

``RecordingEngine`` reads each request as an engine would (head, then a body framed by
``Content-Length`` or chunks), records it, and sends back the bytes the test chose; the
passthrough is driven through ``httpx.ASGITransport``. What the real engine and the
docker CLI make of it is in ``tests/integration/test_agent_passthrough.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel.server._passthrough import EnginePassthrough


@dataclass
class Seen:
    """One request as the engine read it."""

    head: list[bytes]
    body: bytes
    chunked: bool

    @property
    def target(self) -> bytes:
        return self.head[0].split(b" ")[1]

    def header(self, name: bytes) -> list[bytes]:
        return [line.partition(b":")[2].strip() for line in self.head[1:]
                if line.partition(b":")[0].strip().lower() == name]

    @property
    def names(self) -> set[bytes]:
        return {line.partition(b":")[0].strip().lower() for line in self.head[1:]}


@dataclass
class RecordingEngine:
    """An engine on ``path`` answering every request with ``reply``."""

    path: Path
    reply: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    #: Close the connection after the reply.
    hang_up: bool = False
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n"))[:-4].split(b"\r\n")
                seen = Seen(head, b"", chunked=False)
                length = seen.header(b"content-length")
                if length:
                    seen.body = await reader.readexactly(int(length[0]))
                elif seen.header(b"transfer-encoding") == [b"chunked"]:
                    seen.chunked = True
                    while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
                        seen.body += (await reader.readexactly(size + 2))[:-2]
                    await reader.readexactly(2)
                self.seen.append(seen)
                writer.write(self.reply)
                await writer.drain()
                if self.hang_up:
                    break
        writer.close()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[RecordingEngine]:
    recording = RecordingEngine(tmp_path / "engine.sock")
    server = await asyncio.start_unix_server(recording.serve, path=os.fspath(recording.path))
    async with server:
        yield recording


@contextlib.asynccontextmanager
async def through(app: EnginePassthrough) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://agent") as client:
        yield client
    await app.aclose()


async def test_hop_by_hop_headers_and_the_token_stay_on_this_hop(
        engine: RecordingEngine) -> None:
    engine.reply = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nApi-Version: 1.41\r\n"
                    b"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
                    b"Date: Mon, 07 Dec 2026 17:24:45 GMT\r\n"
                    b"\r\n{}")
    app = EnginePassthrough(engine.url, prefix="/engine")
    query = "all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
    async with through(app) as client:
        answer = await client.get(
            f"/engine/v1.41/containers/json?{query}",
            headers={"Authorization": "Bearer secret", "Connection": "X-Private",
                     "X-Private": "hop", "Keep-Alive": "timeout=1", "TE": "trailers",
                     "Proxy-Authorization": "Basic eA==", "X-Registry-Auth": "e30=",
                     "User-Agent": "Docker-Client/28.2.2 (linux)"})
    assert answer.status_code == 200 and answer.json() == {}
    [seen] = engine.seen
    assert seen.target == f"/v1.41/containers/json?{query}".encode()
    assert seen.header(b"host") == [b"localhost"]
    assert not seen.names & {b"authorization", b"connection", b"x-private", b"keep-alive",
                             b"te", b"proxy-authorization"}
    assert seen.header(b"x-registry-auth") == [b"e30="]
    assert seen.header(b"user-agent") == [b"Docker-Client/28.2.2 (linux)"]
    assert answer.headers["api-version"] == "1.41"
    assert not {"x-hop", "keep-alive", "date"} & set(answer.headers)
    assert "keep-alive" not in answer.headers.get("connection", "")


@pytest.mark.parametrize(("path", "forwarded"), [
    ("/engine/_ping", b"/_ping"),
    ("/engine", b"/"),
    ("/_ping", b"/_ping"),              # mounted at / too: no prefix to strip
    ("/engineering/x", b"/engineering/x"),  # a prefix is a whole path segment
])
async def test_prefix_is_stripped_only_as_a_whole_segment(engine: RecordingEngine, path: str,
                                                          forwarded: bytes) -> None:
    async with through(EnginePassthrough(engine.url, prefix="/engine/")) as client:
        assert (await client.get(path)).status_code == 200
    assert engine.seen[0].target == forwarded


async def test_small_bodies_go_whole_and_large_ones_stream(engine: RecordingEngine) -> None:
    small = json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode()
    large = os.urandom(1 << 20)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(large), 100_000):
            yield large[start:start + 100_000]

    async with through(EnginePassthrough(engine.url)) as client:
        await client.post("/containers/create", content=small,
                          headers={"Content-Type": "application/json",
                                   "Expect": "100-continue"})
        await client.put("/containers/x/archive?path=/tmp", content=pieces())
    whole, streamed = engine.seen
    assert (whole.body, whole.chunked) == (small, False)
    assert whole.header(b"content-length") == [str(len(small)).encode()]
    # The ASGI server answers "100 Continue"; the engine must not send one more.
    assert not whole.header(b"expect")
    assert (streamed.body == large, streamed.chunked) == (True, True)
    assert not streamed.header(b"content-length")


async def test_engine_down_is_a_502_problem_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-engine.sock"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for url, where in ((f"unix://{missing}", str(missing)),
                       (f"tcp://127.0.0.1:{port}", f"127.0.0.1:{port}")):
        async with through(EnginePassthrough(url)) as client:
            answer = await client.get("/v1.41/info")
        assert answer.status_code == 502
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["status"] == 502 and problem["engine"] == where
        assert where in problem["detail"], problem


@pytest.mark.parametrize("headers", [
    {"Connection": "Upgrade", "Upgrade": "tcp"},
    {"Connection": "keep-alive, upgrade", "Upgrade": "tcp"},
])
async def test_upgrades_are_refused_without_an_engine_call(engine: RecordingEngine,
                                                           headers: dict[str, str]) -> None:
    async with through(EnginePassthrough(engine.url, prefix="/engine")) as client:
        attach = await client.post("/engine/v1.41/containers/web/attach?stream=1",
                                   headers=headers)
        start = await client.post("/v1.41/exec/0123abcd/start", headers=headers,
                                  json={"Detach": False, "Tty": True})
    assert engine.seen == []
    for answer in (attach, start):
        assert answer.status_code == 501
        assert answer.headers["content-type"] == "application/problem+json"
        assert "Upgrade: tcp" in answer.json()["detail"]
    assert attach.json()["websocket"] == "/api/v1/containers/web/exec"
    assert start.json()["websocket"] == "/api/v1/containers/{id}/exec"


async def test_a_stream_the_engine_breaks_off_is_not_ended_cleanly(
        engine: RecordingEngine) -> None:
    """The client must see a truncated answer, not a short one that looks whole."""
    engine.reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"7\r\nline 1\n\r\n")
    engine.hang_up = True
    async with through(EnginePassthrough(engine.url)) as client:
        with pytest.raises(httpx.ReadError, match="closed the connection mid-response"):
            await client.get("/containers/x/logs?follow=1&stdout=1")


async def test_a_websocket_is_closed(engine: RecordingEngine) -> None:
    app = EnginePassthrough(engine.url)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/events"}, receive, send)
    assert sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008

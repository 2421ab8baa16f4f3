"""A scripted HTTP/1.1 peer on a real socket, for tests of the engine transport.

:class:`ScriptedServer` listens on a unix socket or a loopback TCP port, reads each
request as an engine would (head, then a ``Content-Length`` body) and lets the test
decide, per request, what goes back: an answer, nothing at all, some bytes and a close.
It records every request it read and counts connections, so a test can assert that a
request reached the peer exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Drop", "Hang", "Paced", "Received", "ScriptedServer", "answer"]


@dataclass(frozen=True)
class Received:
    """One request as the peer read it (path without its query), on which connection,
    in which order on it."""

    method: str
    path: str
    connection: int
    number_on_connection: int


class Drop:
    """Close the connection without answering (after sending ``before``, if any)."""

    def __init__(self, before: bytes = b"") -> None:
        self.before = before


class Hang:
    """Keep the connection open and never answer."""


class Paced:
    """Send ``pieces`` in turn, sleeping for each float among them (seconds)."""

    def __init__(self, *pieces: bytes | float) -> None:
        self.pieces = pieces


Reply = bytes | Drop | Hang | Paced
Script = Callable[[Received], Reply | Awaitable[Reply]]


def answer(status: int = 200, body: bytes = b"", *, headers: dict[str, str] | None = None,
           keep_alive: bool = True) -> bytes:
    """A whole HTTP/1.1 answer with a ``Content-Length`` body."""
    reason = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found"}.get(status, "X")
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class ScriptedServer:
    """Serve ``script``'s replies on ``unix_path``, or on a free loopback TCP port.

    Use as ``async with ScriptedServer(script, unix_path=...) as server``; ``server.url``
    is the engine URL to connect to.
    """

    def __init__(self, script: Script, *, unix_path: Path | None = None,
                 greeting: bytes = b"") -> None:
        self.script = script
        self.unix_path = unix_path
        self.greeting = greeting
        self.received: list[Received] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        # Set on exit: hanging handlers return by themselves. Cancelling them instead
        # makes Python 3.11's stream server log a CancelledError traceback.
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        if self.unix_path is not None:
            return f"unix://{self.unix_path}"
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"tcp://127.0.0.1:{port}"

    def paths(self, method: str | None = None) -> list[str]:
        """The paths of the requests read, of one method or all."""
        return [r.path for r in self.received if method is None or r.method == method]

    async def __aenter__(self) -> ScriptedServer:
        if self.unix_path is not None:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.unix_path))
        else:
            self._server = await asyncio.start_server(self._serve, host="127.0.0.1", port=0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._closing.set()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        connection = self.connections
        try:
            if self.greeting:
                writer.write(self.greeting)
                await writer.drain()
            number = 0
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                number += 1
                request = Received(method, path.partition("?")[0], connection, number)
                self.received.append(request)
                reply = self.script(request)
                if not isinstance(reply, (bytes, Drop, Hang, Paced)):
                    reply = await reply
                if isinstance(reply, Paced):
                    for piece in reply.pieces:
                        if isinstance(piece, float):
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(self._closing.wait(), piece)
                            if self._closing.is_set():
                                return
                        else:
                            writer.write(piece)
                            await writer.drain()
                    continue
                if isinstance(reply, Hang):
                    await self._closing.wait()
                    return
                if isinstance(reply, Drop):
                    if reply.before:
                        writer.write(reply.before)
                        await writer.drain()
                    return
                assert isinstance(reply, bytes)
                writer.write(reply)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            self._tasks.discard(task)

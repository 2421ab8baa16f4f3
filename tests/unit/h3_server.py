"""A tiny ASGI app served by Hypercorn over HTTPS and HTTP/3, for the h3 transport tests.

Run as ``python -m tests.unit.h3_server PORT CERT KEY [--no-quic]``, or through
:class:`Server`: a process of its own, so that a test can kill it (an agent that dies
without a word) and start it again on the same port, and so that Hypercorn's shutdown
of live QUIC connections stays out of the test process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

__all__ = ["Server", "app"]

ROOT = Path(__file__).resolve().parents[2]

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """GET /ping, POST /echo, GET /stream?n=N, GET /slow, GET /headers (what came)."""
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]  # lifespan.startup, then .shutdown
            await send({"type": f"{kind}.complete"})
            if kind == "lifespan.shutdown":
                return
    path = scope["path"]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break

    async def answer(status: int, content: bytes, *, more: bool = False) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"api-version", b"1.41"),
                                (b"x-protocol", scope["http_version"].encode())]})
        await send({"type": "http.response.body", "body": content, "more_body": more})

    if path in ("/ping", "/_ping"):
        await answer(200, b"OK")
    elif path == "/echo":
        await answer(200, hashlib.sha256(body).hexdigest().encode() + b" %d" % len(body))
    elif path == "/headers":
        await answer(200, json.dumps({k.decode(): v.decode() for k, v in scope["headers"]}
                                     ).encode())
    elif path == "/stream":
        count = int(scope["query_string"].decode().partition("=")[2] or 3)
        await answer(200, b"", more=True)
        for index in range(count):
            await asyncio.sleep(0.05)
            await send({"type": "http.response.body", "body": b"line %d\n" % index,
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/slow":
        await asyncio.sleep(3)
        await answer(200, b"late")
    else:
        await answer(404, b'{"message": "no such path"}')


class Server:
    """``tests.unit.h3_server`` in a process: HTTPS, and HTTP/3 when ``quic``."""

    def __init__(self, pki: Path, port: int, *, quic: bool = True) -> None:
        self.pki = pki
        self.port = port
        self.quic = quic
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        command = [sys.executable, "-m", "tests.unit.h3_server", str(self.port),
                   str(self.pki / "server.pem"), str(self.pki / "server.key")]
        if not self.quic:
            command.append("--no-quic")
        self._process = subprocess.Popen(command, cwd=ROOT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the test server ended ({self._process.returncode})")
            if self._listening():
                return self
            time.sleep(0.05)
        raise RuntimeError("the test server did not start")

    def _listening(self) -> bool:
        """Whether the TCP listener accepts and, with ``quic``, the UDP port is taken
        (Hypercorn binds it after the TCP one: a loaded machine shows the gap)."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        if not self.quic:
            return True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                return True  # the server holds it
        return False

    def stop(self) -> None:
        """Kill it: an agent that dies without closing its connections."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None


def main(argv: list[str]) -> None:
    port, cert, key = argv[:3]
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    if "--no-quic" not in argv:
        config.quic_bind = [f"127.0.0.1:{port}"]
    config.certfile = cert
    config.keyfile = key
    config.loglevel = "WARNING"
    config.accesslog = None
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1:])

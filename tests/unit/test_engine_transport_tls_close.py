"""``EngineTransport.aclose`` on TLS connections: their sockets are closed when it returns.

A TLS socket closes only after the ``close_notify`` exchange, which runs on the event
loop; ``asyncio.run`` closes its loop as soon as the coroutine returns, so a transport
that only started that exchange left its sockets open (a ``ResourceWarning`` later, an
agent client's file descriptor leaked).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel.engine._endpoint import Endpoint, TLSConfig
from ghostpanel_kernel.engine._transport import EngineTransport


@pytest.fixture(params=["answers close_notify", "silent"])
def tls_peer(request: pytest.FixtureRequest, test_pki: Path) -> Iterator[int]:
    """A TLS peer on loopback that answers one request; then it either closes when the
    client does, or holds the connection without reading (no ``close_notify`` back)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(test_pki / "server.pem", test_pki / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        raw, _ = listener.accept()
        with context.wrap_socket(raw, server_side=True) as tls:
            data = b""
            while b"\r\n\r\n" not in data:
                data += tls.recv(4096)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
            if request.param == "silent":
                done.wait(10)
            else:
                while tls.recv(4096):  # until the client's close_notify
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join(10)
        listener.close()


def test_aclose_leaves_no_tls_socket_open(tls_peer: int, test_pki: Path) -> None:
    endpoint = Endpoint.parse(f"https://127.0.0.1:{tls_peer}",
                              tls=TLSConfig(ca_cert=os.fspath(test_pki / "ca.pem")))
    sockets = []

    async def one_request() -> None:
        transport = EngineTransport(endpoint)
        answer = await transport.handle_async_request(
            httpx.Request("GET", f"https://127.0.0.1:{tls_peer}/_ping",
                          headers={"Host": "127.0.0.1"}))
        assert answer.status_code == 200
        [conn] = transport._idle
        sockets.append(conn.writer.transport.get_extra_info("socket"))
        await transport.aclose()

    asyncio.run(one_request())
    assert sockets[0].fileno() == -1, "the TLS socket is still open"

"""``tcp://`` and ``https://`` endpoints (client certificates), end to end.

A TLS terminator on 127.0.0.1 (asyncio, requiring a client certificate signed by a test
CA) forwards each connection to the private Podman engine's unix socket, the way a Bolt
host exposes its engine over TCP with ``--tlsverify``. Certificates are made per test
session (``tests/certificates.py``, the ``openssl`` CLI) and never leave the temp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ghostpanel_kernel import EngineConnectionError, TLSConfig, connect
from tests.podman_service import PodmanService


@pytest.fixture(scope="module")
def certificates(test_pki: Path) -> Path:
    return test_pki


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
    finally:
        writer.close()


def _server_context(certs: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "ca.pem"))
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@contextlib.asynccontextmanager
async def tls_terminator(socket_path: str, certs: Path | None) -> AsyncIterator[int]:
    """Serve on a free loopback port (TLS when ``certs``), forwarding to the engine socket."""
    context = _server_context(certs) if certs is not None else None
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            engine_reader, engine_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            writer.close()
            return
        for task in (asyncio.create_task(_pipe(reader, engine_writer)),
                     asyncio.create_task(_pipe(engine_reader, writer))):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def _socket_of(engine: PodmanService) -> str:
    return engine.url.removeprefix("unix://")


async def test_plain_tcp_endpoint_reaches_the_engine(podman_engine: PodmanService) -> None:
    async with tls_terminator(_socket_of(podman_engine), None) as port:
        async with connect(f"tcp://127.0.0.1:{port}") as env:
            assert (await env.version()).kind == "podman"
            images = await env.images.list()
            assert "localhost/busybox:latest" in {t for i in images for t in i.tags}


async def test_https_with_client_certificate_reaches_the_engine(
        podman_engine: PodmanService, certificates: Path) -> None:
    async with tls_terminator(_socket_of(podman_engine), certificates) as port:
        tls = TLSConfig(ca_cert=str(certificates / "ca.pem"),
                        client_cert=str(certificates / "client.pem"),
                        client_key=str(certificates / "client.key"))
        async with connect(f"https://127.0.0.1:{port}", tls=tls) as env:
            assert await env.ping() is True
            version = await env.version()
            assert version.kind == "podman"
            images = await env.images.list()
            assert "localhost/busybox:latest" in {t for i in images for t in i.tags}


async def test_https_without_client_certificate_is_refused(
        podman_engine: PodmanService, certificates: Path) -> None:
    async with tls_terminator(_socket_of(podman_engine), certificates) as port:
        url = f"https://127.0.0.1:{port}"
        async with connect(url, tls=TLSConfig(ca_cert=str(certificates / "ca.pem"))) as env:
            with pytest.raises(EngineConnectionError) as caught:
                await env.ping()
        assert caught.value.endpoint == url


async def test_https_with_a_certificate_from_another_ca_is_refused(
        podman_engine: PodmanService, certificates: Path) -> None:
    async with tls_terminator(_socket_of(podman_engine), certificates) as port:
        tls = TLSConfig(ca_cert=str(certificates / "ca.pem"),
                        client_cert=str(certificates / "stranger.pem"),
                        client_key=str(certificates / "stranger.key"))
        async with connect(f"https://127.0.0.1:{port}", tls=tls) as env:
            with pytest.raises(EngineConnectionError):
                await env.ping()


async def test_https_rejects_a_server_the_ca_did_not_sign(
        podman_engine: PodmanService, certificates: Path) -> None:
    async with tls_terminator(_socket_of(podman_engine), certificates) as port:
        tls = TLSConfig(ca_cert=str(certificates / "other-ca.pem"),
                        client_cert=str(certificates / "client.pem"),
                        client_key=str(certificates / "client.key"))
        async with connect(f"https://127.0.0.1:{port}", tls=tls) as env:
            with pytest.raises(EngineConnectionError, match=r"TLS|certificate|verify"):
                await env.ping()

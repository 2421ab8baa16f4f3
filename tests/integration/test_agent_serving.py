"""Serving ``ghostpanel agent``: HTTP/3 beside HTTPS, a unix socket, clean stops, the
token commands, and a bad listen address."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent

from ghostpanel_kernel._procfs import command_line, process_ids
from tests.agent_process import (  # noqa: F401
    RunningAgent,
    agent_factory_fixture,
    agent_fixture,
    free_port,
    ghostpanel_command,
)
from tests.integration.conftest import MakeContainer

pytestmark = pytest.mark.integration

#: RFC 9114 8.1: the error code of a request the client no longer wants.
_H3_REQUEST_CANCELLED = 0x10C


class _H3Client(QuicConnectionProtocol):
    """The least HTTP/3 client that does: one GET at a time, whole answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = H3Connection(self._quic)
        self._answers: dict[int, tuple[asyncio.Future[None], list[H3Event]]] = {}
        self.terminated: asyncio.Future[ConnectionTerminated] = \
            asyncio.get_running_loop().create_future()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated) and not self.terminated.done():
            self.terminated.set_result(event)
        for h3_event in self._http.handle_event(event):
            if isinstance(h3_event, HeadersReceived | DataReceived) \
                    and h3_event.stream_id in self._answers:
                done, events = self._answers[h3_event.stream_id]
                events.append(h3_event)
                if h3_event.stream_ended:
                    done.set_result(None)

    async def get(self, authority: str, path: str,
                  headers: dict[str, str]) -> tuple[int, dict[bytes, bytes], bytes]:
        stream_id = self._quic.get_next_available_stream_id()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        events: list[H3Event] = []
        self._answers[stream_id] = (done, events)
        self._http.send_headers(stream_id, [
            (b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority.encode()),
            (b":path", path.encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items())],
            end_stream=True)
        self.transmit()
        await asyncio.wait_for(done, 10)
        head = next(event for event in events if isinstance(event, HeadersReceived))
        fields = dict(head.headers)
        body = b"".join(event.data for event in events if isinstance(event, DataReceived))
        return int(fields[b":status"]), fields, body

    def open(self, authority: str, method: str, path: str,
             headers: dict[str, str]) -> int:
        """Send a request (no body) and leave its answer unread; its stream id."""
        stream_id = self._quic.get_next_available_stream_id()
        self._http.send_headers(stream_id, [
            (b":method", method.encode()), (b":scheme", b"https"),
            (b":authority", authority.encode()), (b":path", path.encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items())],
            end_stream=True)
        self.transmit()
        return stream_id

    def stop_reading_then_send(self, authority: str, path: str,
                               headers: dict[str, str], body: bytes) -> None:
        """POST whose client stops the answer (STOP_SENDING) and only then sends the
        request body: the server must drop that body rather than choke on it."""
        stream_id = self._quic.get_next_available_stream_id()
        self._http.send_headers(stream_id, [
            (b":method", b"POST"), (b":scheme", b"https"),
            (b":authority", authority.encode()), (b":path", path.encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items())])
        self.transmit()
        self._quic.stop_stream(stream_id, _H3_REQUEST_CANCELLED)
        self.transmit()
        self._http.send_data(stream_id, body, end_stream=True)
        self.transmit()

    def cancel(self, stream_id: int) -> None:
        """Give up on a request as a client does (RFC 9114 4.1.1): reset the stream
        and ask the server to stop sending on it, H3_REQUEST_CANCELLED."""
        self._quic.reset_stream(stream_id, _H3_REQUEST_CANCELLED)
        self._quic.stop_stream(stream_id, _H3_REQUEST_CANCELLED)
        self.transmit()


def _quic_configuration(agent: RunningAgent) -> QuicConfiguration:
    """A QUIC client's configuration for HTTP/3 to ``agent``, trusting its CA."""
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                      server_name="127.0.0.1")
    configuration.load_verify_locations(cafile=str(agent.ca_cert))
    return configuration


async def test_http3_reaches_the_api(agent: RunningAgent) -> None:
    configuration = _quic_configuration(agent)
    async with quic_connect("127.0.0.1", agent.port, configuration=configuration,
                            create_protocol=_H3Client) as client:
        assert isinstance(client, _H3Client)
        authority = f"127.0.0.1:{agent.port}"
        status, _, body = await client.get(authority, "/api/v1/health", agent.headers)
        assert status == 200, body
        assert b'"status":"ok"' in body
        status, fields, _ = await client.get(authority, "/api/v1/health", {})
        assert status == 401 and fields[b"content-type"] == b"application/problem+json"


async def test_cancelled_http3_requests_leave_the_listener_serving(
        agent: RunningAgent, make_container: MakeContainer) -> None:
    """A client may cancel a request before the agent answers it. Hypercorn 0.18 then
    answered on the reset stream anyway, aioquic refused, and the error ended the whole
    HTTP/3 listener (HTTPS kept serving): any client could stop HTTP/3 for everyone."""
    container = await make_container()
    await container.start()
    configuration = _quic_configuration(agent)
    authority = f"127.0.0.1:{agent.port}"
    async with quic_connect("127.0.0.1", agent.port, configuration=configuration,
                            create_protocol=_H3Client) as client:
        assert isinstance(client, _H3Client)
        # Cancelled at once, before the agent can have answered...
        for path in ("/_ping", "/api/v1/health", "/containers/json", "/no/such/path"):
            for _ in range(3):
                client.cancel(client.open(authority, "GET", path, agent.headers))
        # ...and while the agent waits for the engine: the head comes when the
        # container exits, after the cancel.
        waiting = client.open(authority, "POST", f"/containers/{container.id}/wait",
                              agent.headers)
        await asyncio.sleep(0.5)
        client.cancel(waiting)
        for _ in range(3):  # the answer stopped, the request body still coming
            client.stop_reading_then_send(authority, "/containers/create", agent.headers,
                                          b"{not json" * 2000)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        await container.stop(timeout=0)
        await asyncio.sleep(1.0)
        try:
            status, _, body = await client.get(authority, "/api/v1/health", agent.headers)
        except TimeoutError:
            raise AssertionError(f"HTTP/3 no longer answers:\n{agent.log()}") from None
        assert status == 200, body
    # A new connection too: the listener itself, not only that connection, serves.
    async with quic_connect("127.0.0.1", agent.port, configuration=configuration,
                            create_protocol=_H3Client) as client:
        assert isinstance(client, _H3Client)
        status, _, body = await client.get(authority, "/_ping", agent.headers)
        assert status == 200 and body == b"OK", body
    log = agent.log()
    assert "Traceback" not in log, log


def _loaded(agent: RunningAgent, needle: str) -> bool:
    """Whether the agent process has a file whose path contains ``needle`` mapped."""
    assert agent.process is not None
    return needle in Path(f"/proc/{agent.process.pid}/maps").read_text()


async def test_http3_is_loaded_by_its_first_client(agent: RunningAgent) -> None:
    """aioquic (and its share of memory) comes with the first QUIC packet, not at start;
    that first client is served all the same."""
    with agent.client() as http:  # HTTPS alone needs none of it
        assert http.get("/_ping").status_code == 200
    assert not _loaded(agent, "/aioquic/")
    configuration = _quic_configuration(agent)
    async with quic_connect("127.0.0.1", agent.port, configuration=configuration,
                            create_protocol=_H3Client) as client:
        assert isinstance(client, _H3Client)
        status, _, body = await client.get(f"127.0.0.1:{agent.port}", "/_ping",
                                           agent.headers)
        assert status == 200 and body == b"OK"
    assert _loaded(agent, "/aioquic/")


async def test_a_stop_closes_http3_connections(agent: RunningAgent) -> None:
    """At a stop the agent closes its QUIC connections (HTTP/3's H3_NO_ERROR): a client
    learns of it at once, not from its idle timeout a minute later."""
    configuration = _quic_configuration(agent)
    async with quic_connect("127.0.0.1", agent.port, configuration=configuration,
                            create_protocol=_H3Client, wait_connected=True) as client:
        assert isinstance(client, _H3Client)
        status, _, _ = await client.get(f"127.0.0.1:{agent.port}", "/_ping", agent.headers)
        assert status == 200
        started = time.monotonic()
        assert await asyncio.to_thread(agent.stop) == 0
        closed = await asyncio.wait_for(client.terminated, 5)
        assert closed.error_code == 0x100 and closed.reason_phrase == "agent stopping"
        # Idle: closed as soon as the stop began, not after the graceful timeout.
        assert time.monotonic() - started < 1.5


async def test_one_http2_connection_carries_thousands_of_requests(
        agent: RunningAgent) -> None:
    """Hypercorn's default closed a connection after 1,000 requests with a GOAWAY, and
    httpx failed the requests then in flight ("ConnectionTerminated")."""
    async with httpx.AsyncClient(base_url=agent.url, http2=True, headers=agent.headers,
                                 verify=agent.ssl_context(), timeout=30) as http:
        remaining = 1200

        async def caller() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                answer = await http.get("/_ping")
                assert answer.status_code == 200 and answer.http_version == "HTTP/2"

        await asyncio.gather(*(caller() for _ in range(50)))


def test_unix_socket_listen(agent_factory: Callable[..., RunningAgent]) -> None:
    running = agent_factory(listen="unix")
    assert running.unix_socket is not None
    assert stat.S_IMODE(running.unix_socket.stat().st_mode) == 0o600
    assert running.fingerprint is None  # no TLS, no certificate
    with running.client() as http:
        health = http.get("/api/v1/health")
        assert health.status_code == 200, health.text
        assert "alt-svc" not in health.headers  # no HTTP/3 beside a unix socket
    with running.client(token=False) as http:
        assert http.get("/api/v1/health").status_code == 401


def _processes_naming(directory: Path) -> list[str]:
    needle = f"{directory}"
    found = []
    for pid in process_ids():
        arguments = command_line(pid)
        if arguments and any(needle in argument for argument in arguments):
            found.append(" ".join(arguments))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_agent_cleanly(agent: RunningAgent, signum: int) -> None:
    with agent.client() as http:  # a kept-alive connection open at the stop
        assert http.get("/api/v1/health").status_code == 200
        started = time.monotonic()
        assert agent.stop(signum) == 0
        # An idle pooled connection that never answers the TLS close does not hold
        # the stop up for asyncio's 30 s default.
        assert time.monotonic() - started < 5
        with pytest.raises(httpx.TransportError):
            http.get("/api/v1/health")
    assert not _processes_naming(agent.home)
    log = agent.log()
    assert "Traceback" not in log, log


def test_a_stop_with_nothing_open_is_prompt(agent: RunningAgent) -> None:
    # Hypercorn's HTTP/3 server would wait for a datagram, then for the graceful
    # timeout (2 s), before it noticed the stop; the agent wakes it.
    with agent.client() as http:
        assert http.get("/api/v1/health").status_code == 200
    started = time.monotonic()
    assert agent.stop() == 0
    assert time.monotonic() - started < 1.5


def test_token_commands(agent: RunningAgent) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(ghostpanel_command(agent.home, "agent", "token", *args),
                              capture_output=True, text=True, timeout=60, check=False)

    created = cli("create", "ci")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("gpa_") and len(token) > 40
    listing = cli("ls")
    assert listing.returncode == 0
    assert "ci" in listing.stdout and "test" in listing.stdout
    assert token not in listing.stdout and agent.token not in listing.stdout
    assert token not in (agent.home / "ghostpanel.db").read_bytes().decode(errors="replace")
    again = cli("create", "ci")
    assert again.returncode == 1 and "exists" in again.stderr
    assert cli("revoke", "ci").returncode == 0
    assert "revoked" in cli("ls").stdout
    assert cli("revoke", "ci").returncode == 1
    assert cli("create", "ci").returncode == 0  # a revoked name may be given again


def test_a_bad_listen_address_is_a_usage_error(tmp_path: Path, engine_url: str) -> None:
    result = subprocess.run(ghostpanel_command(tmp_path, "agent", "--listen", "nowhere",
                                               "--engine", engine_url),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "HOST:PORT or unix:///PATH" in result.stderr


def test_an_address_in_use_is_named(tmp_path: Path, engine_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = subprocess.run(ghostpanel_command(tmp_path, "agent", "--listen", address,
                                                   "--engine", engine_url),
                                capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"Error: [Errno {errno.EADDRINUSE}] cannot listen on "
                                      f"{address}: Address already in use")


def test_a_bad_certificate_is_named(tmp_path: Path, engine_url: str,
                                    test_pki: Path) -> None:
    result = subprocess.run(ghostpanel_command(
        tmp_path, "agent", "--listen", f"127.0.0.1:{free_port()}", "--engine", engine_url,
        "--cert", str(test_pki / "server.pem"), "--key", str(test_pki / "client.key")),
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "cannot use the certificate" in result.stderr
    assert str(test_pki / "client.key") in result.stderr and "Traceback" not in result.stderr


def test_the_engine_s_server_header_comes_through_alone(agent: RunningAgent) -> None:
    """Clients tell Podman from Docker by ``Server``: the agent must not add its own."""
    socket_path = agent.engine_url.removeprefix("unix://")
    with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path)) as engine:
        direct = engine.get("http://engine/_ping").headers.get_list("server")
    with agent.client() as http:
        answer = http.get("/_ping")
    assert answer.status_code == 200
    assert direct and answer.headers.get_list("server") == direct

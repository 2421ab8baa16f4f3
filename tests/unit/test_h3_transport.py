"""H3Transport against a real Hypercorn HTTP/3 server on loopback (no engine).

The server (``tests/unit/h3_server.py``, a tiny ASGI app) runs in a process of its own
with a throwaway certificate from the session's test PKI, on one port for QUIC (UDP)
and HTTPS (TCP), as the agent serves them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aioquic.quic.events import PingAcknowledged

from ghostpanel_kernel import EngineConnectionError, EngineTimeout, connect
from ghostpanel_kernel.engine import Endpoint, TLSConfig
from ghostpanel_kernel.engine import _h3_transport as h3_transport
from ghostpanel_kernel.engine._h3_transport import (
    IDLE_PROBE_AFTER,
    IDLE_TIMEOUT,
    MAX_SILENCE,
    H3Transport,
)
from ghostpanel_kernel.engine._transport import (
    BODY_EXTENSION,
    FIRST_BYTE_TIMEOUT,
    STREAM_EXTENSION,
)
from tests.agent_process import free_port
from tests.unit.h3_server import Server


@pytest.fixture
def server(test_pki: Path) -> Iterator[Server]:
    running = Server(test_pki, free_port()).start()
    yield running
    running.stop()


def _fingerprint(pki: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert((pki / "server.pem").read_text())
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
async def transport(server: Server, test_pki: Path) -> AsyncIterator[H3Transport]:
    endpoint = Endpoint.parse(f"h3://127.0.0.1:{server.port}",
                              tls=TLSConfig(ca_cert=str(test_pki / "ca.pem")))
    made = H3Transport(endpoint, connect_timeout=3)
    yield made
    await made.aclose()


def _request(port: int, path: str, *, method: str = "GET", content: Any = None,
             timeouts: dict[str, float | None] | None = None,
             stream: bool = False) -> httpx.Request:
    extensions: dict[str, Any] = {"timeout": timeouts or {"connect": 3, "read": 10,
                                                          FIRST_BYTE_TIMEOUT: 5}}
    if stream:
        extensions[STREAM_EXTENSION] = True
    return httpx.Request(method, f"https://127.0.0.1:{port}{path}", content=content,
                         extensions=extensions)


async def test_get_and_post_with_a_body(transport: H3Transport, server: Server) -> None:
    response = await transport.handle_async_request(_request(server.port, "/ping"))
    assert response.status_code == 200
    assert response.extensions[BODY_EXTENSION] == b"OK"
    assert response.headers["x-protocol"] == "3"  # HTTP/3 indeed, not the fallback
    assert response.http_version == "HTTP/3"  # and httpx's Response says so
    payload = bytes(range(256)) * 4096  # 1 MiB: many QUIC packets, flow control
    echoed = await transport.handle_async_request(
        _request(server.port, "/echo", method="POST", content=payload))
    assert echoed.extensions[BODY_EXTENSION] == (
        hashlib.sha256(payload).hexdigest().encode() + b" %d" % len(payload))


async def test_a_streamed_request_body(transport: H3Transport, server: Server) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for index in range(20):
            yield b"%05d" % index
    response = await transport.handle_async_request(
        _request(server.port, "/echo", method="POST", content=pieces()))
    expected = b"".join(b"%05d" % index for index in range(20))
    assert response.extensions[BODY_EXTENSION] == (
        hashlib.sha256(expected).hexdigest().encode() + b" 100")


async def test_a_streamed_response_arrives_piece_by_piece(transport: H3Transport,
                                                          server: Server) -> None:
    response = await transport.handle_async_request(
        _request(server.port, "/stream?n=4", stream=True,
                 timeouts={"connect": 3, "read": None, FIRST_BYTE_TIMEOUT: None}))
    seen: list[tuple[float, bytes]] = []
    async for piece in response.aiter_raw():
        seen.append((time.monotonic(), piece))
    assert b"".join(piece for _, piece in seen) == b"line 0\nline 1\nline 2\nline 3\n"
    # Pieces came as the server sent them (50 ms apart), not all at the end.
    assert seen[-1][0] - seen[0][0] > 0.1


async def test_a_stream_closed_early_leaves_the_connection_usable(
        transport: H3Transport, server: Server) -> None:
    response = await transport.handle_async_request(
        _request(server.port, "/stream?n=50", stream=True,
                 timeouts={"connect": 3, "read": None, FIRST_BYTE_TIMEOUT: None}))
    async for _ in response.aiter_raw():
        break
    await response.aclose()
    await asyncio.sleep(0.2)  # the server's next send meets the stopped stream
    again = await transport.handle_async_request(_request(server.port, "/ping"))
    assert again.extensions[BODY_EXTENSION] == b"OK"
    assert again.headers["x-protocol"] == "3"


async def test_fifty_requests_in_flight_share_one_connection(transport: H3Transport,
                                                             server: Server) -> None:
    connections: list[Any] = []
    original = transport._connect

    async def counting(timeout: float | None) -> Any:
        made = await original(timeout)
        connections.append(made)
        return made

    transport._connect = counting  # type: ignore[method-assign]
    responses = await asyncio.gather(*[
        transport.handle_async_request(_request(server.port, f"/echo?i={index}",
                                                method="POST", content=b"%d" % index))
        for index in range(50)])
    assert [r.extensions[BODY_EXTENSION] for r in responses] == [
        hashlib.sha256(b"%d" % index).hexdigest().encode() + b" %d" % len(b"%d" % index)
        for index in range(50)]
    assert len(connections) == 1


async def test_first_byte_timeout_cancels_the_stream_only(transport: H3Transport,
                                                          server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout, match=r"no answer within 0\.3 s"):
        await transport.handle_async_request(_request(
            server.port, "/slow", timeouts={"connect": 3, "read": 10, FIRST_BYTE_TIMEOUT: 0.3}))
    assert time.monotonic() - started < 2
    with pytest.raises(httpx.ReadTimeout, match=r"did not finish answering within 0\.4 s"):
        await transport.handle_async_request(_request(
            server.port, "/slow", timeouts={"connect": 3, "read": 0.4, FIRST_BYTE_TIMEOUT: 5}))
    await asyncio.sleep(3)  # the abandoned answers come, and are dropped
    response = await transport.handle_async_request(_request(server.port, "/ping"))
    assert response.status_code == 200
    assert response.headers["x-protocol"] == "3"  # the server's HTTP/3 side is still up


async def test_reconnects_after_the_server_restarts(transport: H3Transport,
                                                    server: Server) -> None:
    first = await transport.handle_async_request(_request(server.port, "/ping"))
    assert first.status_code == 200
    old = transport._connection
    server.stop()
    server.start()
    response = await transport.handle_async_request(_request(server.port, "/ping"))
    assert response.status_code == 200
    assert response.headers["x-protocol"] == "3"
    assert transport._connection is not old


async def test_a_ping_answered_before_a_restart_does_not_vouch_for_the_new_agent(
        transport: H3Transport, server: Server) -> None:
    # The flake of the test above, made certain: a PING went out before the restart
    # and its acknowledgement sat in the socket's buffer while the loop was busy (here:
    # blocked on purpose), to be read only after the restart. A request that relied on
    # that PING would wait its whole first-byte timeout on a connection the new agent
    # drops; with a PING of its own it is found dead and sent again at once.
    assert (await transport.handle_async_request(_request(server.port, "/ping"))
            ).status_code == 200
    old = transport._connection
    assert old is not None
    old.liveness()
    old.transmit()
    time.sleep(0.3)  # the agent acknowledges it; the loop does not read it yet
    server.stop()
    server.start()
    began = time.monotonic()
    response = await transport.handle_async_request(
        _request(server.port, "/ping", timeouts={"connect": 3, "read": 30,
                                                  FIRST_BYTE_TIMEOUT: 20}))
    assert response.status_code == 200 and response.headers["x-protocol"] == "3"
    assert transport._connection is not old and old.error is not None
    assert time.monotonic() - began < 10  # the silence limit and a handshake, not 20 s


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_reconnects_after_a_restart_it_did_not_see(transport: H3Transport,
                                                         server: Server, method: str) -> None:
    # The agent went away and came back while the client sent nothing, so no ICMP
    # error told it: the new server drops the old connection's packets. A GET is sent
    # there, hears nothing back (no ACK) and is sent again on a new connection; a POST
    # is not sent on a connection idle this long before a PING shows it alive, which
    # this one does not.
    assert (await transport.handle_async_request(_request(server.port, "/ping"))
            ).status_code == 200
    connection = transport._connection
    assert connection is not None
    if connection._timer is not None:  # no ACK or retransmission while it is down
        connection._timer.cancel()
        connection._timer = None
    server.stop()
    server.start()
    loop = asyncio.get_running_loop()
    # Idle long enough (what came in while the loop was blocked by the restart counts).
    while loop.time() - connection.last_received < IDLE_PROBE_AFTER + 0.05:
        await asyncio.sleep(0.05)
    assert connection.error is None  # it has noticed nothing
    began = time.monotonic()
    response = await transport.handle_async_request(
        _request(server.port, "/echo", method=method, content=b"once"))
    assert response.status_code == 200 and response.headers["x-protocol"] == "3"
    assert response.extensions[BODY_EXTENSION].endswith(b" 4")
    assert transport._connection is not connection and connection.error is not None
    # The probe's wait grows with a slow handshake up to MAX_SILENCE; without the probe
    # the request would wait for the QUIC idle timeout (IDLE_TIMEOUT, 30 s).
    assert time.monotonic() - began < MAX_SILENCE + 5 < IDLE_TIMEOUT


async def test_a_stream_whose_server_vanished_fails_rather_than_hangs(
        transport: H3Transport, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h3_transport, "KEEPALIVE_EVERY", 0.3)
    response = await transport.handle_async_request(
        _request(server.port, "/stream?n=100000", stream=True,
                 timeouts={"connect": 3, "read": None, FIRST_BYTE_TIMEOUT: None}))
    pieces = response.aiter_raw()
    assert (await anext(pieces)).startswith(b"line 0")
    server.stop()  # killed mid-stream, and back at once: it knows nothing of the stream
    server.start()
    began = time.monotonic()
    with pytest.raises(httpx.ReadError, match=r"stopped answering|connection lost"):
        async for _ in pieces:
            pass
    assert time.monotonic() - began < 3
    await response.aclose()


async def test_falls_back_to_https_when_udp_gets_no_answer(
        test_pki: Path, caplog: pytest.LogCaptureFixture) -> None:
    tcp_only = Server(test_pki, free_port(), quic=False).start()
    try:
        endpoint = Endpoint.parse(f"h3://127.0.0.1:{tcp_only.port}",
                                  tls=TLSConfig(ca_cert=str(test_pki / "ca.pem")))
        transport = H3Transport(endpoint, connect_timeout=3)
        with caplog.at_level(logging.WARNING, logger="ghostpanel.engine"):
            for _ in range(3):
                response = await transport.handle_async_request(
                    _request(tcp_only.port, "/ping"))
                assert response.status_code == 200
                assert response.headers["x-protocol"] == "1.1"
        await transport.aclose()
    finally:
        tcp_only.stop()
    warnings = [r for r in caplog.records if r.name == "ghostpanel.engine"]
    assert len(warnings) == 1
    assert "using HTTPS over TCP instead" in warnings[0].getMessage()


async def test_nothing_listening_at_all_is_a_connection_error(test_pki: Path) -> None:
    port = free_port()
    env = connect(f"h3://127.0.0.1:{port}", tls=TLSConfig(ca_cert=str(test_pki / "ca.pem")),
                  connect_timeout=1)
    try:
        with pytest.raises(EngineConnectionError, match="HTTPS \\(TCP\\) failed too"):
            await env.ping()
    finally:
        await env.aclose()


async def test_pinned_fingerprint_accepts_that_certificate_only(server: Server,
                                                                test_pki: Path) -> None:
    good = connect(f"h3://127.0.0.1:{server.port}", fingerprint=_fingerprint(test_pki))
    bad_pin = "00" * 32
    bad = connect(f"h3://127.0.0.1:{server.port}", fingerprint=bad_pin)
    bad_tcp = connect(f"https://127.0.0.1:{server.port}", fingerprint=bad_pin)
    try:
        assert await good.ping()
        for env in (bad, bad_tcp):
            with pytest.raises(EngineConnectionError) as caught:
                await env.ping()
            message = str(caught.value)
            assert "does not match the pinned fingerprint" in message
            assert "00:00:00" in message
            assert _fingerprint(test_pki).upper()[:2] + ":" in message
            assert "HTTPS (TCP)" not in message  # a TLS failure does not fall back
    finally:
        for env in (good, bad, bad_tcp):
            await env.aclose()


async def test_an_untrusted_certificate_is_refused(server: Server,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    env = connect(f"h3://127.0.0.1:{server.port}")  # the system store: not our test CA
    try:
        with pytest.raises(EngineConnectionError,
                           match=r"TLS handshake with .* failed: unable to get local issuer"):
            await env.ping()
    finally:
        await env.aclose()
    assert capfd.readouterr().err == ""  # aioquic's own log line is not printed too


async def test_the_engine_client_sends_the_token_over_h3(server: Server,
                                                         test_pki: Path) -> None:
    env = connect(f"h3://127.0.0.1:{server.port}", token="s3cret-token",
                  tls=TLSConfig(ca_cert=str(test_pki / "ca.pem")))
    try:
        response = await env.client._request("GET", "/headers", versioned=False)
        seen = json.loads(response.extensions[BODY_EXTENSION])
        assert seen["authorization"] == "Bearer s3cret-token"
        with pytest.raises(EngineTimeout):
            await env.client._request("GET", "/slow", versioned=False, timeout=0.3)
    finally:
        await env.aclose()


async def test_what_arrived_while_the_reader_was_busy_is_read_as_one_piece() -> None:
    stream = h3_transport._Stream(0)
    for piece in (b"line 1\nli", b"ne 2\n", b"line 3\n"):  # three QUIC packets' worth
        stream.chunks.append(piece)
    assert await stream.next_chunk() == b"line 1\nline 2\nline 3\n"
    stream.chunks.append(b"line 4\n")
    stream.ended = True
    assert await stream.next_chunk() == b"line 4\n"
    assert await stream.next_chunk() is None


async def test_a_later_ping_s_acknowledgement_answers_earlier_ones(
        transport: H3Transport, server: Server) -> None:
    # Many requests in flight, each with its PING: when the datagram carrying one of
    # them is lost, the agent acknowledging a later one shows the connection alive all
    # the same (it knew the connection after the lost PING was sent).
    assert (await transport.handle_async_request(_request(server.port, "/ping"))
            ).status_code == 200
    connection = transport._connection
    assert connection is not None
    first, second, third = (connection.liveness() for _ in range(3))
    uids = sorted(connection._pings)[-3:]
    connection.quic_event_received(PingAcknowledged(uid=uids[1]))
    assert first.done() and second.done() and not third.done()
    connection.quic_event_received(PingAcknowledged(uid=uids[2]))
    assert third.done() and connection.error is None


async def test_a_busy_agent_still_sending_is_not_declared_dead(
        transport: H3Transport, server: Server) -> None:
    # 50 requests in flight on a loaded machine: the agent acknowledges a PING late,
    # but its answers keep coming. Only silence (or nothing but packets read just after
    # the PING went, which a restarted agent's predecessor may have left) is death.
    assert (await transport.handle_async_request(_request(server.port, "/ping"))
            ).status_code == 200
    connection = transport._connection
    assert connection is not None
    loop = asyncio.get_running_loop()
    unanswered: asyncio.Future[None] = loop.create_future()  # a PING never acknowledged
    sent_at = loop.time() - 2 * connection.silence_limit
    connection.last_received = loop.time() - 0.01  # an answer just came
    assert connection.check_acknowledged(unanswered, sent_at)
    assert connection.error is None
    connection.last_received = sent_at + 0.01  # only what came right after the PING
    assert not connection.check_acknowledged(unanswered, sent_at)
    assert isinstance(connection.error, httpx.ReadError)

"""HTTP/3 to a GhostPanel agent (``h3://HOST:PORT``): an httpx transport on aioquic.

One QUIC connection per agent carries every request, each on its own stream, so fifty
requests in flight share one handshake and one UDP socket. The engine client above it
speaks httpx requests and responses only, as it does over :class:`EngineTransport`.

What it does besides sending requests:

- **Timeouts**, read from the request as :class:`EngineTransport` reads them:
  ``connect`` bounds the QUIC handshake (DNS included); ``ghostpanel.first_byte``
  the wait for the answer's head; ``read`` a whole non-streaming exchange. A request
  that times out gives up its stream, not the connection (see :meth:`_H3Protocol.cancel`).
- **Dead connections.** The UDP socket is connected, so an ICMP "port unreachable"
  (the agent stopped) fails the connection at once. A restarted agent, though, drops
  the packets of connections it no longer knows without a word: a PING rides with each
  request, and a connection whose PING is not acknowledged within
  :meth:`_H3Protocol.silence_limit` is declared dead. A request that fails because its
  connection died before any answer is sent again on a new one when it is replayable
  (the rule of :data:`REPLAYABLE_METHODS`); one that is not (a ``POST``) is not sent on
  a connection idle for :data:`IDLE_PROBE_AFTER` seconds before a PING shows it alive.
  While streams are open (a ``logs -f``), a PING every :data:`KEEPALIVE_EVERY` seconds
  keeps the connection alive, and one unanswered by the next ends it: a stream whose
  agent vanished fails within two periods rather than hang.
- **Fallback.** When UDP gets no answer within the connect timeout (or is refused)
  but HTTPS over TCP to the same port works, the transport says so once in the log
  (``ghostpanel.engine``) and sends requests over HTTPS; it tries HTTP/3 again after
  :data:`H3_RETRY_AFTER` seconds.
- **Errors** are httpx's transport errors (``ConnectError``, ``ConnectTimeout``,
  ``ReadError``, ``ReadTimeout``, ``RemoteProtocolError``), which the client maps to
  GhostPanel's errors in one place.

Limits: QUIC flow control is aioquic's own, which grants credit as data arrives rather
than as it is read, so a consumer slower than the agent buffers the difference; a
streamed request body is buffered by aioquic until the peer takes it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.h3.exceptions import H3Error
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    PingAcknowledged,
    QuicEvent,
    StreamReset,
)
from cryptography.hazmat.primitives.serialization import Encoding

from .._exceptions import EnvironmentClosed
from ._endpoint import Endpoint, certificate_fingerprint, fingerprint_mismatch
from ._transport import (
    BODY_EXTENSION,
    FIRST_BYTE_TIMEOUT,
    REPLAYABLE_METHODS,
    STREAM_EXTENSION,
    EngineTransport,
)

__all__ = ["H3_RETRY_AFTER", "H3Transport"]

_log = logging.getLogger("ghostpanel.engine")
# aioquic logs each failed connection at WARNING on its "quic" logger, which Python's
# last-resort handler prints to stderr when the application configured no logging: a
# second, rawer copy of the error this transport raises. A NullHandler keeps it out of
# stderr and still lets an application that configures logging see it.
logging.getLogger("quic").addHandler(logging.NullHandler())

#: Seconds without a packet from the agent after which a connection is probed (PING)
#: before it carries a request.
IDLE_PROBE_AFTER: Final = 2.0
#: Least wait for a PING's acknowledgement before the connection is declared dead;
#: three handshake times when longer (a slow path), but at most :data:`MAX_SILENCE`.
PROBE_TIMEOUT: Final = 1.0
#: Longest wait for that acknowledgement: a handshake slowed by a busy CPU is a poor
#: measure of the path, and a dead connection should not cost more than this.
MAX_SILENCE: Final = 3.0
#: Seconds between PINGs while streams are open; well under the idle timeout.
KEEPALIVE_EVERY: Final = 5.0
#: QUIC idle timeout asked for: a connection without any packet for this long is over.
IDLE_TIMEOUT: Final = 30.0
#: Seconds on HTTPS after a fallback before HTTP/3 is tried again.
H3_RETRY_AFTER: Final = 300.0

#: What ``httpx.Response.http_version`` says for an answer that came over HTTP/3 (one
#: that came over the HTTPS fallback says HTTP/1.1).
_HTTP_VERSION: Final = b"HTTP/3"

#: Headers HTTP/3 forbids (RFC 9114 4.2): the connection manages what they did.
_HOP_BY_HOP: Final = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                                b"transfer-encoding", b"upgrade", b"te", b"host"})


class _Stream:
    """One request's answer as it arrives: head, body pieces, end or failure."""

    __slots__ = ("changed", "chunks", "ended", "error", "headers", "stream_id")

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.chunks: deque[bytes] = deque()
        self.ended = False
        self.error: Exception | None = None
        self.changed = asyncio.Event()

    def fail(self, error: Exception) -> None:
        if self.error is None and not self.ended:
            self.error = error
            self.changed.set()

    async def head(self) -> list[tuple[bytes, bytes]]:
        while self.headers is None:
            if self.error is not None:
                raise self.error
            if self.ended:
                raise httpx.RemoteProtocolError("the agent ended the stream without a head")
            self.changed.clear()
            await self.changed.wait()
        return self.headers

    async def next_chunk(self) -> bytes | None:
        """The body that arrived since the last call (at least one piece, waiting for
        it), or None at the end of the body."""
        while True:
            if self.chunks:
                if len(self.chunks) == 1:
                    return self.chunks.popleft()
                # QUIC hands data over a packet (~1.2 kB) at a time; what came in while
                # the reader was busy goes up as one piece, so that a log's line
                # splitter (and every layer above) runs once for it, not once a packet.
                joined = b"".join(self.chunks)
                self.chunks.clear()
                return joined
            if self.ended:
                return None
            if self.error is not None:
                raise self.error
            self.changed.clear()
            await self.changed.wait()


class _H3Protocol(QuicConnectionProtocol):
    """One QUIC connection to the agent, with HTTP/3 on top and one :class:`_Stream`
    per request in flight."""

    def __init__(self, quic: QuicConnection, *, where: str, fingerprint: str | None) -> None:
        super().__init__(quic)
        self._http = H3Connection(quic)
        self.where = where
        self.fingerprint = fingerprint
        self.streams: dict[int, _Stream] = {}
        self.handshake: asyncio.Future[None] = self._loop.create_future()
        #: Done when the UDP socket is closed (asyncio closes it a loop turn after
        #: the transport's close()).
        self.lost: asyncio.Future[None] = self._loop.create_future()
        #: Why the connection ended; None while it is usable.
        self.error: Exception | None = None
        self.answered = False  # any packet came back: UDP reaches the agent
        self.last_received = self._loop.time()
        self._pings: dict[int, asyncio.Future[None]] = {}
        self._next_ping = 1  # PING ids of this class's own (the base keeps its apart)
        self._keepalive_ping: asyncio.Future[None] | None = None
        self._keepalive_sent = 0.0
        self._keepalive: asyncio.TimerHandle | None = None
        #: How long the handshake took: this path's round trip, near enough.
        self.handshake_time = 0.0

    @property
    def silence_limit(self) -> float:
        """Seconds within which the agent must acknowledge a PING."""
        return min(max(PROBE_TIMEOUT, 3 * self.handshake_time), MAX_SILENCE)

    # -- state ----------------------------------------------------------------------

    def usable(self) -> bool:
        """Whether the connection can carry a request: handshake done, not ended."""
        return self.error is None and self.handshake.done() and \
            self.handshake.exception() is None

    def _end(self, error: Exception) -> None:
        """The connection is over: fail what waits on it, release the socket."""
        if self.error is not None:
            return
        self.error = error
        if not self.handshake.done():
            self.handshake.set_exception(error)
            self.handshake.exception()  # retrieved: a caller that timed out is gone
        for stream in self.streams.values():
            stream.fail(error)
        self.streams.clear()
        for waiter in self._pings.values():
            if not waiter.done():
                waiter.set_result(None)
        self._pings.clear()
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()

    def abort(self, error: Exception) -> None:
        """Close: say goodbye to the agent (CONNECTION_CLOSE), then drop everything."""
        if self.error is None and self._transport is not None:
            self._quic.close(error_code=ErrorCode.H3_NO_ERROR)
            self.transmit()
        self._end(error)

    # -- asyncio callbacks ----------------------------------------------------------

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        self.last_received = self._loop.time()
        self.answered = True
        if self.error is None:
            super().datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # The socket is connected: ICMP "port unreachable" arrives here as
        # ConnectionRefusedError. Nothing listens on the agent's UDP port any more.
        if isinstance(exc, ConnectionRefusedError) and not self.handshake.done():
            self._end(httpx.ConnectError(f"{self.where} refused HTTP/3 (nothing "
                                         "listens on its UDP port)"))
        else:
            self._end(httpx.ReadError(f"{self.where}: connection lost ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(httpx.ReadError(f"{self.where}: connection lost"))
        if not self.lost.done():
            self.lost.set_result(None)

    def transmit(self) -> None:
        """Send what QUIC has to send, and arm its timer (as the base class does).

        Datagrams go without an address: the socket is connected, and a system other
        than Linux refuses an address on a connected socket (EISCONN).
        """
        self._transmit_task = None
        if self.error is not None or self._transport is None:
            return
        try:
            for data, _ in self._quic.datagrams_to_send(now=self._loop.time()):
                self._transport.sendto(data)
        except OSError as error:
            self._end(httpx.ConnectError(f"{self.where}: {error.strerror or error}"))
            return
        timer_at = self._quic.get_timer()
        if self._timer is not None and self._timer_at != timer_at:
            self._timer.cancel()
            self._timer = None
        if self._timer is None and timer_at is not None:
            self._timer = self._loop.call_at(timer_at, self._handle_timer)
        self._timer_at = timer_at

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            self._handshake_completed()
        elif isinstance(event, ConnectionTerminated):
            self._end(self._terminated_error(event))
            return
        elif isinstance(event, PingAcknowledged):
            self._acknowledged(event.uid)
        elif isinstance(event, StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                stream.fail(httpx.ReadError(
                    f"{self.where} reset the stream (error {event.error_code:#x})"))
        for http_event in self._http.handle_event(event):
            self._http_event(http_event)

    def _http_event(self, event: H3Event) -> None:
        if not isinstance(event, (HeadersReceived, DataReceived)):
            return
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return  # cancelled by us: what is still in flight is dropped
        if isinstance(event, HeadersReceived):
            if stream.headers is None:
                stream.headers = list(event.headers)
            # Later HEADERS are trailers: engines send none.
        elif event.data:
            stream.chunks.append(event.data)
        if event.stream_ended:
            stream.ended = True
            del self.streams[event.stream_id]
        stream.changed.set()

    def _handshake_completed(self) -> None:
        if self.fingerprint is not None:
            # aioquic has no verification hook: the pinned mode turns its chain check
            # off, and the peer's certificate is compared here, before any request.
            certificate = getattr(self._quic.tls, "_peer_certificate", None)
            if certificate is None:
                self.abort(httpx.ConnectError(
                    f"{self.where} showed no certificate to check the pin against"))
                return
            seen = certificate_fingerprint(certificate.public_bytes(Encoding.DER))
            if seen != self.fingerprint:
                self.abort(httpx.ConnectError(
                    fingerprint_mismatch(self.fingerprint, seen, self.where)))
                return
        if not self.handshake.done():
            self.handshake.set_result(None)

    def _terminated_error(self, event: ConnectionTerminated) -> Exception:
        reason = event.reason_phrase or f"error {event.error_code:#x}"
        if not self.handshake.done():
            if 0x100 <= event.error_code < 0x200:  # CRYPTO_ERROR: a TLS alert
                return httpx.ConnectError(f"TLS handshake with {self.where} failed: {reason}")
            if event.error_code == 0 and not self.answered:  # aioquic's own idle timeout
                return httpx.ConnectTimeout(f"{self.where} did not answer over HTTP/3")
            return httpx.ConnectError(f"HTTP/3 connection to {self.where} failed: {reason}")
        return httpx.ReadError(f"{self.where} closed the HTTP/3 connection ({reason})")

    # -- liveness -------------------------------------------------------------------

    def liveness(self) -> asyncio.Future[None]:
        """Done when the agent acknowledges a PING sent now.

        The PING is queued, not sent: the next :meth:`transmit` (the request's own)
        carries it in the same datagram. Only a peer that knows this connection
        acknowledges it, which a packet merely coming in (a late one from the agent
        before it restarted) does not show.

        Always a new PING, never one still unanswered: the acknowledgement of a PING
        sent before a restart can arrive after it (it sat in the socket's buffer while
        the loop was busy), and would then vouch for a connection the new agent does
        not know, so a request on it would wait for its whole timeout instead of being
        sent again. A PING frame is one byte in a datagram that goes anyway.
        """
        uid = self._next_ping
        self._next_ping += 1
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._pings[uid] = waiter
        self._quic.send_ping(uid)
        return waiter

    def _acknowledged(self, uid: int) -> None:
        """PING ``uid`` was acknowledged: so is every waiter of an earlier PING.

        The agent acknowledging a PING sent later shows as well as the earlier one's
        own acknowledgement that it knew this connection after those were sent: with
        many requests in flight a lost datagram (the earlier PING in it) must not get a
        live connection declared dead while later ones are answered.
        """
        while self._pings:
            first = next(iter(self._pings))  # the oldest: ids are given in order
            if first > uid:
                return
            waiter = self._pings.pop(first)
            if not waiter.done():
                waiter.set_result(None)

    async def alive(self, timeout: float) -> bool:
        """Whether the agent acknowledges a PING within ``timeout`` seconds."""
        waiter = self.liveness()
        self.transmit()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(waiter)
        except TimeoutError:
            return False
        return self.error is None

    def check_acknowledged(self, waiter: asyncio.Future[None], sent_at: float) -> bool:
        """Whether the connection still shows signs of life: ``waiter``'s PING (sent at
        loop time ``sent_at``) was acknowledged, or packets came from the agent in the
        latter half of the wait (a busy agent, slow to acknowledge, still sending).
        Otherwise it is declared dead (aborted) and the answer is False.

        Packets that came only just after ``sent_at`` do not count: they may be a
        restarted agent's predecessor's, read late from the socket's buffer.
        """
        if self.error is not None:
            return False
        if waiter.done() or self.last_received > sent_at + self.silence_limit / 2:
            return True
        self.abort(httpx.ReadError(f"{self.where} stopped answering on this HTTP/3 "
                                   "connection"))
        return False

    def keep_alive(self) -> None:
        """PING every :data:`KEEPALIVE_EVERY` seconds while streams are open."""
        if self._keepalive is None and self.error is None:
            self._keepalive = self._loop.call_later(KEEPALIVE_EVERY, self._keepalive_tick)

    def _keepalive_tick(self) -> None:
        self._keepalive = None
        if self.error is None and self.streams:
            # The last tick's PING still unanswered a whole period later: the agent is
            # gone (or restarted, and drops this connection's packets without a word).
            if self._keepalive_ping is not None and not self.check_acknowledged(
                    self._keepalive_ping, self._keepalive_sent):
                return
            self._keepalive_ping = self.liveness()
            self._keepalive_sent = self._loop.time()
            self.transmit()
            self.keep_alive()

    # -- requests -------------------------------------------------------------------

    def open_stream(self, headers: list[tuple[bytes, bytes]], *, end: bool) -> _Stream:
        stream_id = self._quic.get_next_available_stream_id()
        stream = _Stream(stream_id)
        self.streams[stream_id] = stream
        self._http.send_headers(stream_id, headers, end_stream=end)
        self.transmit()
        return stream

    def send_body(self, stream: _Stream, data: bytes, *, end: bool) -> None:
        if stream.error is not None:
            raise stream.error
        self._http.send_data(stream.stream_id, data, end_stream=end)
        self.transmit()

    def cancel(self, stream: _Stream) -> None:
        """Give up a stream whose answer is no longer wanted (timeout, closed early).

        Once its head has come (a ``logs -f`` closed by its reader), the agent is asked
        to stop sending (STOP_SENDING, ``H3_REQUEST_CANCELLED``). Before that, the
        stream is only forgotten and its late answer dropped: Hypercorn 0.18 answers a
        stream stopped before its head with a 500 that aioquic refuses to send, and
        the exception ends its whole HTTP/3 listener.
        """
        if self.streams.pop(stream.stream_id, None) is None or self.error is not None:
            return
        if stream.headers is None or stream.ended:
            return
        try:
            self._quic.stop_stream(stream.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
        except ValueError:  # that direction has finished meanwhile
            return
        self.transmit()


class _H3Body(httpx.AsyncByteStream):
    """A streamed response body, read off its QUIC stream as the caller iterates."""

    def __init__(self, connection: _H3Protocol, stream: _Stream) -> None:
        self._connection = connection
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._stream.next_chunk()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._connection.cancel(self._stream)


class _Unreachable(Exception):
    """No answer came over UDP (nothing at all, or ICMP "unreachable"): HTTPS may work."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class _DeadConnection(Exception):
    """The connection ended before any answer to the request: it may go on another."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class H3Transport(httpx.AsyncBaseTransport):
    """HTTP/3 (QUIC) to one agent, falling back to HTTPS when UDP does not get through.

    Parameters
    ----------
    endpoint
        The agent (``h3://host:port``); its :class:`TLSConfig` applies (CA, pinned
        fingerprint, client certificate), to the HTTPS fallback too.
    connect_timeout
        Seconds for the QUIC handshake when the request names none.
    local_address
        The local IP address to send from (as httpx's ``local_address``); None lets
        the system choose. An agent's QUIC policy admits peers by address.

    Examples
    --------
    >>> transport = H3Transport(Endpoint.parse("h3://127.0.0.1:7443"))  # doctest: +SKIP
    """

    def __init__(self, endpoint: Endpoint, *, connect_timeout: float = 5.0,
                 local_address: str | None = None) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.local_address = local_address
        self._where = endpoint.host_header
        self._configuration = self._quic_configuration()
        self._connection: _H3Protocol | None = None
        self._connecting = asyncio.Lock()
        self._fallback: EngineTransport | None = None
        self._fallback_until = 0.0
        self._warned = False
        self._closed = False

    def _quic_configuration(self) -> QuicConfiguration:
        tls = self.endpoint.tls
        configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                          idle_timeout=IDLE_TIMEOUT,
                                          server_name=self.endpoint.host)
        if tls is not None:
            if tls.fingerprint is not None or not tls.verify:
                configuration.verify_mode = ssl.CERT_NONE
            if tls.ca_cert is not None:
                configuration.load_verify_locations(cafile=tls.ca_cert)
            if tls.client_cert is not None:
                configuration.load_cert_chain(tls.client_cert, tls.client_key)
        return configuration

    # -- connections ----------------------------------------------------------------

    async def _connect(self, timeout: float | None) -> _H3Protocol:
        loop = asyncio.get_running_loop()
        host, port = self.endpoint.host or "", self.endpoint.port or 0
        configuration = self._configuration
        fingerprint = self.endpoint.tls.fingerprint if self.endpoint.tls else None
        sock: socket.socket | None = None
        protocol: _H3Protocol | None = None
        try:
            async with asyncio.timeout(timeout):
                try:
                    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
                except OSError as error:
                    raise httpx.ConnectError(f"cannot resolve {host}: {error}") from error
                family, _, proto, _, address = infos[0]
                sock = socket.socket(family, socket.SOCK_DGRAM, proto)
                sock.setblocking(False)
                if self.local_address is not None:
                    sock.bind((self.local_address, 0))
                # Connected, so that ICMP errors reach error_received.
                sock.connect(address)
                _, created = await loop.create_datagram_endpoint(
                    lambda: _H3Protocol(QuicConnection(configuration=configuration),
                                        where=self._where, fingerprint=fingerprint),
                    sock=sock)
                sock = None  # the transport owns it now
                protocol = created
                began = loop.time()
                protocol.connect(address)
                await asyncio.shield(protocol.handshake)
                protocol.handshake_time = loop.time() - began
        except TimeoutError:
            timed_out = httpx.ConnectTimeout(f"{self._where} did not answer over HTTP/3 "
                                             f"(UDP) within {timeout:g} s")
            if protocol is not None:
                protocol._end(timed_out)
            if protocol is None or not protocol.answered:
                raise _Unreachable(timed_out) from None
            raise timed_out from None
        except httpx.ConnectError as error:
            if protocol is not None and not protocol.answered:
                raise _Unreachable(error) from None
            raise
        except OSError as error:
            raise httpx.ConnectError(f"{self._where}: {error.strerror or error}") from error
        except BaseException:
            if protocol is not None:
                protocol._end(httpx.ConnectError("connection attempt abandoned"))
            raise
        finally:
            if sock is not None:
                sock.close()
        return protocol

    async def _connection_for(self, connect_timeout: float | None, *, probe: bool
                              ) -> _H3Protocol:
        """A usable connection: the current one, else a new one.

        With ``probe``, a current connection idle for :data:`IDLE_PROBE_AFTER` is first
        shown alive by a PING: a request that must not be sent twice should not go on
        a connection that may be dead.
        """
        current = self._connection
        if current is not None and current.usable():
            loop = asyncio.get_running_loop()
            if not probe or loop.time() - current.last_received < IDLE_PROBE_AFTER:
                return current
            if await current.alive(current.silence_limit):
                return current
            current.abort(httpx.ReadError(f"{self._where} stopped answering on this "
                                          "HTTP/3 connection"))
        async with self._connecting:
            # Requests that waited here use the connection the first one made.
            if self._connection is not None and self._connection.usable():
                return self._connection
            if self._closed:
                raise EnvironmentClosed(f"the connection to {self._where} was closed; "
                                        "connect again")
            self._connection = await self._connect(connect_timeout)
            return self._connection

    # -- requests -------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` over HTTP/3 (or the HTTPS fallback) and return its answer."""
        if self._closed:
            raise EnvironmentClosed(f"the connection to {self._where} was closed; "
                                    "connect again")
        loop = asyncio.get_running_loop()
        if self._fallback is not None:
            if loop.time() < self._fallback_until:
                return await self._fallback.handle_async_request(request)
            await self._fallback.aclose()  # time to try HTTP/3 again
            self._fallback = None
        timeouts = request.extensions.get("timeout", {})
        connect_timeout = timeouts.get("connect", self.connect_timeout)
        for attempt in range(2):
            try:
                connection = await self._connection_for(
                    connect_timeout, probe=not self._replayable(request))
            except _Unreachable as unreachable:
                # Only silence falls back: an agent that answered and failed the
                # handshake (a TLS alert, a wrong certificate) fails the same over TCP.
                return await self._fall_back(request, unreachable.error)
            try:
                return await self._exchange(connection, request)
            except _DeadConnection as dead:
                if attempt == 1 or not self._replayable(request):
                    raise dead.error from None
        raise AssertionError("unreachable")

    @staticmethod
    def _replayable(request: httpx.Request) -> bool:
        return request.method in REPLAYABLE_METHODS and isinstance(request.stream,
                                                                   httpx.ByteStream)

    async def _fall_back(self, request: httpx.Request, error: httpx.TransportError
                         ) -> httpx.Response:
        """Try HTTPS over TCP; switch to it when it works where UDP did not."""
        fallback = EngineTransport(self.endpoint, connect_timeout=self.connect_timeout)
        try:
            response = await fallback.handle_async_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as tcp_error:
            await fallback.aclose()
            raise type(error)(f"{error}; HTTPS (TCP) failed too: {tcp_error}") from tcp_error
        if not self._warned:
            self._warned = True
            _log.warning("HTTP/3 to %s failed (%s); using HTTPS over TCP instead",
                         self._where, error)
        self._fallback = fallback
        self._fallback_until = asyncio.get_running_loop().time() + H3_RETRY_AFTER
        return response

    def _headers(self, request: httpx.Request) -> list[tuple[bytes, bytes]]:
        url = request.url
        authority = request.headers.get("host", self._where).encode()
        headers = [(b":method", request.method.encode()), (b":scheme", b"https"),
                   (b":authority", authority), (b":path", url.raw_path)]
        headers += [(name.lower(), value) for name, value in request.headers.raw
                    if name.lower() not in _HOP_BY_HOP]
        return headers

    async def _exchange(self, connection: _H3Protocol, request: httpx.Request
                        ) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        total = timeouts.get("read")
        first_byte = timeouts.get(FIRST_BYTE_TIMEOUT)
        streaming = bool(request.extensions.get(STREAM_EXTENSION))
        loop = asyncio.get_running_loop()
        deadline = None if total is None else loop.time() + total
        body = request.stream
        in_memory = isinstance(body, httpx.ByteStream)
        payload = b"".join(body) if in_memory else b""  # type: ignore[arg-type]
        try:
            # A PING rides with the request: its acknowledgement shows the agent knows
            # this connection (see the watchdog below).
            alive = connection.liveness()
            sent_at = loop.time()
            stream = connection.open_stream(self._headers(request),
                                            end=in_memory and not payload)
        except (H3Error, AssertionError, ValueError) as error:
            # The connection ended between the check and the send: nothing went out.
            raise _DeadConnection(httpx.ConnectError(
                f"{self._where}: HTTP/3 connection unusable ({error!r})")) from error
        answered = False
        watchdog: asyncio.TimerHandle | None = None
        try:
            async with asyncio.timeout_at(deadline):
                if in_memory:
                    if payload:
                        connection.send_body(stream, payload, end=True)
                else:
                    async for chunk in body:  # type: ignore[union-attr]
                        if chunk:
                            connection.send_body(stream, chunk, end=False)
                    connection.send_body(stream, b"", end=True)
                # An agent that restarted drops this connection's packets silently:
                # no acknowledgement of the PING in time, and nothing else coming,
                # means it is gone. A busy agent that still sends is watched again.

                def watch(waiter: asyncio.Future[None], since: float) -> None:
                    nonlocal watchdog
                    if connection.check_acknowledged(waiter, since) and not waiter.done():
                        again = connection.liveness()
                        connection.transmit()
                        watchdog = loop.call_later(connection.silence_limit, watch, again,
                                                   loop.time())

                watchdog = loop.call_later(connection.silence_limit, watch, alive, sent_at)
                waits_head = first_byte is not None and (
                    deadline is None or loop.time() + first_byte < deadline)
                async with asyncio.timeout(first_byte if waits_head else None):
                    raw_headers = await stream.head()
                answered = True
                watchdog.cancel()
                status, headers = self._status(raw_headers)
                if streaming:
                    connection.keep_alive()
                    return httpx.Response(status, headers=headers,
                                          stream=_H3Body(connection, stream),
                                          request=request,
                                          extensions={"http_version": _HTTP_VERSION})
                pieces = []
                while (chunk := await stream.next_chunk()) is not None:
                    pieces.append(chunk)
        except TimeoutError:
            connection.cancel(stream)
            if not answered and not alive.done() and \
                    loop.time() - sent_at >= connection.silence_limit:
                # Not even the PING that went with the request was acknowledged, in all
                # that time: the connection is dead, not the agent slow (unless the
                # agent is still sending).
                connection.check_acknowledged(alive, sent_at)
                if connection.error is not None:
                    raise _DeadConnection(connection.error) from None
            if not answered and first_byte is not None and (total is None
                                                            or first_byte < total):
                raise httpx.ReadTimeout(f"{self._where} sent no answer within "
                                        f"{first_byte:g} s") from None
            raise httpx.ReadTimeout(f"{self._where} did not finish answering within "
                                    f"{total:g} s") from None
        except httpx.TransportError as error:
            if not answered and connection.error is error:
                raise _DeadConnection(error) from error
            raise
        except BaseException:
            connection.cancel(stream)
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
        content = b"".join(pieces)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content),
                              request=request, extensions={BODY_EXTENSION: content,
                                                           "http_version": _HTTP_VERSION})

    def _status(self, raw: list[tuple[bytes, bytes]]
                ) -> tuple[int, list[tuple[bytes, bytes]]]:
        status = None
        headers = []
        for name, value in raw:
            if name == b":status":
                status = value
            elif not name.startswith(b":"):
                headers.append((name, value))
        if status is None or not status.isdigit() or len(status) != 3:
            raise httpx.RemoteProtocolError(f"{self._where} answered without a valid "
                                            f":status ({status!r})")
        return int(status), headers

    async def aclose(self) -> None:
        """Close the QUIC connection (and the HTTPS fallback); refuse further requests."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.abort(EnvironmentClosed(f"the connection to {self._where} was "
                                               "closed"))
            # Let asyncio close the socket now, not after the caller's loop has ended.
            await asyncio.wait([connection.lost], timeout=1)
        if self._fallback is not None:
            await self._fallback.aclose()
            self._fallback = None

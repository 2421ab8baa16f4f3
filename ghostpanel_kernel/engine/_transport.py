"""A lean HTTP/1.1 transport for engine sockets, plugged into httpx.

Why not ``httpx.AsyncHTTPTransport``: measured against Podman on this machine, its
httpcore pool costs 0.83 ms per ``/_ping`` (raw socket: 0.13 ms) and gets *slower* with
50 requests in flight, because every request scans the pool under a lock
(encode/httpx#3215). Engine sockets need far less than a general HTTP client: one origin,
HTTP/1.1, keep-alive. This transport keeps a LIFO stack of idle connections (O(1) to take
and return one) and parses responses straight off :class:`asyncio.StreamReader`.

It is an ordinary :class:`httpx.AsyncBaseTransport`, so the client above it speaks only
httpx requests and responses and unit tests swap in :class:`httpx.MockTransport`.
Socket-level failures are raised as httpx's own transport errors; the client maps those
to GhostPanel's errors in one place. A peer that answers something other than HTTP/1.x
is a :class:`httpx.RemoteProtocolError` whose message quotes what it sent; a connection
that ends early is a :class:`httpx.ReadError`.

Replays follow Go's ``net/http`` (``persistConn.shouldRetryRequest``): a request that
fails on a reused keep-alive connection is sent again on another one only when nothing
of it was written (an idle connection the engine had closed is dropped before use), or
when it is replayable -- ``GET``, ``HEAD``, ``OPTIONS`` or ``TRACE`` with an in-memory
body -- and no byte of the answer had arrived. A ``POST`` (create, kill, remove...) is
never sent twice: the engine may have acted on the first copy.

Timeouts, all per request: the connection (and TLS handshake) has ``connect``; the
answer's head must arrive within ``ghostpanel.first_byte`` seconds of sending (an engine
answers at once, so a short limit finds a silent host quickly; None for no limit); a
whole non-streaming exchange, body included, has ``read`` seconds. Streams have no limit
after their head.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from typing import Final

import httpx

from .._exceptions import EnvironmentClosed
from ._endpoint import Endpoint

__all__ = ["BODY_EXTENSION", "FIRST_BYTE_TIMEOUT", "REPLAYABLE_METHODS", "STREAM_EXTENSION",
           "ChunkedDecoder", "EngineTransport"]

#: Request extension asking the transport to hand the body over as a live stream instead
#: of reading it before returning (logs, events, stats, pulls).
STREAM_EXTENSION: Final = "ghostpanel.stream"
#: Response extension holding a body this transport already read. ``Response.aread()``
#: would copy it through httpx's decoder chain again (about 19 µs per request here).
BODY_EXTENSION: Final = "ghostpanel.body"
#: Key of the request's ``timeout`` extension: seconds from the request written to the
#: answer's status line and headers (None: no limit).
FIRST_BYTE_TIMEOUT: Final = "ghostpanel.first_byte"
#: Methods sent again after a stale keep-alive connection failed, as Go's
#: ``Request.isReplayable`` lists them. Not ``PUT``/``DELETE``, which urllib3 replays:
#: RFC 9110 calls them idempotent, but a replayed ``DELETE /containers/web`` answers 404
#: for the container the first copy removed, and ``PUT /archive`` uploads can be large.
REPLAYABLE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_READ_SIZE: Final = 256 * 1024
#: Heads made only of line ends skipped before an answer's status line (see _read_head).
_MAX_LEADING_BLANK_HEADS: Final = 4
#: Seconds :meth:`EngineTransport.aclose` waits for TLS peers to answer ``close_notify``.
_TLS_CLOSE_TIMEOUT: Final = 1.0
_CHUNK_SIZE: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
_NO_BODY_STATUS: Final = frozenset({204, 304})


class ChunkedDecoder:
    """Incremental decoder for ``Transfer-Encoding: chunked`` bodies.

    ``feed`` takes any slice of the wire bytes and returns the payload bytes they
    complete, joined, so a stream of tiny chunks (Podman sends one per log line) costs
    one ``find`` and one slice per chunk rather than one read call per chunk.
    """

    __slots__ = ("_buffer", "_remaining", "_skip_crlf", "done")

    def __init__(self) -> None:
        self._buffer = b""
        self._remaining = 0
        self._skip_crlf = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Consume ``data``; return the payload it completes (possibly empty)."""
        # State lives in locals while the loop runs: it runs once per log line.
        if self.done:
            return b""  # trailers, if any, are ignored: engines send none
        buffer = self._buffer + data if self._buffer else data
        pieces: list[bytes] = []
        append = pieces.append
        find = buffer.find
        fullmatch = _CHUNK_SIZE.fullmatch
        pos = 0
        end = len(buffer)
        remaining = self._remaining
        skip_crlf = self._skip_crlf
        while True:
            if remaining:
                stop = pos + remaining
                if stop > end:
                    if pos < end:
                        append(buffer[pos:])
                    remaining = stop - end
                    pos = end
                    break
                append(buffer[pos:stop])
                pos = stop
                remaining = 0
                skip_crlf = True
            if skip_crlf:
                if end - pos < 2:
                    break
                pos += 2
                skip_crlf = False
            eol = find(b"\r\n", pos)
            if eol < 0:
                break
            size_field = buffer[pos:eol]
            if not fullmatch(size_field):  # not bare hex: extensions, spaces, or garbage
                size_field = size_field.split(b";", 1)[0].strip()
                if not fullmatch(size_field):
                    raise httpx.RemoteProtocolError(
                        f"malformed chunk size {size_field[:20]!r} in engine response")
            size = int(size_field, 16)
            pos = eol + 2
            if not size:
                self.done = True
                break
            remaining = size
        self._remaining = remaining
        self._skip_crlf = skip_crlf
        self._buffer = buffer[pos:] if pos < end else b""
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _Connection:
    """One keep-alive connection to the engine."""

    __slots__ = ("expired", "reader", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.expired = False
        self.reused = False

    def close(self) -> None:
        self.writer.close()

    def expire(self) -> None:
        """Timeout: abort the socket, so that the pending read or write fails at once."""
        self.expired = True
        self.writer.transport.abort()

    def usable(self) -> bool:
        """Whether an idle connection can carry a request: the engine has not closed it.

        The event loop reads idle sockets too, so an engine that closed the connection
        (Go's server does after its idle timeout) has already been seen: dropping such a
        connection writes nothing on it, which makes any request safe to send elsewhere.
        """
        return not (self.writer.is_closing() or self.reader.at_eof()
                    or self.reader.exception() is not None)


class _StaleConnection(Exception):
    """A reused connection failed before any byte of the answer: try another one."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Framing:
    """How a response body ends: by length, by chunks, or by the connection closing."""

    __slots__ = ("chunked", "length", "reusable")

    def __init__(self, *, chunked: bool, length: int | None, reusable: bool) -> None:
        self.chunked = chunked
        self.length = length
        self.reusable = reusable


def _where(endpoint: Endpoint) -> str:
    return endpoint.socket_path or endpoint.host_header


def _not_http(endpoint: Endpoint, data: bytes) -> httpx.RemoteProtocolError:
    """The error for a peer whose answer does not start as HTTP/1.x does."""
    where = _where(endpoint)
    if data[:1] in (b"\x15", b"\x16"):  # a TLS record: alert or handshake
        return httpx.RemoteProtocolError(
            f"{where} answered with TLS, not plain HTTP: is it an https:// endpoint?")
    return httpx.RemoteProtocolError(
        f"{where} does not speak HTTP, so it is not an engine: it sent {data[:60]!r}")


def _transport_error(exc: BaseException, endpoint: Endpoint, *, connecting: bool,
                     expired: bool = False) -> Exception | None:
    """The httpx transport error for a socket-level failure, or None to let it pass."""
    where = _where(endpoint)
    if expired:
        return httpx.ReadTimeout(f"no answer from {where} in time")
    if isinstance(exc, FileNotFoundError):
        return httpx.ConnectError(f"engine socket {where} does not exist")
    if isinstance(exc, ConnectionRefusedError):
        return httpx.ConnectError(f"connection to {where} refused")
    if isinstance(exc, PermissionError):
        return httpx.ConnectError(f"no permission to open {where}")
    if isinstance(exc, ssl.SSLError):
        return httpx.ConnectError(f"TLS handshake with {where} failed: {exc}")
    if isinstance(exc, TimeoutError):
        if connecting:
            return httpx.ConnectTimeout(f"{where} did not accept a connection in time")
        return httpx.ReadTimeout(f"no answer from {where} in time")
    if isinstance(exc, asyncio.IncompleteReadError):
        return httpx.ReadError(f"{where} closed the connection mid-response")
    if isinstance(exc, asyncio.LimitOverrunError):
        return httpx.RemoteProtocolError(f"{where} sent an oversized header")
    if isinstance(exc, OSError):
        if connecting:
            return httpx.ConnectError(f"{where}: {exc.strerror or exc}")
        return httpx.ReadError(f"{where}: {exc.strerror or exc}")
    return None


class _socket_errors:
    """Turn socket-level failures into httpx's transport errors (and nothing else).

    A class, not ``@contextlib.contextmanager``: a generator-based manager costs ~1 us
    more per use.
    """

    __slots__ = ("connecting", "endpoint")

    def __init__(self, endpoint: Endpoint, *, connecting: bool) -> None:
        self.endpoint = endpoint
        self.connecting = connecting

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc is None:
            return
        error = _transport_error(exc, self.endpoint, connecting=self.connecting)
        if error is not None:
            raise error from exc


class _BodyStream(httpx.AsyncByteStream):
    """A response body read off the connection as the caller iterates it."""

    def __init__(self, transport: EngineTransport, conn: _Connection, framing: _Framing,
                 initial: bytes = b"") -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._framing = framing
        self._initial = initial

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            raise httpx.StreamClosed()
        framing = self._framing
        reader = conn.reader
        endpoint = self._transport.endpoint
        with _socket_errors(endpoint, connecting=False):
            if framing.chunked:
                decoder = ChunkedDecoder()
                data = self._initial
                while True:
                    if data:
                        payload = decoder.feed(data)
                        if payload:
                            yield payload
                        if decoder.done:
                            break
                    data = await reader.read(_READ_SIZE)
                    if not data:
                        raise asyncio.IncompleteReadError(b"", None)
            elif framing.length is not None:
                remaining = framing.length
                while remaining:
                    data = await reader.read(min(remaining, _READ_SIZE))
                    if not data:
                        raise asyncio.IncompleteReadError(b"", remaining)
                    remaining -= len(data)
                    yield data
            else:
                while data := await reader.read(_READ_SIZE):
                    yield data
        self._release(reusable=framing.reusable)

    def _release(self, *, reusable: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._transport._release(conn, reusable=reusable)

    async def aclose(self) -> None:
        # Closed before the end: the rest of the body is still on the wire, so the
        # connection cannot carry another request.
        self._release(reusable=False)


class EngineTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 to one engine over a unix socket, TCP or TLS, with keep-alive.

    Parameters
    ----------
    endpoint
        Where the engine listens.
    connect_timeout
        Seconds to wait for a connection (and TLS handshake) before giving up.
    max_idle
        Idle keep-alive connections kept for reuse; more are closed when released.

    Examples
    --------
    >>> transport = EngineTransport(Endpoint.parse("unix:///run/podman/podman.sock"))
    """

    def __init__(self, endpoint: Endpoint, *, connect_timeout: float = 5.0,
                 max_idle: int = 64) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: list[_Connection] = []
        self._ssl = endpoint.tls.ssl_context() if endpoint.tls is not None else None
        self._closed = False

    async def _connect(self, timeout: float | None) -> _Connection:
        endpoint = self.endpoint
        with _socket_errors(endpoint, connecting=True):
            async with asyncio.timeout(timeout):
                if endpoint.socket_path is not None:
                    reader, writer = await asyncio.open_unix_connection(
                        endpoint.socket_path, limit=_READ_SIZE)
                else:
                    reader, writer = await asyncio.open_connection(
                        endpoint.host, endpoint.port, ssl=self._ssl, limit=_READ_SIZE,
                        server_hostname=endpoint.host if self._ssl else None)
        return _Connection(reader, writer)

    def _release(self, conn: _Connection, *, reusable: bool) -> None:
        if reusable and not self._closed and len(self._idle) < self.max_idle:
            conn.reused = True
            self._idle.append(conn)
        else:
            conn.close()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its response (body read unless streaming)."""
        if self._closed:
            raise EnvironmentClosed(
                f"the connection to {_where(self.endpoint)} was closed; connect again")
        while self._idle:
            conn = self._idle.pop()
            if not conn.usable():
                conn.close()  # nothing was written on it: any request may go elsewhere
                continue
            try:
                return await self._exchange(conn, request)
            except _StaleConnection:
                # The engine closed this kept-alive connection as the request went out,
                # and no byte of an answer came: it tells nothing about the request, and
                # this one is safe to send again (see REPLAYABLE_METHODS).
                continue
        timeouts = request.extensions.get("timeout", {})
        connect_timeout = timeouts.get("connect", self.connect_timeout)
        return await self._exchange(await self._connect(connect_timeout), request)

    @staticmethod
    def _replayable(request: httpx.Request) -> bool:
        # Go's isReplayable: an idempotent method and a body that can be sent again.
        return request.method in REPLAYABLE_METHODS and isinstance(request.stream,
                                                                   httpx.ByteStream)

    async def _exchange(self, conn: _Connection, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        timeouts = extensions.get("timeout", {})
        total = timeouts.get("read")
        first_byte = timeouts.get(FIRST_BYTE_TIMEOUT)
        loop = asyncio.get_running_loop()
        deadline = None if total is None else loop.time() + total
        # One timer handle (~2 us) instead of asyncio.timeout (~6 us): on expiry the
        # socket is aborted and the pending write or read fails. The whole-exchange limit
        # also bounds the write, so a peer that never reads cannot hold a request forever.
        timer = None if deadline is None else loop.call_at(deadline, conn.expire)
        answered = False
        try:
            try:
                await self._send(conn, request)
                # The first-byte limit replaces the whole-exchange one while it is the
                # nearer of the two, and gives way to it once the head is in.
                waiting_head = first_byte is not None and (
                    deadline is None or loop.time() + first_byte < deadline)
                if waiting_head:
                    if timer is not None:
                        timer.cancel()
                    timer = loop.call_later(first_byte, conn.expire)
                status, headers, framing = await self._read_head(conn, request)
                answered = True
                streaming = bool(extensions.get(STREAM_EXTENSION))
                if timer is not None and (streaming or deadline is None or waiting_head):
                    timer.cancel()
                    # A stream has no limit after its head (Podman sends stats every 5 s).
                    timer = None if streaming or deadline is None else \
                        loop.call_at(deadline, conn.expire)
                if streaming:
                    stream: httpx.AsyncByteStream = _BodyStream(self, conn, framing)
                    return httpx.Response(status, headers=headers, stream=stream,
                                          request=request)
                body = await self._read_body(conn, framing)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                error = _transport_error(exc, self.endpoint, connecting=False,
                                         expired=conn.expired)
                if error is None:
                    raise
                if conn.expired and not answered and isinstance(
                        exc, asyncio.IncompleteReadError) and exc.partial and not (
                        b"HTTP/".startswith(exc.partial[:5])):
                    # It talked, but no HTTP (an SMTP or Redis server waits for more
                    # commands): say what it said rather than "no answer".
                    error = _not_http(self.endpoint, exc.partial)
                elif conn.expired:
                    error = self._timeout_error(answered, first_byte, total)
                elif conn.reused and not answered and self._nothing_read(exc):
                    if self._replayable(request):
                        raise _StaleConnection(error) from exc
                    error = httpx.ReadError(
                        f"{_where(self.endpoint)} closed the connection after "
                        f"{request.method} {request.url.path} was sent and before any "
                        "answer: not sent again, as the engine may have acted on it")
                raise error from exc
            finally:
                if timer is not None:
                    timer.cancel()
        except BaseException:
            conn.close()
            raise
        # A timer that fired as the last bytes came in aborted the socket: the answer is
        # whole, but the connection cannot be reused.
        self._release(conn, reusable=framing.reusable and not conn.expired)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body),
                              request=request, extensions={BODY_EXTENSION: body})

    @staticmethod
    def _nothing_read(exc: BaseException) -> bool:
        """Whether a failure shows the peer closed before sending any byte back."""
        if isinstance(exc, asyncio.IncompleteReadError):
            return not exc.partial
        return isinstance(exc, (ConnectionResetError, BrokenPipeError))

    def _timeout_error(self, answered: bool, first_byte: float | None,
                       total: float | None) -> httpx.TimeoutException:
        where = _where(self.endpoint)
        if not answered and first_byte is not None and (total is None or first_byte < total):
            return httpx.ReadTimeout(f"{where} accepted the connection but sent no answer "
                                     f"within {first_byte:g} s")
        return httpx.ReadTimeout(f"{where} did not finish answering within {total:g} s")

    async def _send(self, conn: _Connection, request: httpx.Request) -> None:
        url = request.url
        target = url.raw_path
        lines = [request.method.encode(), b" ", target, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            lines += (name, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        writer = conn.writer
        stream = request.stream
        if isinstance(stream, httpx.ByteStream):
            # The whole body is in memory (or there is none): one write. A ByteStream
            # iterates as its one bytes object.
            lines += stream
            writer.write(b"".join(lines))
        else:
            writer.write(b"".join(lines))
            async for chunk in stream:  # type: ignore[union-attr]
                if chunk:
                    writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                    await writer.drain()
            writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _read_head(self, conn: _Connection, request: httpx.Request
                         ) -> tuple[int, list[tuple[bytes, bytes]], _Framing]:
        try:
            raw = await conn.reader.readuntil(b"\r\n\r\n")
            # Podman 4.3 sometimes writes a stray line end after an answer on a kept-alive
            # connection, seen in front of the next status line ("\nHTTP/1.1 204"). Go's
            # client drops a connection with such unsolicited bytes; its answer is still
            # whole here, so skip line ends before the status line (RFC 9112 section 2.2
            # asks the same robustness of servers), a bounded number of times.
            for _ in range(_MAX_LEADING_BLANK_HEADS):
                if raw.strip(b"\r\n"):
                    break
                raw = await conn.reader.readuntil(b"\r\n\r\n")
            raw = raw.lstrip(b"\r\n")
        except asyncio.IncompleteReadError as exc:
            # A peer that said something and hung up: if it was not the start of an
            # HTTP answer, this is no engine (an SSH server's banner, a TLS alert).
            partial = exc.partial.lstrip(b"\r\n")
            if partial and not b"HTTP/".startswith(partial[:5]):
                raise _not_http(self.endpoint, exc.partial) from exc
            raise
        lines = raw[:-4].split(b"\r\n")
        status_line = lines[0].split(b" ", 2)
        if (len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1.")
                or not status_line[1].isdigit() or len(status_line[1]) != 3):
            raise _not_http(self.endpoint, raw)
        status = int(status_line[1])
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        keep_alive = status_line[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            value = value.strip()
            headers.append((name, value))
            lower = name.lower()
            if lower == b"content-length":
                if not value.isdigit():  # int() would take "-1", " 1_0" or "+5"
                    raise httpx.RemoteProtocolError(
                        f"{_where(self.endpoint)} sent a malformed Content-Length "
                        f"{value[:20]!r}")
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lower == b"connection":
                keep_alive = value.lower() != b"close"
        if request.method == "HEAD" or status in _NO_BODY_STATUS:
            return status, headers, _Framing(chunked=False, length=0, reusable=keep_alive)
        if status == 101 or (not chunked and length is None):
            # Hijacked (exec, attach) or close-delimited: the body runs to EOF.
            return status, headers, _Framing(chunked=False, length=None, reusable=False)
        return status, headers, _Framing(chunked=chunked, length=None if chunked else length,
                                          reusable=keep_alive)

    async def _read_body(self, conn: _Connection, framing: _Framing) -> bytes:
        reader = conn.reader
        if framing.length is not None:
            return await reader.readexactly(framing.length) if framing.length else b""
        if not framing.chunked:
            return await reader.read(-1)
        decoder = ChunkedDecoder()
        pieces = []
        while not decoder.done:
            data = await reader.read(_READ_SIZE)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
            pieces.append(decoder.feed(data))
        return b"".join(pieces)

    async def aclose(self) -> None:
        """Close every idle connection; the transport refuses further requests.

        A TLS connection's socket is closed only after its ``close_notify`` exchange,
        which needs the event loop: that is awaited (a second at most, then the
        connection is aborted), or a loop closed right after, as ``asyncio.run`` does,
        would leave the socket open.
        """
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if idle and self._ssl is not None:
            try:
                async with asyncio.timeout(_TLS_CLOSE_TIMEOUT):
                    await asyncio.gather(*(conn.writer.wait_closed() for conn in idle),
                                         return_exceptions=True)
            except TimeoutError:
                for conn in idle:
                    conn.writer.transport.abort()
                await asyncio.sleep(0)  # the loop closes an aborted socket on its next turn

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
to GhostPanel's errors in one place.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from typing import Final

import httpx

from ._endpoint import Endpoint

__all__ = ["BODY_EXTENSION", "STREAM_EXTENSION", "ChunkedDecoder", "EngineTransport"]

#: Request extension asking the transport to hand the body over as a live stream instead
#: of reading it before returning (logs, events, stats, pulls).
STREAM_EXTENSION: Final = "ghostpanel.stream"
#: Response extension holding a body this transport already read. ``Response.aread()``
#: would copy it through httpx's decoder chain again (about 19 µs per request here).
BODY_EXTENSION: Final = "ghostpanel.body"

_READ_SIZE: Final = 256 * 1024
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

    __slots__ = ("expired", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.expired = False

    def close(self) -> None:
        self.writer.close()

    def expire(self) -> None:
        """Read timeout: abort the socket, so that the pending read fails at once."""
        self.expired = True
        self.writer.transport.abort()


class _Framing:
    """How a response body ends: by length, by chunks, or by the connection closing."""

    __slots__ = ("chunked", "length", "reusable")

    def __init__(self, *, chunked: bool, length: int | None, reusable: bool) -> None:
        self.chunked = chunked
        self.length = length
        self.reusable = reusable


def _transport_error(exc: BaseException, endpoint: Endpoint, *, connecting: bool,
                     expired: bool = False) -> Exception | None:
    """The httpx transport error for a socket-level failure, or None to let it pass."""
    where = endpoint.socket_path or endpoint.host_header
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
            return httpx.ConnectTimeout(f"no answer from {where} in time")
        return httpx.ReadTimeout(f"no answer from {where} in time")
    if isinstance(exc, asyncio.IncompleteReadError):
        return httpx.RemoteProtocolError(f"{where} closed the connection mid-response")
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

    async def _connect(self) -> _Connection:
        endpoint = self.endpoint
        with _socket_errors(endpoint, connecting=True):
            async with asyncio.timeout(self.connect_timeout):
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
            self._idle.append(conn)
        else:
            conn.close()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its response (body read unless streaming)."""
        if self._closed:
            raise RuntimeError("this engine transport has been closed")
        while self._idle:
            conn = self._idle.pop()
            try:
                return await self._exchange(conn, request)
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
                # The engine closed an idle keep-alive connection (Go's server does after
                # its idle timeout); that failure tells nothing about the request, so try
                # the next connection, then a fresh one.
                if not self._stale_safe(request):
                    raise
        return await self._exchange(await self._connect(), request)

    @staticmethod
    def _stale_safe(request: httpx.Request) -> bool:
        return request.method in ("GET", "HEAD") or STREAM_EXTENSION not in request.extensions

    async def _exchange(self, conn: _Connection, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        read_timeout = extensions.get("timeout", {}).get("read")
        timer: asyncio.TimerHandle | None = None
        try:
            try:
                await self._send(conn, request)
                if read_timeout is not None:
                    # One timer handle (~2 us) instead of asyncio.timeout (~6 us): on
                    # expiry the socket is aborted and the pending read fails.
                    timer = asyncio.get_running_loop().call_later(read_timeout, conn.expire)
                status, headers, framing = await self._read_head(conn, request)
                if extensions.get(STREAM_EXTENSION):
                    stream: httpx.AsyncByteStream = _BodyStream(self, conn, framing)
                    return httpx.Response(status, headers=headers, stream=stream,
                                          request=request)
                body = await self._read_body(conn, framing)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                error = _transport_error(exc, self.endpoint, connecting=False,
                                         expired=conn.expired)
                if error is None:
                    raise
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
        raw = await conn.reader.readuntil(b"\r\n\r\n")
        lines = raw[:-4].split(b"\r\n")
        status_line = lines[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
            raise httpx.RemoteProtocolError(f"not an HTTP/1.1 response: {lines[0][:40]!r}")
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
        """Close every idle connection; the transport refuses further requests."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

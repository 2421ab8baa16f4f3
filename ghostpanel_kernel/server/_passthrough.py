"""The Engine API passthrough: a raw ASGI app that forwards every request to the engine.

The agent mounts it at ``/engine`` and at ``/``, so that a plain Docker client (``docker
-H tcp://agent:PORT --tlsverify``) and GhostPanel's own client both reach the engine
through the agent. It is the hot path of the agent, so it is plain ASGI, no framework:
one request in, one request out on a kept-alive engine connection, and the answer
streamed back chunk by chunk as the engine writes it (``logs -f``, ``stats``,
``events``, pull progress and archives never wait for the end of the body), request
bodies (archive uploads, image loads) streamed the other way.

The engine connections are :class:`~ghostpanel_kernel.engine._transport.EngineTransport`'s:
a LIFO keep-alive pool over a unix socket, TCP or TLS, whose chunked decoder joins the
engine's one-chunk-per-log-line stream into large reads (one ASGI message per read,
not per line).

What is changed on the way (RFC 9110 section 7.6.1): hop-by-hop headers
(``Connection`` and the fields it names, ``Keep-Alive``, ``TE``, ``Trailer``,
``Transfer-Encoding``, ``Upgrade``, ``Proxy-*``) are dropped both ways; ``Host`` names
the engine; the engine's ``Date`` gives way to the one the ASGI server adds; the
client's ``Authorization`` is dropped: it carries the agent's own token, which the
engine has no use for and must never see.

What cannot be forwarded: ``docker exec`` and ``docker attach`` ask for the connection
to be upgraded to a raw TCP stream (``Connection: Upgrade``, ``Upgrade: tcp``), and an
ASGI server gives an application no way to take over its connection. Those requests get
a ``501`` problem that says so and names the WebSocket route that replaces them.

Failures are answered, never left hanging: an engine that cannot be reached is a
``502`` problem naming its socket or address (``504`` when it does not answer in time);
a client that goes away mid-request or mid-stream has the engine request closed (within
50 ms: its connection is dropped, not returned to the pool); an engine that breaks off a
stream already under way has the client's connection closed too, so that the client
sees a truncated answer rather than a clean, short one.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import quote

import httpx

from .._exceptions import EnvironmentClosed
from ..engine._endpoint import Endpoint, TLSConfig
from ..engine._transport import FIRST_BYTE_TIMEOUT, STREAM_EXTENSION, EngineTransport
from ._problems import Receive, Scope, Send, send_problem

__all__ = ["EXEC_WEBSOCKET_ROUTE", "EnginePassthrough"]

#: The agent's replacement for ``docker exec -it`` and ``docker attach``.
EXEC_WEBSOCKET_ROUTE: Final = "/api/v1/containers/{id}/exec"

_log = logging.getLogger(__name__)

#: Request bodies up to this size are read whole and sent with a ``Content-Length`` in
#: one write (container create, network connect...); larger ones (archive uploads,
#: image loads) are streamed to the engine as they arrive, chunked.
_BUFFERED_BODY: Final = 256 * 1024

#: Hop-by-hop fields (RFC 9110 7.6.1, and RFC 9112's Transfer-Encoding and Keep-Alive)
#: plus what this hop sets itself: Host and Content-Length (recomputed for the engine),
#: Authorization (the agent's own credential), and Expect: the ASGI server has answered
#: "100 Continue" already, and the engine transport reads no interim answers.
_REQUEST_DROPPED: Final = frozenset({
    b"authorization", b"connection", b"content-length", b"expect", b"host", b"keep-alive",
    b"proxy-authenticate", b"proxy-authorization", b"proxy-connection", b"te", b"trailer",
    b"transfer-encoding", b"upgrade",
})
#: The same on the way back, and Date: ASGI servers (Hypercorn, Uvicorn) stamp every
#: answer with their own, and two values make the field invalid (RFC 9110 5.3).
_RESPONSE_DROPPED: Final = frozenset({
    b"connection", b"date", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
    b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
})

#: Seconds a request runs before the client is watched for leaving (see _ClientWatch).
_WATCH_AFTER: Final = 0.05

_ATTACH_PATH: Final = re.compile(rb"(?:/v[0-9.]+)?/containers/([^/]+)/attach")


class _ClientGone(Exception):
    """The client disconnected before its request body was whole."""


def _connection_tokens(value: bytes) -> set[bytes]:
    """The field names a ``Connection`` header lists, lower-cased (RFC 9110 7.6.1)."""
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


class _RequestBody(httpx.AsyncByteStream):
    """A request body read off the ASGI ``receive`` channel as the engine takes it."""

    def __init__(self, head: list[bytes], receive: Receive) -> None:
        self._head = head
        self._receive = receive
        #: Set once the whole body was read: ``receive`` is free for the watcher.
        self.finished = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head, self._head = self._head, []
        for chunk in head:
            yield chunk
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                # The engine must not act on half a request: raising here aborts the
                # engine connection mid-body (the transport closes it on any error).
                raise _ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self.finished.set()
                return


async def _read_body(receive: Receive) -> bytes | _RequestBody:
    """The request body: bytes when it is small and whole, else a stream of the rest."""
    pieces: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            pieces.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False):
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if size >= _BUFFERED_BODY:
            return _RequestBody(pieces, receive)


async def _disconnected(receive: Receive, body: bytes | _RequestBody) -> None:
    """Return when the client has gone, once its request body has been read."""
    if isinstance(body, _RequestBody):
        await body.finished.wait()
    while (await receive())["type"] != "http.disconnect":
        pass


class _ClientWatch:
    """Cancel the current task when the client goes away, so that the engine request
    goes with it.

    The engine may keep a client waiting for as long as it likes, before its answer's
    head (Podman sends none for ``logs -f`` until the first line, nor for ``wait``) and
    within a stream (events, stats): the client must be watched all along. The watching
    task starts only after :data:`_WATCH_AFTER` seconds, though: most requests are
    answered before, and a timer costs far less than a task. A client that leaves is
    seen that much later at most.
    """

    __slots__ = ("_body", "_over", "_receive", "_timer", "_watcher", "gone", "task")

    def __init__(self, receive: Receive, body: bytes | _RequestBody) -> None:
        task = asyncio.current_task()
        if task is None:  # an ASGI server always runs the app in a task
            raise RuntimeError("the engine passthrough must run in an asyncio task")
        self.task = task
        self.gone = False
        self._receive = receive
        self._body = body
        self._over = False
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            _WATCH_AFTER, self._start)

    def _start(self) -> None:
        self._timer = None
        self._watcher = asyncio.ensure_future(_disconnected(self._receive, self._body))
        self._watcher.add_done_callback(self._ended)

    def _ended(self, watcher: asyncio.Task[None]) -> None:
        # The exception is fetched whatever happens, so that none is logged as unread.
        failed = not watcher.cancelled() and watcher.exception() is not None
        if not (self._over or failed or watcher.cancelled()):
            self.gone = True
            self.task.cancel()

    def stop(self) -> None:
        """The request is over: stop watching (and never cancel after this)."""
        self._over = True
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


class EnginePassthrough:
    """ASGI app forwarding Engine API requests to one engine, streaming both ways.

    Parameters
    ----------
    engine_url
        The engine: ``unix:///run/podman/podman.sock``, ``tcp://host:2375`` or
        ``https://host:2376`` (see :class:`~ghostpanel_kernel.engine.Endpoint`).
    prefix
        A path prefix stripped before forwarding when the request path starts with it
        (``"/engine"``: ``/engine/v1.41/info`` goes to the engine as ``/v1.41/info``).
        Paths without it are forwarded as they are, so one instance can be mounted at
        both ``/engine`` and ``/``.
    connect_timeout
        Seconds allowed to open an engine connection; past it the client gets a 504.
    tls
        TLS settings (a CA, or an agent's pinned fingerprint) for an ``https://`` engine.
    token
        A GhostPanel agent's own bearer token: sent to the agent in place of the
        client's ``Authorization`` (which is always dropped). The gateway forwards to
        agents this way; an ``h3://`` agent is reached over HTTPS on the same port,
        where every agent serves its HTTPS side.

    Notes
    -----
    There is no limit on the time the engine takes to answer: ``POST
    /containers/{id}/wait`` and ``stop`` with a long grace period answer only when
    the container has stopped. Call :meth:`aclose` when the app is shut down (a
    lifespan ``shutdown`` does it when this app is served on its own).

    Examples
    --------
    >>> app = EnginePassthrough("unix:///run/podman/podman.sock", prefix="/engine")
    >>> app.endpoint.socket_path
    '/run/podman/podman.sock'
    """

    def __init__(self, engine_url: str, *, prefix: str = "",
                 connect_timeout: float = 5.0, tls: TLSConfig | None = None,
                 token: str | None = None) -> None:
        if engine_url.startswith("h3://"):
            # An agent serves HTTPS and HTTP/3 on the same port: the streaming transport
            # here speaks HTTP/1.1, so an h3:// agent is reached over its HTTPS side.
            engine_url = "https://" + engine_url.removeprefix("h3://")
        self.endpoint = Endpoint.parse(engine_url, tls=tls)
        self._token = None if token is None else (b"Authorization", f"Bearer {token}".encode())
        self._transport = EngineTransport(self.endpoint, connect_timeout=connect_timeout)
        self._prefix = prefix.rstrip("/").encode()
        self._host = self.endpoint.host_header.encode()
        self._where = self.endpoint.socket_path or self.endpoint.host_header
        # No first-byte or whole-exchange limit: see the class notes.
        self._extensions = {STREAM_EXTENSION: True,
                            "timeout": {"connect": connect_timeout, FIRST_BYTE_TIMEOUT: None,
                                        "read": None}}
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Requests being forwarded now, their answers' bodies included."""
        return self._in_flight

    async def aclose(self) -> None:
        """Close the idle engine connections; streams under way end on their own."""
        await self._transport.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            self._in_flight += 1
            try:
                await self._forward(scope, receive, send)
            finally:
                self._in_flight -= 1
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            # The Engine API has no WebSocket route that the agent forwards (see the
            # module notes); 1008: policy violation, the closest standard code.
            await send({"type": "websocket.close", "code": 1008,
                        "reason": "the engine passthrough does not forward WebSockets"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _target(self, scope: Scope) -> bytes:
        """The request target for the engine: path without the prefix, and query."""
        path: bytes | None = scope.get("raw_path")
        if path is None:  # optional in ASGI: re-encode the decoded path
            path = quote(scope["path"], safe="/:@!$&'()*+,;=-._~").encode()
        prefix = self._prefix
        if prefix and path.startswith(prefix) and path[len(prefix):len(prefix) + 1] in (
                b"", b"/"):
            path = path[len(prefix):] or b"/"
        query: bytes = scope.get("query_string", b"")
        return path + b"?" + query if query else path

    def _request_headers(self, scope: Scope) -> tuple[list[tuple[bytes, bytes]], bool]:
        """The headers for the engine, and whether the client asked for an upgrade."""
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        dropped: set[bytes] | frozenset[bytes] = _REQUEST_DROPPED
        upgrade = False
        for name, value in raw:
            lower = name.lower()
            if lower == b"connection":
                tokens = _connection_tokens(value)
                upgrade = upgrade or b"upgrade" in tokens
                dropped = dropped | tokens
            elif lower == b"upgrade":
                upgrade = True
        headers = [(b"Host", self._host)]
        if self._token is not None:
            headers.append(self._token)
        headers += [(name, value) for name, value in raw
                    if name.lower() not in dropped and not name.startswith(b":")]
        return headers, upgrade

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope)
        headers, upgrade = self._request_headers(scope)
        if upgrade:
            await self._refuse_upgrade(target, send)
            return
        try:
            body = await _read_body(receive)
        except _ClientGone:
            return
        if isinstance(body, bytes):
            if body:
                headers.append((b"Content-Length", b"%d" % len(body)))
            stream: httpx.AsyncByteStream | httpx.ByteStream = httpx.ByteStream(body)
        else:
            headers.append((b"Transfer-Encoding", b"chunked"))
            stream = body
        request = httpx.Request(
            scope["method"], httpx.URL(scheme="http", host="engine", raw_path=target),
            headers=headers, stream=stream, extensions=self._extensions)
        watch = _ClientWatch(receive, body)
        try:
            await self._exchange(request, scope, send)
        except asyncio.CancelledError:
            # Cancelled by the watch: the client has gone, and the engine request with
            # it (the transport closes a connection whose exchange is cut short).
            if watch.gone and watch.task.uncancel() == 0:
                return
            raise
        finally:
            watch.stop()

    async def _exchange(self, request: httpx.Request, scope: Scope, send: Send) -> None:
        try:
            response = await self._transport.handle_async_request(request)
        except _ClientGone:
            return  # the transport closed the half-written engine request
        except httpx.TimeoutException as error:
            await self._engine_failed(send, 504, error)
            return
        except (httpx.TransportError, EnvironmentClosed) as error:
            await self._engine_failed(send, 502, error)
            return
        try:
            await self._relay(response, scope, send)
        finally:
            # A no-op after a whole body; otherwise the engine connection is closed, not
            # pooled, which ends the engine's side of the stream.
            await response.aclose()

    async def _engine_failed(self, send: Send, status: int, error: Exception) -> None:
        detail = f"the engine at {self._where} could not be reached: {error}"
        _log.warning("engine passthrough: %s", detail)
        await send_problem(send, status, detail, engine=self._where)

    async def _refuse_upgrade(self, target: bytes, send: Send) -> None:
        match = _ATTACH_PATH.match(target.partition(b"?")[0])
        container = match.group(1).decode("latin-1") if match else "{id}"
        route = EXEC_WEBSOCKET_ROUTE.replace("{id}", container)
        await send_problem(
            send, 501,
            "interactive exec and attach (docker exec, docker attach, docker run without "
            "-d) need the HTTP connection upgraded to a raw stream (Connection: Upgrade, "
            "Upgrade: tcp), which the GhostPanel agent cannot do: its ASGI server never "
            "hands a connection over to the application. Use the agent's WebSocket "
            f"route instead: ws {route} (ExecConsole uses it), or run containers "
            "detached (docker run -d) and read their output with docker logs.",
            websocket=route)

    async def _relay(self, response: httpx.Response, scope: Scope, send: Send) -> None:
        """Send the engine's answer on: head, then its body as the engine writes it."""
        raw = response.headers.raw
        dropped: set[bytes] | frozenset[bytes] = _RESPONSE_DROPPED
        for name, value in raw:
            if name.lower() == b"connection":
                dropped = dropped | _connection_tokens(value)
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": [(name.lower(), value) for name, value in raw
                                if name.lower() not in dropped]})
        await self._pump(response, send)

    async def _pump(self, response: httpx.Response, send: Send) -> None:
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.TransportError as error:
            # Nothing but a closed connection tells the client that the body is cut
            # short: raising makes the ASGI server close it (a clean end would not).
            _log.warning("engine passthrough: the engine at %s broke off its answer: %s",
                         self._where, error)
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})

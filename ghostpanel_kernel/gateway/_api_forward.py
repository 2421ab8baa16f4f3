"""``/api/v1`` of an agent environment: the request forwarded to the agent, as the agent.

An environment registered as a GhostPanel agent (``https://`` or ``h3://`` with a
token) already serves ``/api/v1`` itself; the gateway forwards each authorised request
there, HTTP and WebSocket alike. It speaks to the agent with the agent's own token and
pinned certificate -- those of the environment's
:class:`~ghostpanel_kernel.engine.EngineClient` -- and never passes the caller's hub
token on: the agent has no use for it, and must not learn it.

HTTP requests are read whole first (no ``/api/v1`` route takes more than
:data:`~ghostpanel_kernel.server._request_body.MAX_BODY` bytes: more is a ``413`` here,
before anything is sent) and sent on the environment's own transport (its keep-alive
pool, HTTP/3 for ``h3://``); the answer's head and body come back as the agent writes
them (Surge's progress streams as it happens). WebSockets (``events``, ``exec``) are
opened to the agent with the ``websockets`` client, and messages pumped both ways until
either side closes; the agent's close code and reason are passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Final
from urllib.parse import quote

import httpx

from ..engine import Environment
from ..engine._transport import FIRST_BYTE_TIMEOUT, STREAM_EXTENSION
from ..server._problems import Receive, Scope, Send, send_problem
from ..server._request_body import MAX_BODY
from ._asgi_body import read_whole

__all__ = ["forward_http", "forward_websocket", "refuse"]

_log = logging.getLogger("ghostpanel.gateway")

#: Request headers passed on to the agent: what describes the body and the answer
#: wanted. Everything else stays behind: the caller's Authorization and cookies,
#: hop-by-hop fields, and Accept-Encoding (the gateway reads and filters some answers,
#: so it takes them as they are).
_PASSED: Final = frozenset({b"content-type", b"accept", b"user-agent"})
#: Answer headers not passed back (hop-by-hop, or set again by the gateway's server).
_DROPPED: Final = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"te",
                             b"trailer", b"upgrade", b"date", b"server"})
#: Seconds to connect to an agent's WebSocket.
_OPEN_TIMEOUT: Final = 10.0
#: The largest WebSocket message passed either way (as the agent's exec route takes).
_MAX_MESSAGE: Final = 4 * 1024 * 1024


async def refuse(scope: Scope, send: Send, status: int, detail: str,
                 **extra: Any) -> None:
    """Answer with a problem: an HTTP answer, or the refusal of a WebSocket handshake.

    A server without the ASGI denial-response extension cannot answer a handshake
    with HTTP: the WebSocket is then closed with ``4000 + status`` and the detail as
    its reason (as the agent's own routes do).
    """
    if scope["type"] != "websocket":
        await send_problem(send, status, detail, **extra)
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send_problem(send, status, detail, response_type="websocket.http.response",
                           **extra)
    else:
        await send({"type": "websocket.close", "code": 4000 + status,
                    "reason": detail[:120]})


def _target(scope: Scope) -> str:
    """The path and query to ask the agent for: the scope's path, re-encoded."""
    path = quote(scope["path"], safe="/:@!$&'()*+,;=-._~")
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _agent_headers(env: Environment) -> dict[str, str]:
    """The headers the environment's client sends with every request: its token."""
    # The client keeps them private; the exec session reads them the same way.
    return dict(env.client._base_headers)


async def forward_http(env: Environment, scope: Scope, receive: Receive,
                       send: Send) -> None:
    """Forward one authorised HTTP request to the agent behind ``env``; relay its answer."""
    body = await read_whole(receive)
    if body is None:
        await send_problem(send, 413, f"the request body is over {MAX_BODY} bytes, the "
                                      "most any /api/v1 route takes")
        return
    headers = _agent_headers(env)
    for name, value in scope.get("headers", []):
        if name.lower() in _PASSED:
            headers[name.decode("latin-1")] = value.decode("latin-1")
    if body or scope["method"] in ("POST", "PUT", "PATCH"):
        headers["Content-Length"] = str(len(body))
    client = env.client
    request = httpx.Request(
        scope["method"], httpx.URL(client._base + _target(scope)), headers=headers,
        stream=httpx.ByteStream(body),
        # Streams (Surge's progress) have no read limit once begun; the head must come
        # within the client's own timeout.
        extensions={"timeout": {"connect": client.timeout, "read": None,
                                "write": client.timeout, "pool": client.timeout,
                                FIRST_BYTE_TIMEOUT: None},
                    STREAM_EXTENSION: True})
    try:
        response = await client._transport.handle_async_request(request)
    except httpx.TimeoutException as error:
        await send_problem(send, 504, f"the agent at {env.url} did not answer: {error}",
                           engine=env.url)
        return
    except httpx.TransportError as error:
        await send_problem(send, 502, f"the agent at {env.url} could not be reached: "
                                      f"{error}", engine=env.url)
        return
    try:
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": [(name.lower(), value) for name, value in response.headers.raw
                                if name.lower() not in _DROPPED]})
        if response.is_stream_consumed:  # a transport that read the body already
            chunks: Any = [response.content]
        else:
            chunks = response.aiter_raw()
        async for chunk in _each(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await response.aclose()


async def _each(chunks: Any) -> AsyncIterator[bytes]:
    """The chunks of a list or an async iterator, the same way."""
    if isinstance(chunks, list):
        for chunk in chunks:
            yield chunk
    else:
        async for chunk in chunks:
            yield chunk


def _ws_options(env: Environment) -> dict[str, Any]:
    headers = {name: value for name, value in _agent_headers(env).items()
               if name.lower() != "host"}
    return {"additional_headers": headers, "max_size": _MAX_MESSAGE,
            "open_timeout": _OPEN_TIMEOUT, "compression": None, "ping_interval": None}


async def _open(env: Environment, target: str) -> Any:
    """A WebSocket connection to ``target`` on the agent behind ``env``."""
    from websockets.asyncio.client import connect, unix_connect

    endpoint = env.client.endpoint
    if endpoint.socket_path is not None:
        return await unix_connect(endpoint.socket_path, f"ws://localhost{target}",
                                  **_ws_options(env))
    context = endpoint.tls.ssl_context() if endpoint.tls is not None else None
    scheme = "wss" if context is not None else "ws"
    # proxy=None: the agent is reached directly, never through a proxy named in the
    # gateway's environment.
    return await connect(f"{scheme}://{endpoint.host_header}{target}", ssl=context,
                         proxy=None, server_hostname=endpoint.host if context else None,
                         **_ws_options(env))


async def forward_websocket(env: Environment, scope: Scope, receive: Receive,
                            send: Send) -> None:
    """Forward one authorised WebSocket to the agent behind ``env`` (see the notes).

    The agent's refusal of the handshake (a problem document) is passed on as the
    gateway's refusal, status and body; an agent that cannot be reached is a ``502``.
    """
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

    first = await receive()
    if first["type"] != "websocket.connect":
        return
    try:
        upstream = await _open(env, _target(scope))
    except InvalidStatus as refused:
        answer = refused.response
        body = bytes(answer.body or b"")
        await send({"type": "websocket.http.response.start", "status": answer.status_code,
                    "headers": [(b"content-type", answer.headers.get(
                        "Content-Type", "application/problem+json").encode()),
                        (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    except (OSError, TimeoutError, InvalidHandshake) as error:
        await refuse(scope, send, 502, f"the agent at {env.url} could not be reached: "
                                       f"{error}", engine=env.url)
        return
    await send({"type": "websocket.accept"})

    async def downstream() -> None:
        # Agent -> caller, then the agent's close code passed on.
        try:
            async for message in upstream:
                if isinstance(message, str):
                    await send({"type": "websocket.send", "text": message})
                else:
                    await send({"type": "websocket.send", "bytes": message})
        except ConnectionClosed:
            pass
        received = upstream.protocol.close_rcvd
        code, reason = (received.code, received.reason) if received is not None \
            else (1011, "the agent went away")
        if code in (1005, 1006, 1015):  # reserved: never sent in a close frame
            code = 1000 if code == 1005 else 1011
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code, "reason": reason})

    async def upward() -> None:
        # Caller -> agent, until the caller leaves.
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close()
                return
            if message.get("bytes") is not None:
                await upstream.send(message["bytes"])
            elif message.get("text") is not None:
                await upstream.send(message["text"])

    pumps = [asyncio.ensure_future(downstream()), asyncio.ensure_future(upward())]
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pump in pumps:
            pump.cancel()
        for pump in pumps:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, Exception):
                await pump
        with contextlib.suppress(Exception):
            await upstream.close()
        _log.debug("WebSocket %s to %s ended", scope.get("path"), env.url)

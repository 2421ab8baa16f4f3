"""``ws /api/v1/containers/{id}/exec``: an interactive exec over a WebSocket.

ASGI cannot hand a connection over to the engine (the Engine API's ``exec -it`` upgrade,
which the passthrough refuses with ``501``), so this route bridges the two itself: it
opens the kernel's :class:`~ghostpanel_kernel.engine.ExecSession` on the agent's engine
and copies bytes between it and the WebSocket. The protocol (``docs/exec.md``):

- The query names the command: ``cmd`` once per argument (default ``sh``), ``tty``
  (``1``, the default, or ``0``), ``rows`` and ``cols`` (the first terminal size),
  ``env`` (``KEY=VALUE``, repeatable), ``workdir``, ``user``.
- Binary messages are bytes: client to agent, the process's stdin; agent to client, its
  output (without a terminal, each message starts with one byte naming the stream,
  ``1`` stdout or ``2`` stderr, as the Engine API's frames do).
- Text messages are JSON control: from the client ``{"type": "resize", "rows", "cols"}``
  and ``{"type": "eof"}`` (end stdin); from the agent ``{"type": "exit", "code": N}``
  once the process has ended, right before the agent closes with ``1000``.
- A missing container refuses the handshake with a ``404`` problem, a container that
  is not running with ``409``, a bad query with ``400`` (or, where the server cannot
  send an HTTP answer to a WebSocket handshake, closes with ``4000 + status``).
- The client closing ends the process (:meth:`ExecSession.close` hangs it up).

Contract for every ``_routes_*`` module: ``ROUTES`` and ``PATHS`` (see ``_api``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Final

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .._exceptions import EngineAPIError, GhostPanelError, NotFound
from ..engine import Container, Environment, ExecSession
from ..engine._exec_session import check_size
from ._problems import problem_response

__all__ = ["PATHS", "ROUTES"]

_log = logging.getLogger("ghostpanel.agent.exec")

#: Longest argument list and environment taken in a query.
_MAX_ARGS: Final = 256
#: The close code for the WebSocket when the handshake cannot be refused with HTTP.
_CLOSE_BASE: Final = 4000


class _BadQuery(ValueError):
    """The query does not describe an exec."""


def _flag(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise _BadQuery(f"{name} must be 1 or 0, not {value!r}")


def _size(rows: str | None, cols: str | None) -> tuple[int, int] | None:
    if rows is None and cols is None:
        return None
    try:
        return check_size(int(rows or ""), int(cols or ""))
    except ValueError:
        raise _BadQuery(f"rows and cols must both be whole numbers from 1 to 65535, "
                        f"not {rows!r} and {cols!r}") from None


def _exec_options(websocket: WebSocket) -> dict[str, Any]:
    """The :meth:`Container.exec_session` arguments the query asks for."""
    query = websocket.query_params
    command = query.getlist("cmd") or ["sh"]
    pairs = query.getlist("env")
    if len(command) > _MAX_ARGS or len(pairs) > _MAX_ARGS:
        raise _BadQuery(f"at most {_MAX_ARGS} cmd and env arguments")
    if not command[0]:
        raise _BadQuery("cmd must name a program")
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _BadQuery(f"env takes KEY=VALUE, not {pair!r}")
        env[key] = value
    return {"command": command, "tty": _flag(query.get("tty"), "tty", True), "env": env,
            "workdir": query.get("workdir") or None, "user": query.get("user") or None,
            "size": _size(query.get("rows"), query.get("cols"))}


async def _refuse(websocket: WebSocket, status: int, detail: str) -> None:
    """Refuse the handshake with a problem, or close with ``4000 + status``."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(problem_response(status, detail))
    else:
        await websocket.close(_CLOSE_BASE + status, detail[:120])


async def _open(websocket: WebSocket, engine: Environment) -> ExecSession | None:
    """The session the query asks for, or None once the handshake has been refused."""
    ident = websocket.path_params["id"]
    try:
        options = _exec_options(websocket)
        container: Container = await engine.containers.get(ident)
        if container.state != "running":
            state = container.state or "not running"
            await _refuse(websocket, 409, f"container {ident} is {state}: start it first")
            return None
        return await container.exec_session(**options)
    except _BadQuery as error:
        await _refuse(websocket, 400, str(error))
    except ValueError as error:  # the kernel's own argument checks
        await _refuse(websocket, 400, str(error))
    except NotFound:
        await _refuse(websocket, 404, f"no container {ident}")
    except EngineAPIError as error:
        status = error.status_code if error.status_code in (404, 409) else 502
        await _refuse(websocket, status, f"the engine refused the exec: {error}")
    except GhostPanelError as error:
        await _refuse(websocket, 502, f"the engine did not answer: {error}")
    return None


async def _engine_to_client(session: ExecSession, websocket: WebSocket) -> None:
    while (piece := await session.receive_output()) is not None:
        stream, data = piece
        await websocket.send_bytes(data if session.tty else
                                   (b"\x02" if stream == "stderr" else b"\x01") + data)


async def _client_to_engine(session: ExecSession, websocket: WebSocket) -> None:
    """Forward stdin and control messages until the client leaves.

    A write the process can no longer take (it is ending) is dropped: only the client
    leaving ends this side, so that the output and the exit message still go out.
    """
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is not None:
            with contextlib.suppress(GhostPanelError):
                await session.send(data)
            continue
        try:
            control = json.loads(message.get("text") or "")
            kind = control.get("type")
        except (ValueError, AttributeError):
            kind = None
        if kind == "resize":
            with contextlib.suppress(ValueError, TypeError, GhostPanelError):
                await session.resize(control.get("rows"), control.get("cols"))
        elif kind == "eof":
            with contextlib.suppress(GhostPanelError):
                await session.close_stdin()


async def _bridge(session: ExecSession, websocket: WebSocket) -> None:
    """Copy both ways until the process ends (then say how) or the client leaves."""
    output = asyncio.ensure_future(_engine_to_client(session, websocket))
    stdin = asyncio.ensure_future(_client_to_engine(session, websocket))
    try:
        await asyncio.wait({output, stdin}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stdin.cancel()
        if not output.done():  # the client left first: its process is hung up after
            output.cancel()
        await asyncio.gather(output, stdin, return_exceptions=True)
    if output.cancelled():
        return
    error = output.exception()
    if error is None:
        await websocket.send_text(json.dumps({"type": "exit", "code": session.exit_code}))
        await websocket.close(1000)
    elif not isinstance(error, WebSocketDisconnect):  # the client is gone otherwise
        _log.warning("exec bridge failed: %s", error)
        await websocket.close(1011, f"the exec failed: {error}"[:120])


async def exec_socket(websocket: WebSocket) -> None:
    """``ws /api/v1/containers/{id}/exec``: bridge the WebSocket and an exec session."""
    session = await _open(websocket, websocket.app.state.engine)
    if session is None:
        return
    try:
        await websocket.accept()
        await _bridge(session, websocket)
    except (WebSocketDisconnect, OSError, RuntimeError):
        # The client left while the end was being said (Starlette raises RuntimeError
        # for a send after the close): nothing more to tell it.
        pass
    finally:
        await session.close()


ROUTES: list[BaseRoute] = [
    WebSocketRoute("/api/v1/containers/{id}/exec", exec_socket),
]

_PROBLEM = {"description": "", "content": {"application/problem+json": {
    "schema": {"$ref": "#/components/schemas/Problem"}}}}


def _problem(description: str) -> dict[str, Any]:
    return {**_PROBLEM, "description": description}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/containers/{id}/exec": {
        "get": {
            "operationId": "execWebSocket",
            "summary": "Interactive exec over a WebSocket",
            "description": (
                "A WebSocket (HTTP/1.1 `Upgrade: websocket`, answered `101 Switching "
                "Protocols`) carrying a process started in the running container. Binary "
                "messages are bytes: the client's are the process's stdin, the agent's "
                "its output (with `tty=0`, each starts with one byte naming the stream, "
                "1 stdout or 2 stderr). Text messages are JSON: from the client "
                "`{\"type\": \"resize\", \"rows\": R, \"cols\": C}` and `{\"type\": "
                "\"eof\"}` (ends stdin); from the agent `{\"type\": \"exit\", \"code\": N}` "
                "when the process has ended, before it closes with 1000. Closing the "
                "WebSocket ends the process. Refused handshakes answer a problem."),
            "parameters": [
                {"name": "id", "in": "path", "required": True,
                 "description": "The container's id or name.", "schema": {"type": "string"}},
                _query("cmd", "One argument of the command, repeated in order (default "
                       "`sh`).", {"type": "array", "items": {"type": "string"},
                                  "maxItems": _MAX_ARGS}),
                _query("tty", "Give the process a terminal (default 1).",
                       {"type": "string", "enum": ["1", "0", "true", "false"]}),
                _query("rows", "The terminal's first height.",
                       {"type": "integer", "minimum": 1, "maximum": 65535}),
                _query("cols", "The terminal's first width.",
                       {"type": "integer", "minimum": 1, "maximum": 65535}),
                _query("env", "An environment variable, `KEY=VALUE`, repeatable.",
                       {"type": "array", "items": {"type": "string"},
                        "maxItems": _MAX_ARGS}),
                _query("workdir", "The working directory.", {"type": "string"}),
                _query("user", "The user (name or uid[:gid]).", {"type": "string"}),
            ],
            "responses": {
                "101": {"description": "Switched to the WebSocket protocol."},
                "400": _problem("The query does not describe a command."),
                "401": _problem("No valid credentials."),
                "404": _problem("No such container."),
                "409": _problem("The container is not running."),
                "502": _problem("The engine refused or did not answer."),
            },
        },
    },
}

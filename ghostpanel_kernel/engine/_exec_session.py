"""Interactive exec sessions: a live, two-way byte pipe to a process in a container.

:meth:`Container.exec_session` opens one of two kinds, which behave the same:

- :class:`UpgradeExecSession`, on an engine reached directly (a unix socket, TCP, TLS):
  ``POST /containers/{id}/exec``, then ``POST /exec/{id}/start`` with ``Connection:
  Upgrade``/``Upgrade: tcp``. The engine answers ``101`` and the connection becomes a raw
  byte pipe (the engine "hijacks" it). That connection is opened here, apart from the
  client's keep-alive pool, as it can never carry another request.
- :class:`WebSocketExecSession`, on a GhostPanel agent (``https://`` or ``h3://`` with a
  token, or any endpoint that refuses the upgrade with ``501``, as the agent's Engine
  API passthrough does): ``wss://HOST:PORT/api/v1/containers/{id}/exec`` with the same
  token and TLS settings (a pinned fingerprint too). An ``h3://`` environment uses the
  HTTPS side of the same port, which every agent serves. The protocol is described in
  ``docs/exec.md``.

Ending a session ends its process: an engine keeps a process running after its attached
connection closes (Podman and Docker alike), so :meth:`ExecSession.close` hangs it up
(``SIGHUP``, then ``SIGKILL``) when it has not ended by itself.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlencode

import httpx

from .._exceptions import (
    Conflict,
    EngineAPIError,
    EngineConnectionError,
    EngineProtocolError,
    EngineTimeout,
    GhostPanelError,
    NotFound,
    api_error_for,
)
from ._client import quote_id, raise_for_status
from ._streams import FrameDemuxer

if TYPE_CHECKING:
    from ._client import EngineClient

__all__ = ["ExecSession", "OpeningSession", "StreamName", "UpgradeExecSession",
           "WebSocketExecSession", "exec_config", "open_exec_session"]

_log = logging.getLogger("ghostpanel.exec")

StreamName = Literal["stdout", "stderr"]

_READ_SIZE: Final = 64 * 1024
#: Seconds to wait for the engine to mark an exec ended once its stream has closed.
_EXIT_WAIT: Final = 3.0
#: Seconds a hung-up process gets to end before it is killed.
_HANGUP_GRACE: Final = 1.0
#: Largest terminal side taken by resize (the engine takes a uint16).
_MAX_SIDE: Final = 65535
#: Longest WebSocket message taken from an agent (a terminal sends far less).
_MAX_MESSAGE: Final = 4 * 1024 * 1024
#: Stream numbers of the engine's multiplexed frames, and of the agent's non-tty frames.
STREAM_NUMBERS: Final[Mapping[int, StreamName]] = {1: "stdout", 2: "stderr"}


def _session_headers(client: EngineClient) -> dict[str, str]:
    """The headers every request of ``client`` carries (its token), ``Host`` aside."""
    return {name: value for name, value in client._base_headers.items()
            if name.lower() != "host"}


def check_size(rows: int, cols: int) -> tuple[int, int]:
    """``(rows, cols)`` as ints in 1..65535, or ``ValueError`` saying which is wrong."""
    for label, value in (("rows", rows), ("cols", cols)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_SIDE:
            raise ValueError(f"terminal {label} must be a whole number from 1 to "
                             f"{_MAX_SIDE}, not {value!r}")
    return rows, cols


def exec_config(command: str | Sequence[str], *, tty: bool,
                env: Mapping[str, str] | None = None, workdir: str | None = None,
                user: str | None = None) -> dict[str, Any]:
    """The ``POST /containers/{id}/exec`` body of an interactive session.

    Examples
    --------
    >>> exec_config(["sh"], tty=True)["Cmd"]
    ['sh']
    """
    if isinstance(command, str):
        cmd = ["sh", "-c", command]
    else:  # a number or a mapping would otherwise fail as a TypeError, or run its keys
        cmd = list(command) if isinstance(command, (list, tuple)) else []
    if not cmd or not all(isinstance(arg, str) for arg in cmd) or not cmd[0]:
        raise ValueError(f"an exec session needs a command (a string or a list of strings), "
                         f"got {command!r}")
    return {"Cmd": cmd, "AttachStdin": True, "AttachStdout": True, "AttachStderr": True,
            "Tty": bool(tty), **exec_process_options(env, workdir, user)}


def exec_process_options(env: Mapping[str, str] | None, workdir: str | None,
                         user: str | None) -> dict[str, Any]:
    """The members of an exec body that set up the process: its extra environment,
    working directory and user (each left out when not given, so the container's own
    applies).

    Both kinds of exec (:meth:`Container.exec`, run to completion, and an interactive
    session) start the process the same way; only how they attach differs.

    Examples
    --------
    >>> exec_process_options({"A": "1"}, None, "root")
    {'Env': ['A=1'], 'User': 'root'}
    """
    options: dict[str, Any] = {}
    if env:
        options["Env"] = [f"{key}={value}" for key, value in env.items()]
    if workdir:
        options["WorkingDir"] = workdir
    if user:
        options["User"] = user
    return options


class ExecSession:
    """A process started in a container, with its stdin, output and terminal size live.

    Open one with :meth:`Container.exec_session`; use it as an async context manager
    (leaving it closes the session and ends the process if it still runs).

    Attributes
    ----------
    tty
        Whether the process has a terminal (output is then one stream, ``stdout``).
    exit_code
        The process's exit status once it has ended (None before, or when it could not
        be learnt).

    Examples
    --------
    >>> async with container.exec_session(["sh"], tty=True) as shell:   # doctest: +SKIP
    ...     await shell.send(b"echo hi; exit 3\\n")
    ...     output = b"".join([chunk async for chunk in shell])
    >>> shell.exit_code                                                 # doctest: +SKIP
    3
    """

    def __init__(self, *, tty: bool) -> None:
        self.tty = tty
        self.exit_code: int | None = None
        self._ended = False
        self._closed = False

    @property
    def ended(self) -> bool:
        """Whether the output has ended (the process exited or the session was closed)."""
        return self._ended

    async def send(self, data: bytes | str) -> None:
        """Write ``data`` to the process's stdin (a ``str`` is sent as UTF-8)."""
        raise NotImplementedError

    async def close_stdin(self) -> None:
        """End the process's stdin (``cat`` and ``sh`` without a terminal then finish)."""
        raise NotImplementedError

    async def resize(self, rows: int, cols: int) -> None:
        """Set the terminal's size (a tty session's ``stty size`` then says ``rows cols``)."""
        raise NotImplementedError

    async def receive_output(self) -> tuple[StreamName, bytes] | None:
        """The next piece of output and its stream; None once the output has ended."""
        raise NotImplementedError

    async def receive(self) -> bytes:
        """The next piece of output, either stream; ``b""`` once the output has ended."""
        piece = await self.receive_output()
        return b"" if piece is None else piece[1]

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (piece := await self.receive_output()) is not None:
            yield piece[1]

    async def wait(self) -> int | None:
        """Read (and drop) the rest of the output; return the exit code."""
        while await self.receive_output() is not None:
            pass
        return self.exit_code

    async def close(self) -> None:
        """End the session; a process still running is hung up (then killed)."""
        raise NotImplementedError

    async def __aenter__(self) -> ExecSession:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


# -- straight to the engine: the HTTP upgrade ----------------------------------------------


class _UpgradeRefused(Exception):
    """The engine (an agent's passthrough) answered the upgrade with ``501``."""


class UpgradeExecSession(ExecSession):
    """A session on the engine's hijacked connection (see the module notes)."""

    def __init__(self, client: EngineClient, exec_id: str, container_id: str, *,
                 tty: bool, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        super().__init__(tty=tty)
        self._client = client
        self.exec_id = exec_id
        self.container_id = container_id
        self._reader = reader
        self._writer = writer
        self._demuxer = FrameDemuxer()
        self._pending: collections.deque[tuple[StreamName, bytes]] = collections.deque()

    @classmethod
    async def start(cls, client: EngineClient, container_id: str, config: Mapping[str, Any],
                    size: tuple[int, int] | None) -> UpgradeExecSession:
        """Create the exec, start it on a connection of its own, size its terminal."""
        exec_id = await create_exec(client, container_id, config)
        tty = bool(config.get("Tty"))
        reader, writer = await _start_upgraded(client, exec_id, tty)
        session = cls(client, exec_id, container_id, tty=tty, reader=reader, writer=writer)
        if size is not None and tty:
            try:
                await session.resize(*size)
            except BaseException:
                await session.close()
                raise
        return session

    @property
    def _exec_path(self) -> str:
        return f"/exec/{quote_id(self.exec_id)}"

    async def send(self, data: bytes | str) -> None:
        """Write ``data`` to the process's stdin (a ``str`` is sent as UTF-8)."""
        if self._closed:
            raise EngineConnectionError("the exec session is closed", endpoint=self._client.url)
        self._writer.write(data.encode() if isinstance(data, str) else bytes(data))
        with _connection_errors(self._client.url):
            await self._writer.drain()

    async def close_stdin(self) -> None:
        """End the process's stdin (a half-close of the hijacked connection).

        Not possible over TLS (asyncio's TLS transport cannot half-close): nothing then.
        """
        if not self._closed and self._writer.can_write_eof():
            with _connection_errors(self._client.url):
                self._writer.write_eof()

    async def resize(self, rows: int, cols: int) -> None:
        """Set the terminal's size (``POST /exec/{id}/resize``)."""
        rows, cols = check_size(rows, cols)
        await self._client.post_json(f"{self._exec_path}/resize", params={"h": rows, "w": cols})

    async def receive_output(self) -> tuple[StreamName, bytes] | None:
        """The next piece of output and its stream; None once the output has ended."""
        while not self._pending:
            if self._ended:
                return None
            data = b""
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                data = await self._reader.read(_READ_SIZE)
            if not data:
                await self._finish()
                return None
            if self.tty:
                return "stdout", data
            # Podman 4.3 labels this stream raw-stream whatever Tty says, yet without a
            # terminal it is multiplexed: the session's own Tty setting decides.
            for number, payload in self._demuxer.feed(data):
                self._pending.append((STREAM_NUMBERS.get(number, "stdout"), payload))
        return self._pending.popleft()

    async def _finish(self) -> None:
        """The stream ended: read the exit code (the engine may need a moment)."""
        self._ended = True
        if self.exit_code is not None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _EXIT_WAIT
        with contextlib.suppress(GhostPanelError):
            while True:
                inspect = await self._client.get_json(f"{self._exec_path}/json")
                if not inspect.get("Running") or loop.time() > deadline:
                    break
                await asyncio.sleep(0.05)
            code = inspect.get("ExitCode")
            if not inspect.get("Running") and code is not None:
                self.exit_code = int(code)

    async def close(self) -> None:
        """Close the connection; hang up the process if it still runs."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        try:
            await self._end_process()
        finally:
            self._ended = True

    async def _end_process(self) -> None:
        try:
            inspect = await self._client.get_json(f"{self._exec_path}/json")
        except GhostPanelError as error:
            _log.warning("exec %s: could not check that it ended: %s", self.exec_id[:12], error)
            return
        if inspect.get("Running"):
            await hang_up(self._client, self.container_id, self.exec_id, inspect)
        await self._finish()


async def create_exec(client: EngineClient, container_id: str,
                      config: Mapping[str, Any]) -> str:
    """``POST /containers/{id}/exec``; the new exec's id.

    Raises
    ------
    Conflict
        The container is not running. Docker says so with 409; Podman 4.3 with a 500
        ("container state improper"), so any refusal is checked against the container's
        state before it is passed on.
    """
    path = f"/containers/{quote_id(container_id)}"
    try:
        created = await client.post_json(f"{path}/exec", body=dict(config))
    except EngineAPIError as error:
        if isinstance(error, (NotFound, Conflict)):
            raise
        state: Mapping[str, Any] = {}
        with contextlib.suppress(GhostPanelError):
            state = (await client.get_json(f"{path}/json")).get("State") or {}
        if not state.get("Running", True):
            raise Conflict(409, f"container {container_id} is "
                                f"{state.get('Status') or 'not running'}, so nothing "
                                f"can be run in it: start it first ({error.message})",
                           method="POST", path=f"{path}/exec") from error
        raise
    return str(created["Id"])


async def _start_upgraded(client: EngineClient, exec_id: str, tty: bool
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``POST /exec/{id}/start`` with the upgrade, on a new connection; the pipe after 101."""
    endpoint = client.endpoint
    version = await client.api_version()
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    head = [f"POST /v{version}/exec/{quote_id(exec_id)}/start HTTP/1.1",
            f"Host: {endpoint.host_header}", "Content-Type: application/json",
            "Connection: Upgrade", "Upgrade: tcp", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in _session_headers(client).items()]
    with _connection_errors(client.url):
        async with asyncio.timeout(client.timeout):
            if endpoint.socket_path is not None:
                reader, writer = await asyncio.open_unix_connection(
                    endpoint.socket_path, limit=_READ_SIZE)
            else:
                context = endpoint.tls.ssl_context() if endpoint.tls is not None else None
                reader, writer = await asyncio.open_connection(
                    endpoint.host, endpoint.port, ssl=context, limit=_READ_SIZE,
                    server_hostname=endpoint.host if context else None)
            try:
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                await writer.drain()
                raw = (await reader.readuntil(b"\r\n\r\n")).lstrip(b"\r\n")
                status, headers = _parse_head(raw, client.url)
                if status in (101, 200):
                    # Docker answers 200 and hijacks anyway when it does not upgrade.
                    return reader, writer
                length = int(headers.get("content-length", "0") or 0)
                answer = await reader.readexactly(length) if length else b""
            except BaseException:
                writer.close()
                raise
    writer.close()
    if status == 501:
        raise _UpgradeRefused(_message_of(answer))
    raise api_error_for(status, _message_of(answer) or f"HTTP {status}", method="POST",
                        path=f"/exec/{exec_id}/start")


def _parse_head(raw: bytes, where: str) -> tuple[int, dict[str, str]]:
    lines = raw[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise EngineProtocolError(f"{where} answered the exec start with no HTTP: "
                                  f"{raw[:80]!r}", endpoint=where)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


def _message_of(body: bytes) -> str:
    """The ``message`` (engine) or ``detail`` (problem) of an error body, else its text."""
    text = body.decode("utf-8", "replace").strip()
    with contextlib.suppress(ValueError, AttributeError):
        document = json.loads(text)
        return str(document.get("message") or document.get("detail") or text)
    return text[:300]


class _connection_errors:
    """Socket failures as :class:`EngineConnectionError` naming the endpoint."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(exc, TimeoutError):
            raise EngineTimeout(f"{self.endpoint} did not answer the exec in time",
                                        endpoint=self.endpoint) from exc
        if isinstance(exc, (OSError, asyncio.IncompleteReadError)):
            raise EngineConnectionError(f"exec connection to {self.endpoint} failed: {exc}",
                                        endpoint=self.endpoint) from exc


_NSPID: Final = re.compile(r"^NSpid:\s+(.*)$", re.MULTILINE)


def _namespace_pid(host_pid: int, container_pid: int) -> int | None:
    """The exec's PID inside the container, from ``/proc`` on the engine's host.

    Only when this process sees the engine's processes (it runs on the engine's host,
    as an agent does) and the exec shares the container's PID namespace; None otherwise.
    """
    try:
        if os.readlink(f"/proc/{host_pid}/ns/pid") != os.readlink(
                f"/proc/{container_pid}/ns/pid"):
            return None
        with open(f"/proc/{host_pid}/status", encoding="utf-8") as status:
            found = _NSPID.search(status.read())
    except OSError:
        return None
    return int(found.group(1).split()[-1]) if found else None


async def hang_up(client: EngineClient, container_id: str, exec_id: str,
                  inspect: Mapping[str, Any]) -> bool:
    """Send ``SIGHUP`` (then, if it lingers, ``SIGKILL``) to a running exec's process.

    Engines have no call to end an exec, and the process outlives its connection. When
    this process sees the engine's (it runs on the engine's host, as an agent does), the
    signal goes straight to the exec's PID, once ``/proc`` shows that PID in the
    container's PID namespace; where it may not signal it (a rootless engine's mapped
    users), a ``kill`` run in the container sends it instead. A hung-up shell that leads
    its terminal's session takes its foreground job with it. False when it could not be
    done (the engine is on another host): the process then runs on, as the log says.
    """
    exec_path = f"/exec/{quote_id(exec_id)}"
    try:
        container = await client.get_json(f"/containers/{quote_id(container_id)}/json")
        host_pid = int(inspect.get("Pid") or 0)
        target = _namespace_pid(host_pid, int((container.get("State") or {}).get("Pid")
                                              or 0))
        if target is None or target <= 1:
            _log.warning("exec %s still runs in %s and cannot be ended from here (its "
                         "engine is on another host)", exec_id[:12], container_id[:12])
            return False
        loop = asyncio.get_running_loop()
        for number in (signal.SIGHUP, signal.SIGKILL):
            try:
                os.kill(host_pid, number)
            except ProcessLookupError:
                pass  # it ended meanwhile
            except PermissionError:
                await _run_quietly(client, container_id,
                                   ["kill", "-s", number.name[3:], str(target)])
            deadline = loop.time() + _HANGUP_GRACE
            while loop.time() < deadline:
                if not (await client.get_json(f"{exec_path}/json")).get("Running"):
                    return True
                await asyncio.sleep(0.05)
    except GhostPanelError as error:
        _log.warning("exec %s: could not end it: %s", exec_id[:12], error)
    return False


async def _run_quietly(client: EngineClient, container_id: str, cmd: list[str]) -> None:
    """Run ``cmd`` in the container to its end, output dropped."""
    created = await client.post_json(
        f"/containers/{quote_id(container_id)}/exec",
        body={"Cmd": cmd, "AttachStdout": True, "AttachStderr": True, "Tty": False})
    response = await client._request("POST", f"/exec/{quote_id(created['Id'])}/start",
                                     json_body={"Detach": False, "Tty": False}, stream=True)
    async for _ in client.iter_body(response):
        pass


# -- through an agent: the WebSocket route --------------------------------------------------


class WebSocketExecSession(ExecSession):
    """A session through an agent's ``ws /api/v1/containers/{id}/exec`` route."""

    def __init__(self, connection: Any, *, tty: bool, endpoint: str) -> None:
        super().__init__(tty=tty)
        self._ws = connection
        self._endpoint = endpoint

    @classmethod
    async def start(cls, client: EngineClient, container_id: str, config: Mapping[str, Any],
                    size: tuple[int, int] | None) -> WebSocketExecSession:
        """Open the agent's WebSocket; the agent creates and starts the exec."""
        from websockets.asyncio.client import connect, unix_connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus

        endpoint = client.endpoint
        tty = bool(config.get("Tty"))
        query = agent_query(config, size)
        path = f"/api/v1/containers/{quote_id(container_id)}/exec?{query}"
        options: dict[str, Any] = {
            "additional_headers": _session_headers(client), "max_size": _MAX_MESSAGE,
            "open_timeout": client.timeout, "compression": None, "ping_interval": None,
        }
        try:
            if endpoint.socket_path is not None:
                connection = await unix_connect(endpoint.socket_path, f"ws://localhost{path}",
                                                **options)
            else:
                context = endpoint.tls.ssl_context() if endpoint.tls is not None else None
                scheme = "wss" if context is not None else "ws"
                # proxy=None: an agent is reached directly, never through a proxy
                # named in the environment.
                # endpoint.path: an environment behind the gateway is served below one.
                connection = await connect(
                    f"{scheme}://{endpoint.host_header}{endpoint.path}{path}", ssl=context,
                    proxy=None,
                    server_hostname=endpoint.host if context else None, **options)
        except InvalidStatus as refused:
            response = refused.response
            body = bytes(response.body or b"")
            # The same reading as any other answer: a gateway's 403 is PermissionDenied,
            # an agent's 401 an AgentAuthError.
            raise_for_status(httpx.Response(response.status_code, content=body), body,
                             method="GET", path=path.partition("?")[0],
                             token=client._has_token, endpoint=client.url)
            raise api_error_for(response.status_code,
                                _message_of(bytes(response.body or b"")) or str(refused),
                                method="GET", path=path.partition("?")[0]) from None
        except (OSError, TimeoutError, InvalidHandshake) as error:
            raise EngineConnectionError(f"exec WebSocket to {client.url} failed: {error}",
                                        endpoint=client.url) from error
        return cls(connection, tty=tty, endpoint=client.url)

    async def send(self, data: bytes | str) -> None:
        """Write ``data`` to the process's stdin (one binary message)."""
        await self._send(data.encode() if isinstance(data, str) else bytes(data))

    async def _send(self, message: bytes | str) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._ws.send(message)
        except ConnectionClosed as error:
            raise EngineConnectionError(f"the exec session at {self._endpoint} ended: "
                                        f"{error}", endpoint=self._endpoint) from None

    async def close_stdin(self) -> None:
        """End the process's stdin (``{"type": "eof"}``)."""
        await self._send(json.dumps({"type": "eof"}))

    async def resize(self, rows: int, cols: int) -> None:
        """Set the terminal's size (``{"type": "resize", "rows", "cols"}``)."""
        rows, cols = check_size(rows, cols)
        await self._send(json.dumps({"type": "resize", "rows": rows, "cols": cols}))

    async def receive_output(self) -> tuple[StreamName, bytes] | None:
        """The next piece of output and its stream; None once the output has ended."""
        from websockets.exceptions import ConnectionClosed

        while not self._ended:
            try:
                message = await self._ws.recv()
            except ConnectionClosed as closed:
                self._ended = True
                if closed.rcvd is not None and closed.rcvd.code not in (1000, 1001) \
                        and self.exit_code is None:
                    raise EngineConnectionError(
                        f"the exec session at {self._endpoint} failed: "
                        f"{closed.rcvd.reason or closed.rcvd.code}",
                        endpoint=self._endpoint) from None
                return None
            if isinstance(message, bytes):
                if self.tty:
                    return "stdout", message
                if message:
                    return STREAM_NUMBERS.get(message[0], "stdout"), message[1:]
                continue
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                control = json.loads(message)
                if control.get("type") == "exit":
                    code = control.get("code")
                    self.exit_code = None if code is None else int(code)
        return None

    async def close(self) -> None:
        """Close the WebSocket; the agent then ends the process."""
        if self._closed:
            return
        self._closed = True
        self._ended = True
        with contextlib.suppress(Exception):
            await self._ws.close()


def agent_query(config: Mapping[str, Any], size: tuple[int, int] | None) -> str:
    """The query of the agent's exec route for an exec ``config`` (see ``docs/exec.md``).

    Examples
    --------
    >>> agent_query({"Cmd": ["sh", "-c", "ls"], "Tty": False}, None)
    'cmd=sh&cmd=-c&cmd=ls&tty=0'
    """
    pairs: list[tuple[str, str]] = [("cmd", arg) for arg in config["Cmd"]]
    pairs.append(("tty", "1" if config.get("Tty") else "0"))
    if size is not None:
        pairs += [("rows", str(size[0])), ("cols", str(size[1]))]
    pairs += [("env", item) for item in config.get("Env") or ()]
    if config.get("WorkingDir"):
        pairs.append(("workdir", str(config["WorkingDir"])))
    if config.get("User"):
        pairs.append(("user", str(config["User"])))
    return urlencode(pairs)


async def open_exec_session(client: EngineClient, container_id: str,
                            config: Mapping[str, Any],
                            size: tuple[int, int] | None = None) -> ExecSession:
    """Open a session the way ``client``'s endpoint allows (see the module notes)."""
    if size is not None:
        size = check_size(*size)
    if client.is_agent:
        return await WebSocketExecSession.start(client, container_id, config, size)
    try:
        return await UpgradeExecSession.start(client, container_id, config, size)
    except _UpgradeRefused:
        # An agent reached without a token (client certificates): its passthrough
        # cannot hijack, its WebSocket route can. The exec created for the upgrade
        # never started; the engine drops it with its container.
        return await WebSocketExecSession.start(client, container_id, config, size)



class OpeningSession:
    """What :meth:`Container.exec_session` returns: await it, or ``async with`` it.

    ``async with`` closes the session (ending its process) when the block is left;
    ``await`` hands the open session over, to be closed by the caller.
    """

    def __init__(self, opener: Callable[[], Awaitable[ExecSession]]) -> None:
        self._opener = opener
        self._session: ExecSession | None = None

    def __await__(self) -> Generator[Any, None, ExecSession]:
        return self._opener().__await__()

    async def __aenter__(self) -> ExecSession:
        self._session = await self._opener()
        return self._session

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

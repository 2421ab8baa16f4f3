"""The one canned engine of the unit tests, served through :class:`httpx.MockTransport`.

:class:`FakeEngine` records every request and answers the two unversioned endpoints the
client negotiates with, as the real engines do:

- ``GET /_ping`` with the engine's headers: Podman 4.3.1 (recorded from ``podman system
  service``) sends ``Api-Version: 1.41``, ``Libpod-Api-Version: 4.3.1`` and
  ``Server: Libpod/4.3.1 (linux)``, body ``OK``; Docker 24.0.7 sends ``Api-Version: 1.43``
  and ``Server: Docker/24.0.7 (linux)``;
- ``GET /version`` with the engine's own answer.

Every other request must carry the API prefix the client should have negotiated with that
engine (``/v1.41`` for Podman 4.3.1): the fake fails the test otherwise. It is then
dispatched by ``(method, path without the prefix)`` to the test's routes; a path without
a route gets a 404, as an engine answers an unknown endpoint. Like MockTransport handlers
and httpx's own transports, it never sets ``Response.request``: the client must not need it.

The same engine also answers on a real socket (:func:`serve_on_socket`), for the code that
speaks HTTP itself (local engine detection). And the canned container ``web`` (Podman's
inspect of it, :func:`web_engine`, :func:`open_web`) is here for every test file that needs
one.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import inspect
import json
import re
import socketserver
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ghostpanel_kernel.engine import Container, Environment

__all__ = [
    "BOLT",
    "BOLT_WITHOUT_API_HEADER",
    "DOCKER",
    "PODMAN",
    "URL",
    "WEB_ID",
    "WEB_IMAGE_ID",
    "WEB_INSPECT",
    "Body",
    "EngineProfile",
    "FakeEngine",
    "Route",
    "empty",
    "env_for",
    "frame",
    "json_answer",
    "json_lines",
    "lines_answer",
    "open_web",
    "serve_on_socket",
    "streamed",
    "web_engine",
    "web_environment",
]

URL = "unix:///run/podman/podman.sock"

Route = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]

# GET /version of Podman 4.3.1 on Debian 12, as recorded.
PODMAN_VERSION: dict[str, Any] = {
    "Platform": {"Name": "linux/amd64/debian-12"},
    "Components": [
        {"Name": "Podman Engine", "Version": "4.3.1",
         "Details": {"APIVersion": "4.3.1", "Arch": "amd64", "MinAPIVersion": "4.0.0",
                     "Os": "linux"}},
        {"Name": "Conmon", "Version": "conmon version 2.1.6, commit: unknown"},
        {"Name": "OCI Runtime (runc)", "Version": "runc version 1.1.5+ds1"},
    ],
    "Version": "4.3.1", "ApiVersion": "1.41", "MinAPIVersion": "1.24", "GitCommit": "",
    "GoVersion": "go1.19.8", "Os": "linux", "Arch": "amd64",
    "KernelVersion": "6.1.0-13-amd64", "BuildTime": "1970-01-01T00:00:00Z",
}

DOCKER_VERSION: dict[str, Any] = {
    "Platform": {"Name": "Docker Engine - Community"},
    "Components": [
        {"Name": "Engine", "Version": "24.0.7",
         "Details": {"ApiVersion": "1.43", "MinAPIVersion": "1.12", "Os": "linux"}},
        {"Name": "containerd", "Version": "1.6.26"},
        {"Name": "runc", "Version": "1.1.10"},
        {"Name": "docker-init", "Version": "0.19.0"},
    ],
    "Version": "24.0.7", "ApiVersion": "1.43", "MinAPIVersion": "1.12", "Os": "linux",
    "Arch": "arm64", "KernelVersion": "6.5.0-14-generic",
}

# What Bolt's compat server claims (Engine API 1.43).
BOLT_VERSION: dict[str, Any] = {
    "Platform": {"Name": "Bolt"},
    "Components": [{"Name": "Bolt compat api-server", "Version": "0.1.0"}],
    "Version": "0.1.0", "ApiVersion": "1.43", "Os": "linux", "Arch": "amd64",
}

TEXT = {"Content-Type": "text/plain; charset=utf-8"}


@dataclass(frozen=True)
class EngineProfile:
    """One engine as the client sees it before any API call.

    Attributes
    ----------
    ping_headers
        The headers of its ``GET /_ping`` answer (body ``OK``).
    version
        Its ``GET /version`` answer.
    prefix
        The API prefix GhostPanel must negotiate with it; every other request is checked.
    """

    ping_headers: Mapping[str, str]
    version: Mapping[str, Any]
    prefix: str


PODMAN = EngineProfile({"Api-Version": "1.41", "Libpod-Api-Version": "4.3.1",
                        "Server": "Libpod/4.3.1 (linux)", **TEXT}, PODMAN_VERSION, "/v1.41")
DOCKER = EngineProfile({"Api-Version": "1.43", "Server": "Docker/24.0.7 (linux)", **TEXT},
                       DOCKER_VERSION, "/v1.43")
# Bolt's compat server: API 1.43, and a Server header that names it.
BOLT = EngineProfile({"Api-Version": "1.43", "Server": "Bolt/0.1.0", **TEXT}, BOLT_VERSION,
                     "/v1.43")
# A partial compat server whose ping says nothing of the API: only /version tells.
BOLT_WITHOUT_API_HEADER = EngineProfile(TEXT, BOLT_VERSION, "/v1.43")

_VERSIONED = re.compile(r"/v\d+\.\d+(?=/)")


@dataclass(eq=False)
class FakeEngine:
    """A canned engine: records every request, answers ``/_ping``, ``/version``, routes.

    Parameters
    ----------
    routes
        Answers by ``(method, raw path without the /v1.xx prefix)``, e.g.
        ``("GET", "/containers/json")``; a route may be a coroutine function. Routes for
        ``/_ping`` or ``/version`` replace the built-in answers.
    profile
        The engine it plays (Podman 4.3.1 by default).
    answer
        The answer to API paths that have no route (a 404 by default).

    Attributes
    ----------
    log
        Every request, negotiation included, in order.
    requests
        The API requests only (versioned); ``calls`` is their short form.
    threads
        The names of the threads the requests came from.
    """

    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    profile: EngineProfile = PODMAN
    answer: Route | None = None
    log: list[httpx.Request] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.log.append(request)
        self.threads.add(threading.current_thread().name)
        path = _raw_path(request)
        versioned = _VERSIONED.match(path)
        if versioned:
            assert versioned.group() == self.profile.prefix, (
                f"{request.method} {path}: expected the {self.profile.prefix} prefix")
            self.requests.append(request)
            path = path[versioned.end():]
        else:
            assert path in ("/_ping", "/version"), f"unversioned API call {path}"
        route = self.routes.get((request.method, path))
        if route is None:
            route = self.answer if versioned else {"/_ping": self.ping,
                                                   "/version": self.version}[path]
        response = route(request) if route else httpx.Response(
            404, json={"message": f"no route {request.method} {path}"})
        return await response if inspect.isawaitable(response) else response

    def ping(self, request: httpx.Request) -> httpx.Response:
        """The engine's own ``/_ping`` answer (for routes that wrap it)."""
        return httpx.Response(200, headers=self.profile.ping_headers, content=b"OK")

    def version(self, request: httpx.Request) -> httpx.Response:
        """The engine's own ``/version`` answer (for routes that wrap it)."""
        return httpx.Response(200, json=self.profile.version)

    def count(self, path: str) -> int:
        """How many requests had this exact path (``/_ping``, ``/v1.41/containers/json``)."""
        return sum(1 for request in self.log if request.url.path == path)

    @property
    def paths(self) -> list[str]:
        """The raw path of every request, in order."""
        return [_raw_path(request) for request in self.log]

    @property
    def last(self) -> httpx.Request:
        return self.log[-1]

    @property
    def calls(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, raw path without the prefix, query) of each API request."""
        return [(r.method, _VERSIONED.sub("", _raw_path(r), count=1),
                 dict(r.url.params.multi_items())) for r in self.requests]

    def filters(self, index: int = -1) -> Any:
        """The decoded ``filters`` parameter of an API request."""
        return json.loads(self.calls[index][2]["filters"])


def _raw_path(request: httpx.Request) -> str:
    return request.url.raw_path.decode("ascii").split("?", 1)[0]


def env_for(engine: FakeEngine, url: str = URL, **options: Any) -> Environment:
    """An environment whose engine is ``engine``."""
    return Environment(url, transport=httpx.MockTransport(engine), **options)


# -- answers -----------------------------------------------------------------------------


class Body(httpx.AsyncByteStream):
    """A response body delivered in the given pieces, as reads off a socket would be.

    With ``then_wait`` the body stays open after its pieces, like a live stream with
    nothing more to say, until the reader gives up.
    """

    def __init__(self, pieces: Iterable[bytes], *, then_wait: bool = False) -> None:
        self.pieces = list(pieces)
        self.then_wait = then_wait
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            await asyncio.sleep(0)
            yield piece
        if self.then_wait:
            await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


def json_answer(body: Any, status: int = 200) -> Route:
    return lambda request: httpx.Response(status, json=body)


def empty(status: int = 204) -> Route:
    return lambda request: httpx.Response(status)


def streamed(pieces: Iterable[bytes], content_type: str, bodies: list[Body] | None = None,
             *, then_wait: bool = False) -> Route:
    """A streamed answer; each body made is appended to ``bodies``."""
    pieces = list(pieces)

    def answer(request: httpx.Request) -> httpx.Response:
        body = Body(pieces, then_wait=then_wait)
        if bodies is not None:
            bodies.append(body)
        return httpx.Response(200, headers={"Content-Type": content_type}, stream=body)

    return answer


def json_lines(*items: Any) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def lines_answer(lines: list[Any], cuts: int = 13) -> Route:
    """JSON lines streamed in pieces of ``cuts`` bytes (cut across lines)."""
    wire = json_lines(*lines)
    return streamed([wire[i:i + cuts] for i in range(0, len(wire), cuts)], "application/json")


def frame(stream: int, payload: bytes) -> bytes:
    """One frame of a multiplexed stream (1 stdout, 2 stderr)."""
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


# -- on a real socket --------------------------------------------------------------------


class _ThreadingUnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _ThreadingTCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True


def _socket_handler(engine: FakeEngine) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = httpx.Request(self.command, f"http://localhost{self.path}",
                                    headers=list(self.headers.items()),
                                    content=self.rfile.read(length) if length else b"")
            status, headers, body = asyncio.run(_answer_of(engine, request))
            # A client may hang up once it has read what it wanted (a probe reads only
            # the status line): that is its right, not the server's error.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a unix socket's peer has no address to log; the engine logs requests

    return Handler


async def _answer_of(engine: FakeEngine, request: httpx.Request
                     ) -> tuple[int, list[tuple[str, str]], bytes]:
    response = await engine(request)
    body = await response.aread()
    # Content-Length is the server's; a streamed answer is sent whole.
    headers = [(name, value) for name, value in response.headers.multi_items()
               if name.lower() not in ("content-length", "transfer-encoding")]
    return response.status_code, headers, body


@contextlib.contextmanager
def serve_on_socket(engine: FakeEngine, path: Path | None = None) -> Iterator[str]:
    """Serve ``engine`` over HTTP/1.1 on a unix socket at ``path``, or on 127.0.0.1.

    For code that opens sockets itself rather than through httpx. The server runs in a
    thread and is shut down, closed and joined on exit. Each answer is sent whole, with a
    Content-Length: a streamed route must end (``then_wait`` would never be sent).

    Yields
    ------
    str
        The engine's URL: ``unix://PATH`` or ``tcp://127.0.0.1:PORT``.
    """
    handler = _socket_handler(engine)
    server: socketserver.BaseServer
    if path is not None:
        server = _ThreadingUnixServer(str(path), handler)
        url = f"unix://{path}"
    else:
        tcp = _ThreadingTCPServer(("127.0.0.1", 0), handler)
        url = f"tcp://127.0.0.1:{tcp.server_address[1]}"
        server = tcp
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the fake engine's server did not stop"


# -- the canned container ``web`` --------------------------------------------------------

WEB_ID = "1df8c92e931a39be3686e640992d0f2ff780642770beaff3ab0642575a8941a0"
WEB_IMAGE_ID = "sha256:9b60bbf061e92814b872b0e824d8bb38f7b8da5ca4f5f813a0a5afb05f34f574"

# GET /containers/web/json (trimmed to the parts GhostPanel reads, as Podman 4.3.1 sends).
WEB_INSPECT: dict[str, Any] = {
    "Id": WEB_ID, "Created": "2026-11-27T21:01:47.358999564Z", "Path": "sh",
    "Args": ["-c", "echo out1; echo err1 >&2; sleep 300"],
    "State": {"Status": "running", "Running": True, "Paused": False, "Restarting": False,
              "OOMKilled": False, "Dead": False, "Pid": 19032, "ExitCode": 0, "Error": "",
              "StartedAt": "2026-11-27T21:01:47.543653929Z",
              "FinishedAt": "0001-01-01T00:00:00Z",
              "Health": {"Status": "", "FailingStreak": 0, "Log": None}},
    "Image": WEB_IMAGE_ID, "Name": "/web", "RestartCount": 0, "Driver": "overlay",
    "HostConfig": {"Binds": [], "NetworkMode": "bridge",
                   "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]},
                   "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}},
    "Config": {"Hostname": "1df8c92e931a", "User": "", "ExposedPorts": {"8080/tcp": {}},
               "Tty": False, "OpenStdin": False,
               "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                       "TERM=xterm", "container=podman", "HOME=/root"],
               "Cmd": ["sh", "-c", "echo out1; echo err1 >&2; sleep 300"],
               "Image": "localhost/busybox:latest", "Volumes": None, "WorkingDir": "/",
               "Entrypoint": [], "Labels": {"app": "web"}, "StopSignal": "15"},
    "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
                                  "9090/udp": None},
                        "IPAddress": "10.88.0.39", "Gateway": "10.88.0.1"},
}


def web_engine(routes: dict[tuple[str, str], Route] | None = None) -> FakeEngine:
    """A Podman 4.3.1 fake that also knows the container ``web`` (by name and id)."""
    return FakeEngine({("GET", f"/containers/{WEB_ID}/json"): json_answer(WEB_INSPECT),
                       ("GET", "/containers/web/json"): json_answer(WEB_INSPECT),
                       **(routes or {})})


def web_environment(engine: FakeEngine) -> Environment:
    """An environment named ``laptop`` on ``engine``."""
    return env_for(engine, name="laptop")


async def open_web(engine: FakeEngine) -> tuple[Environment, Container]:
    """The environment and the container ``web``, looked up; the look-up is then
    forgotten (``engine.requests`` is empty), so a test sees only its own requests."""
    env = web_environment(engine)
    container = await env.containers.get("web")
    engine.requests.clear()
    return env, container


def podman_pull_events(image_id: str) -> list[dict[str, Any]]:
    """A pull's progress stream as Podman 4.3 sends it: blob ids cut to 12 characters, no
    ``Extracting`` nor ``Pull complete``, one layer already present, and a last
    ``Download complete`` that names the pulled image (``image_id``), not a layer."""
    return [
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "cccccccccccc"},
        {"status": "Downloading", "progressDetail": {"current": 700, "total": 1400},
         "id": "cccccccccccc"},
        {"status": "Already exists", "progressDetail": {}, "id": "dddddddddddd"},
        {"status": "Downloading", "progressDetail": {"current": 1400, "total": 1400},
         "id": "cccccccccccc"},
        {"status": "Download complete", "progressDetail": {}, "id": "cccccccccccc"},
        {"status": "Download complete", "progressDetail": {}, "id": image_id},
    ]

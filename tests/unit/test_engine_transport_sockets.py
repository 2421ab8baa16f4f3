"""The engine transport against real sockets: replays, timeouts and the errors it maps.

A scripted peer (``tests/unit/socket_server.py``) reads each request as an engine would
and answers, hangs or drops the connection as the test says, so these tests see what the
real transport raises, not errors a mock made up. Every failure must arrive as one of
GhostPanel's errors whose message names the endpoint.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostpanel_kernel.engine import (
    Container,
    EngineConnectionError,
    EngineProtocolError,
    EngineTimeout,
    Environment,
    TLSConfig,
)
from tests.unit.socket_server import Drop, Hang, Paced, Received, ScriptedServer, answer

PING = answer(200, b"OK", headers={"Api-Version": "1.41", "Server": "Libpod/4.3.1 (linux)"})
EMPTY_LIST = answer(200, b"[]", headers={"Content-Type": "application/json"})
KILL = "/v1.41/containers/web/kill"


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "engine.sock"


def _web(env: Environment) -> Container:
    return Container(env.client, {"Id": "web", "Name": "/web"})


def open_env(opened: list[Environment], url: str, **options: object) -> Environment:
    env = Environment(url, **options)  # type: ignore[arg-type]
    opened.append(env)
    return env


# -- no request is replayed unless it is safe ------------------------------------------


async def test_a_post_on_a_connection_that_then_breaks_is_not_sent_again(
        sock: Path, opened: list[Environment]) -> None:
    # The engine reads the kill on a kept-alive connection and the connection drops
    # before any answer: the kill may have happened, so it must not be sent again.
    def script(request: Received) -> bytes | Drop:
        return PING if request.path == "/_ping" else Drop()

    async with ScriptedServer(script, unix_path=sock) as server:
        env = open_env(opened, server.url)
        assert await env.ping()  # negotiates, leaving a kept-alive connection
        with pytest.raises(EngineConnectionError) as caught:
            await _web(env).kill()
        await asyncio.sleep(0.05)  # time for a replay to arrive, were one sent
        assert server.paths("POST") == [KILL]
        message = str(caught.value)
        assert "not sent again" in message and f"POST {KILL}" in message
        assert server.url in message
        assert not isinstance(caught.value, EngineTimeout)


async def test_a_post_whose_idle_connection_the_engine_closed_goes_out_once(
        sock: Path, opened: list[Environment]) -> None:
    # Go's server closes idle keep-alive connections; a request must not be lost, or
    # sent twice, because the connection it would have used is gone: nothing was
    # written on it, so it is sent once, on a fresh connection.
    def script(request: Received) -> bytes | Drop:
        if request.path == "/_ping":
            return Drop(before=PING)  # answers "keep-alive", then closes anyway
        return answer(204)

    async with ScriptedServer(script, unix_path=sock) as server:
        env = open_env(opened, server.url)
        await env.ping()
        await asyncio.sleep(0.05)  # the close reaches the client while the conn is idle
        await _web(env).kill()
        assert server.paths("POST") == [KILL]
        assert server.connections == 3  # negotiation, ping, then the kill on a fresh one


async def test_a_get_on_a_stale_kept_alive_connection_is_retried_once(
        sock: Path, opened: list[Environment]) -> None:
    # The engine closed the kept-alive connection as the GET arrived: no answer byte
    # came, and a GET is replayable, so it goes again on a fresh connection.
    def script(request: Received) -> bytes | Drop:
        if request.path == "/_ping":
            return PING
        return Drop() if request.number_on_connection == 3 else EMPTY_LIST

    async with ScriptedServer(script, unix_path=sock) as server:
        env = open_env(opened, server.url)
        assert await env.containers.list() == []  # /_ping, then the list, on connection 1
        assert await env.containers.list() == []  # dropped on 1, answered on 2
        assert server.paths("GET") == ["/_ping", *["/v1.41/containers/json"] * 3]
        assert [r.connection for r in server.received] == [1, 1, 1, 2]


async def test_a_stray_line_end_before_an_answer_is_skipped_not_a_protocol_error(
        sock: Path, opened: list[Environment]) -> None:
    # Seen from Podman 4.3 on a kept-alive connection: "\nHTTP/1.1 204 No Content".
    # The POST must succeed, sent once, and the connection stay usable.
    def script(request: Received) -> bytes | Paced:
        if request.path == "/_ping":
            return PING
        return Paced(b"\n", 0.02, b"\r\n" + answer(204))

    async with ScriptedServer(script, unix_path=sock) as server:
        env = open_env(opened, server.url)
        await env.ping()
        await _web(env).kill()
        await _web(env).kill()
        assert server.paths("POST") == [KILL, KILL]
        assert server.connections == 1


async def test_a_get_whose_answer_had_begun_is_not_retried(
        sock: Path, opened: list[Environment]) -> None:
    def script(request: Received) -> bytes | Drop:
        if request.path == "/_ping":
            return PING
        return Drop(before=b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n[{")

    async with ScriptedServer(script, unix_path=sock) as server:
        env = open_env(opened, server.url)
        with pytest.raises(EngineConnectionError, match="mid-response") as caught:
            await env.containers.list()
        assert server.paths("GET") == ["/_ping", "/v1.41/containers/json"]
        assert str(sock) in str(caught.value)


# -- timeouts --------------------------------------------------------------------------


async def test_a_silent_host_costs_the_response_timeout(opened: list[Environment]) -> None:
    # It accepts the connection and never answers: found in response_timeout, not in
    # the 60 s a whole request may take.
    async with ScriptedServer(lambda request: Hang()) as server:
        env = open_env(opened, server.url, response_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(EngineTimeout) as caught:
            await env.containers.get("web")
        assert time.monotonic() - started < 2.0
        message = str(caught.value)
        assert "sent no answer within 0.3 s" in message
        assert server.url in message


async def test_a_call_that_is_slow_by_nature_waits_with_its_own_timeout(
        sock: Path, opened: list[Environment]) -> None:
    # stop(timeout=...) and wait() answer only when the container has stopped: their
    # own timeout replaces the short first-byte limit.
    async def script(request: Received) -> bytes:
        if request.path == "/_ping":
            return PING
        await asyncio.sleep(0.5)
        return answer(200, b'{"StatusCode": 3}')

    async with ScriptedServer(script, unix_path=sock) as server:
        env = open_env(opened, server.url, response_timeout=0.2)
        assert await _web(env).wait(timeout=5.0) == 3


async def test_a_stream_has_no_limit_once_its_answer_has_begun(
        sock: Path, opened: list[Environment]) -> None:
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")

    def script(request: Received) -> bytes | Paced:
        if request.path == "/_ping":
            return PING
        return Paced(head, 0.6, b"6\r\nquiet\n\r\n", 0.1, b"0\r\n\r\n")

    async with ScriptedServer(script, unix_path=sock) as server:
        env = open_env(opened, server.url, response_timeout=0.2, timeout=0.3)
        container = Container(env.client, {"Id": "web", "Config": {"Tty": True}})
        lines = [line.text async for line in container.logs(follow=True)]
        assert lines == ["quiet"]


def _listener_with_a_full_queue() -> Iterator[tuple[int, list[socket.socket]]]:
    """A loopback port whose accept queue is full: connections to it never complete."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = [server]
    for _ in range(4):  # Linux accepts backlog + 1 before it drops SYNs
        client = socket.socket()
        client.setblocking(False)
        try:
            client.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        held.append(client)
    yield port, held


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    for port, held in _listener_with_a_full_queue():
        try:
            yield port
        finally:
            for item in held:
                item.close()


async def test_a_host_that_never_accepts_costs_the_connect_timeout(
        unaccepting_port: int, opened: list[Environment]) -> None:
    url = f"tcp://127.0.0.1:{unaccepting_port}"
    env = open_env(opened, url, connect_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(EngineTimeout) as caught:
        await env.ping()
    assert time.monotonic() - started < 2.0
    assert "did not accept a connection in time" in str(caught.value)
    assert f"127.0.0.1:{unaccepting_port}" in str(caught.value)


# -- each socket failure, as the real transport raises it ------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_refused(opened: list[Environment]) -> None:
    port = _free_port()
    env = open_env(opened, f"tcp://127.0.0.1:{port}")
    with pytest.raises(EngineConnectionError) as caught:
        await env.ping()
    assert type(caught.value) is EngineConnectionError
    assert f"connection to 127.0.0.1:{port} refused" in str(caught.value)
    assert caught.value.endpoint == f"tcp://127.0.0.1:{port}"


async def test_absent_unix_socket(sock: Path, opened: list[Environment]) -> None:
    env = open_env(opened, f"unix://{sock}")
    with pytest.raises(EngineConnectionError) as caught:
        await env.containers.list()
    assert type(caught.value) is EngineConnectionError
    assert f"engine socket {sock} does not exist" in str(caught.value)


async def test_server_closing_mid_response(sock: Path, opened: list[Environment]) -> None:
    def script(request: Received) -> bytes | Drop:
        return Drop(before=b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 100\r\n"
                           b"\r\nOK, and then")

    async with ScriptedServer(script, unix_path=sock) as server:
        env = open_env(opened, server.url)
        with pytest.raises(EngineConnectionError) as caught:
            await env.ping()
        assert type(caught.value) is EngineConnectionError
        assert f"{sock} closed the connection mid-response" in str(caught.value)


async def test_tls_handshake_failure(opened: list[Environment]) -> None:
    # A plain-HTTP peer on an https:// endpoint: the handshake reads its answer as a
    # TLS record and fails.
    async with ScriptedServer(lambda request: answer(400),
                              greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n") as server:
        url = server.url.replace("tcp://", "https://")
        env = open_env(opened, url, tls=TLSConfig(verify=False))
        with pytest.raises(EngineConnectionError) as caught:
            await env.ping()
        assert "TLS handshake with 127.0.0.1:" in str(caught.value)
        assert url in str(caught.value)


async def test_a_service_that_does_not_speak_http(opened: list[Environment]) -> None:
    banner = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
    async with ScriptedServer(lambda request: Drop(before=b"Protocol mismatch.\r\n"),
                              greeting=banner) as server:
        env = open_env(opened, server.url)
        with pytest.raises(EngineProtocolError) as caught:
            await env.ping()
        message = str(caught.value)
        assert "does not speak HTTP, so it is not an engine" in message
        assert "SSH-2.0-OpenSSH" in message and server.url in message


async def test_a_talking_service_that_never_hangs_up(opened: list[Environment]) -> None:
    # An SMTP server greets, answers a line it does not know, and waits for more.
    async with ScriptedServer(lambda request: Hang(),
                              greeting=b"220 mail.example ESMTP Postfix\r\n") as server:
        env = open_env(opened, server.url, response_timeout=0.3)
        with pytest.raises(EngineProtocolError, match=r"220 mail\.example ESMTP") as caught:
            await env.ping()
        assert "not an engine" in str(caught.value) and server.url in str(caught.value)


async def test_a_tls_server_on_a_plain_endpoint(opened: list[Environment]) -> None:
    alert = b"\x15\x03\x01\x00\x02\x02\x46"  # what a TLS server says to plain text
    async with ScriptedServer(lambda request: Drop(before=alert)) as server:
        env = open_env(opened, server.url)
        with pytest.raises(EngineProtocolError, match="https://"):
            await env.ping()


async def test_a_web_server_answering_html(opened: list[Environment]) -> None:
    page = b"<html><head><title>404 Not Found</title></head><body>nginx</body></html>"
    html = answer(404, page, headers={"Content-Type": "text/html", "Server": "nginx"})
    async with ScriptedServer(lambda request: html) as server:
        env = open_env(opened, server.url)
        with pytest.raises(EngineProtocolError) as caught:
            await env.containers.list()
        message = str(caught.value)
        assert "GET /_ping answered 404" in message and "not an engine" in message
        assert "404 Not Found" in message and server.url in message


async def test_a_malformed_content_length(sock: Path, opened: list[Environment]) -> None:
    async with ScriptedServer(lambda request: b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
                              unix_path=sock) as server:
        env = open_env(opened, server.url)
        with pytest.raises(EngineProtocolError, match="malformed Content-Length"):
            await env.ping()


# -- the command line: one line and exit 3 for a peer that is not an engine -------------


@pytest.fixture
def html_socket(tmp_path: Path) -> Iterator[Path]:
    """A blocking web server on a unix socket, answering every request with a 404 page."""
    import socketserver
    import threading

    page = b"<html><title>404 Not Found</title><body>nginx</body></html>"

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            self.wfile.write(answer(404, page, headers={"Content-Type": "text/html"},
                                    keep_alive=False))

    path = tmp_path / "web.sock"
    server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_cli_exits_3_with_one_line_for_a_web_server(html_socket: Path,
                                                        tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ghostpanel_kernel.cli import CliContext, cli
    from ghostpanel_kernel.environments import EnvironmentRegistry

    def registry() -> EnvironmentRegistry:
        return EnvironmentRegistry(f"sqlite:///{tmp_path / 'registry.db'}",
                                   detect=lambda: None)

    context = CliContext(registry_factory=registry)
    runner = CliRunner()
    url = f"unix://{html_socket}"
    assert runner.invoke(cli, ["env", "add", "web", url], obj=context).exit_code == 0
    result = runner.invoke(cli, ["ps", "--env", "web"], obj=context)
    assert result.exit_code == 3, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert "GET /_ping answered 404" in lines[0] and "not an engine" in lines[0]
    assert url in lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)

"""Stopping ``ghostpanel agent`` while clients hold streams open or misbehave in the TLS
close: SIGTERM must still end it with exit status 0, within its graceful timeout.

Hypercorn 0.18 gathers every connection's task at a stop; one task that raised (a TLS
close failing with ``APPLICATION_DATA_AFTER_CLOSE_NOTIFY``) made the whole agent exit
with status 1. See ``ghostpanel_kernel/server/_serve.py`` (``_ClosingTCPServer``).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ghostpanel_kernel.server._serve import GRACEFUL_TIMEOUT, TLS_SHUTDOWN_TIMEOUT
from tests.agent_process import (  # noqa: F401
    RunningAgent,
    agent_factory_fixture,
    agent_fixture,
)
from tests.integration.conftest import MakeContainer

pytestmark = pytest.mark.integration

#: What a stop may take beyond the graceful wait and one TLS close: the interpreter's
#: own exit and a loaded CI machine.
_STOP_MARGIN = 4.0


def _tls_socket(agent: RunningAgent) -> ssl.SSLSocket:
    """A raw TLS 1.3 connection to the agent, HTTP/1.1 (no ALPN: Hypercorn's default)."""
    raw = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
    return agent.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")


def _open_stream(agent: RunningAgent, path: str) -> ssl.SSLSocket:
    """Send ``GET path`` and return the connection once the answer's head has come, the
    body left unread (a client that holds a stream open)."""
    connection = _tls_socket(agent)
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"Authorization: Bearer {agent.token}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = connection.recv(4096)
        assert chunk, f"the agent closed {path} before answering:\n{agent.log()}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return connection


@contextlib.contextmanager
def _data_after_close_notify(agent: RunningAgent) -> Iterator[threading.Event]:
    """A connection that keeps sending bytes of a request head, one every 20 ms, so that
    some arrive after the agent's ``close_notify`` at the stop: OpenSSL then fails the
    agent's TLS close (``APPLICATION_DATA_AFTER_CLOSE_NOTIFY``). The event is set once
    the first bytes were sent."""
    connection = _tls_socket(agent)
    started = threading.Event()
    done = threading.Event()

    def trickle() -> None:
        with contextlib.suppress(OSError):
            connection.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            started.set()
            while not done.is_set():
                connection.sendall(b"X")
                time.sleep(0.02)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        yield started
    finally:
        done.set()
        sender.join(5)
        connection.close()


def _stop_timed(agent: RunningAgent) -> tuple[int | None, float]:
    """SIGTERM the agent; its exit status and how long it took."""
    began = time.monotonic()
    status = agent.stop(signal.SIGTERM, expect_clean=False)
    return status, time.monotonic() - began


def _assert_clean_stop(agent: RunningAgent, status: int | None, took: float) -> None:
    assert status == 0, f"the agent exited with {status}:\n{agent.log()}"
    assert took < GRACEFUL_TIMEOUT + TLS_SHUTDOWN_TIMEOUT + _STOP_MARGIN, (
        f"the stop took {took:.1f} s:\n{agent.log()}")
    assert "Traceback" not in agent.log(), agent.log()


def test_data_after_close_notify_does_not_fail_the_stop(
        agent_factory: Callable[..., RunningAgent]) -> None:
    """A client that writes after the agent's TLS close: the connection is over, the
    agent still exits 0."""
    agent = agent_factory()
    with _data_after_close_notify(agent) as started:
        assert started.wait(5)
        time.sleep(0.2)
        status, took = _stop_timed(agent)
    _assert_clean_stop(agent, status, took)


async def test_streams_and_a_bad_tls_close_at_a_stop(
        agent_factory: Callable[..., RunningAgent], make_container: MakeContainer) -> None:
    """Open streams (``logs -f`` and engine events through the passthrough) and a client
    writing after ``close_notify``, all at once: the graceful timeout cuts the streams,
    the bad close ends its connection, and the agent exits 0 in time."""
    # It prints: Podman sends the head of ``logs -f`` only with the first line.
    container = await make_container(
        command=["sh", "-c", "while true; do echo tick; sleep 0.2; done"])
    await container.start()
    agent = agent_factory()
    streams = [
        _open_stream(agent, f"/v1.41/containers/{container.id}/logs?follow=1&stdout=1"),
        _open_stream(agent, "/v1.41/events"),
    ]
    try:
        with _data_after_close_notify(agent) as started:
            assert started.wait(5)
            time.sleep(0.2)
            status, took = _stop_timed(agent)
    finally:
        for stream in streams:
            stream.close()
    _assert_clean_stop(agent, status, took)

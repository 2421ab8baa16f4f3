"""``_tcp_guard``: a failed TLS close ends the connection quietly; nothing else is
swallowed. (The real stop, with a real client, is tests/integration/test_agent_stop.py.)"""

from __future__ import annotations

import ssl
from typing import Any

import hypercorn.asyncio.run as hypercorn_run
import pytest
from hypercorn.asyncio.worker_context import AsyncioSingleTask

from ghostpanel_kernel.server._tcp_guard import ClosingTCPServer, install


class _Writer:
    """A stream writer whose ``wait_closed`` raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.closed = False

    def write_eof(self) -> None:
        raise OSError("TLS has no half-close")

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        raise self.error


def _server(writer: _Writer) -> ClosingTCPServer:
    # Only what _close reads: building a whole connection needs a live socket.
    server: Any = object.__new__(ClosingTCPServer)
    server.writer = writer
    server.idle_task = AsyncioSingleTask()
    return server  # type: ignore[no-any-return]


@pytest.mark.parametrize("error", [
    ssl.SSLError(1, "[SSL: APPLICATION_DATA_AFTER_CLOSE_NOTIFY] application data "
                    "after close notify"),
    TimeoutError("SSL shutdown timed out"),
    ConnectionRefusedError(),
])
async def test_errors_of_the_close_end_the_connection_quietly(error: BaseException) -> None:
    writer = _Writer(error)
    await _server(writer)._close()  # before the guard: raised, and failed the stop
    assert writer.closed


async def test_other_errors_still_propagate() -> None:
    with pytest.raises(ValueError, match="a bug"):
        await _server(_Writer(ValueError("a bug")))._close()


def test_install_replaces_the_name_hypercorn_looks_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hypercorn_run, "TCPServer", hypercorn_run.TCPServer)
    assert install()
    assert hypercorn_run.TCPServer is ClosingTCPServer

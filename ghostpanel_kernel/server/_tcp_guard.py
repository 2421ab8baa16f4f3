"""A failed TLS close ends one connection, never the agent (Hypercorn 0.18, asyncio).

At a stop, Hypercorn's ``asyncio/run.py`` ``worker_serve`` waits for every connection
task with ``asyncio.wait_for(asyncio.gather(*server_tasks), graceful_timeout)``: the
first task that raised makes ``gather`` raise, ``worker_serve`` re-raises it, and the
agent exits with status 1 (the other connections are not even waited for). Each task
runs ``asyncio/tcp_server.py`` ``TCPServer.run``, whose ``finally`` awaits
``TCPServer._close``: ``writer.close()`` then ``writer.wait_closed()``, which raises
whatever ended asyncio's TLS close. ``_close`` lets through, among others:

- ``ssl.SSLError`` ``APPLICATION_DATA_AFTER_CLOSE_NOTIFY``: the client sent data after
  the agent's ``close_notify`` (a client still writing a request when the stop closes
  its kept-alive connection; OpenSSL 3 fails the TLS 1.3 shutdown then);
- ``TimeoutError`` "SSL shutdown timed out": the client never answered the close
  within asyncio's shutdown timeout (see ``_serve.TLS_SHUTDOWN_TIMEOUT``);
- a ``ConnectionError`` other than the three it names.

Outside a stop the same error ends that connection's task with a traceback logged
("Unhandled exception in client_connected_cb"). In each case the connection is over,
which is all a close has to achieve: :class:`ClosingTCPServer` treats these errors of
the close as the connection's end (logged at debug). Nothing else is caught: an error
while serving a request is still Hypercorn's and the application's to report.
"""

from __future__ import annotations

import logging
import ssl

import hypercorn.asyncio.run as hypercorn_run
from hypercorn.asyncio.tcp_server import TCPServer

__all__ = ["CLOSE_ERRORS", "ClosingTCPServer", "install"]

_log = logging.getLogger("ghostpanel.agent")

#: Errors of closing a client connection that mean only that it is closed.
CLOSE_ERRORS: tuple[type[BaseException], ...] = (ssl.SSLError, ConnectionError,
                                                 TimeoutError)


class ClosingTCPServer(TCPServer):
    """Hypercorn's TCP connection handler, whose close cannot fail the connection task
    (see the module's notes)."""

    async def _close(self) -> None:
        try:
            await super()._close()
        except CLOSE_ERRORS as error:
            _log.debug("client connection ended in its close: %r", error)


def install() -> bool:
    """Put :class:`ClosingTCPServer` where Hypercorn's asyncio server looks its TCP
    connection handler up at each connection; whether it was (only where that handler
    has the ``_close`` it overrides)."""
    if not callable(getattr(TCPServer, "_close", None)):
        _log.warning("this Hypercorn's TCP server has no _close: serving it unguarded "
                     "(a failed TLS close may end the agent with status 1 at a stop)")
        return False
    hypercorn_run.TCPServer = ClosingTCPServer  # type: ignore[attr-defined]
    return True

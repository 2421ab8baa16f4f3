"""Two repairs to Hypercorn's HTTP/3 server (Hypercorn 0.18 with aioquic 1.x).

**A cancelled request ended the whole HTTP/3 listener.** A client that gives up on a
request resets its stream and asks the server to stop sending on it (RFC 9114 4.1.1).
Hypercorn's ``protocol/h3.py`` ``H3Protocol.handle`` passes neither QUIC event on, so
the application is never told and answers anyway; ``H3Protocol.stream_send`` then
writes on the reset stream, aioquic raises ("Cannot send data after the stream was
reset"), the application fails, and ``asyncio/task_group.py`` ``_handle`` sends the
500 of a failed application, on the same stream: that raises again, out of the task,
and ``asyncio.TaskGroup`` ends ``asyncio/udp_server.py`` ``UDPServer.run`` with it. From
then on nothing reads the UDP socket: HTTP/3 is gone for every client (HTTPS keeps
serving), and any client could do it. ``_h3_stream_guard.GuardedH3Protocol`` turns the
reset into
the ASGI ``http.disconnect`` the application expects (so a forwarded ``logs -f`` ends
too) and drops what is sent on a stream that can no longer carry it; an error of
sending on one stream ends that stream, never the listener.

**A stop sent no QUIC close and left the UDP socket open.** ``UDPServer.run`` ends
without closing its connections or its transport: clients learned of the stop only
from their idle timeout, and the socket lived as long as the process. At a stop
:class:`ClosingUDPServer` closes each connection that has no request in flight as soon
as the server is told to stop (HTTP/3's ``H3_NO_ERROR`` application close, the QUIC
equivalent of closing an idle kept-alive TCP connection), the rest when their last
request ends or the graceful timeout cuts them, then closes the socket.

**Dropped datagrams.** Hypercorn queues at most 10 datagrams for its QUIC protocol and
drops the rest; :class:`ClosingUDPServer` queues :data:`DATAGRAM_QUEUE`.

**Memory.** :class:`ClosingUDPServer` also makes Hypercorn's QUIC protocol when the
first QUIC packet arrives rather than at start, so aioquic and ``cryptography`` are
loaded only once an HTTP/3 client comes (see :meth:`ClosingUDPServer._quic_protocol`).

Both are installed by :func:`install` (the agent's :func:`~._serve.serve` calls it
when it serves HTTP/3) on the Hypercorn versions they were written against, by
replacing the name where Hypercorn's server looks its UDP server up (and, once loaded,
``_h3_stream_guard`` the name its QUIC protocol looks the HTTP/3 protocol up by).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hypercorn
import hypercorn.asyncio.run as hypercorn_run
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.udp_server import UDPServer
from hypercorn.events import RawData
from hypercorn.typing import ConnectionState
from hypercorn.utils import parse_socket_addr

if TYPE_CHECKING:
    from hypercorn.protocol.quic import QuicProtocol

__all__ = ["ClosingUDPServer", "hypercorn_version", "install"]

_log = logging.getLogger("ghostpanel.agent.http3")

#: RFC 9114 8.1: a clean close.
H3_NO_ERROR = 0x100

#: Hypercorn releases whose ``H3Protocol`` and ``UDPServer`` these classes were checked
#: against (``(major, minor)``); on another one :func:`install` leaves Hypercorn as it is
#: and says so, and ``tests/integration/test_agent_serving.py`` shows whether it still
#: needs them.
_KNOWN_VERSIONS = frozenset({(0, 17), (0, 18)})


#: Datagrams waiting for the QUIC protocol. Hypercorn's queue holds 10 and drops the
#: rest: with 50 requests in flight, a busy agent dropped clients' packets (PINGs and
#: ACKs included), clients waited for retransmissions, and GhostPanel's HTTP/3 client
#: took the silence for a dead connection. 1,024 full datagrams are ~1.5 MB at most.
DATAGRAM_QUEUE = 1024


class ClosingUDPServer(UDPServer):
    """Hypercorn's UDP server, which makes its QUIC protocol on the first packet, queues
    more datagrams, and closes its QUIC connections and its socket when it stops (see
    the module notes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.protocol_queue = asyncio.Queue(DATAGRAM_QUEUE)

    async def run(self) -> None:
        """Hypercorn's ``UDPServer.run`` (0.18), with the QUIC protocol made when the
        first QUIC packet comes (see :meth:`_quic_protocol`), idle connections closed
        once the server is stopping, and every connection and the socket at the end."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        server = parse_socket_addr(sock.family, sock.getsockname())
        protocol: QuicProtocol | None = None
        try:
            async with TaskGroup(self.loop) as task_group:
                while not self.context.terminated.is_set() or (
                        protocol is not None and not protocol.idle):
                    event = await self.protocol_queue.get()
                    if protocol is None:
                        # Nothing to serve (an empty datagram: the stop's own wake-up,
                        # see _serve) or no new connection wanted: no protocol needed.
                        if self.context.terminated.is_set() or (
                                isinstance(event, RawData) and not event.data):
                            continue
                        protocol = self._quic_protocol(task_group, server)
                    await protocol.handle(event)
                    if self.context.terminated.is_set():
                        await self._close_connections(only_idle=True)
        finally:
            await self._close_connections(only_idle=False)
            self.transport.close()

    def _quic_protocol(self, task_group: TaskGroup, server: tuple[str, int] | None
                       ) -> QuicProtocol:
        """Hypercorn's QUIC protocol, with :class:`~._h3_stream_guard.GuardedH3Protocol`.

        Made on the first packet rather than at start, as Hypercorn does: it imports
        aioquic and ``cryptography`` (about 8 MB of the agent's memory, with
        ``cryptography``'s own OpenSSL) and loads the certificate, which an agent that
        only HTTPS clients use never needs. The first HTTP/3 handshake waits for that
        once (a few hundred milliseconds on a loaded machine).
        """
        from ._h3_stream_guard import QuicProtocol

        self.protocol = QuicProtocol(self.app, self.config, self.context, task_group,
                                     ConnectionState(self.state.copy()), server,
                                     self.protocol_send)
        return self.protocol

    async def _close_connections(self, *, only_idle: bool) -> None:
        protocol: QuicProtocol | None = getattr(self, "protocol", None)
        if protocol is None:
            return
        # Each connection is in the table once per connection id: close each once.
        connections = {id(connection): connection
                       for connection in protocol.connections.values()}
        for connection in connections.values():
            h3 = connection.h3
            if only_idle and h3 is not None and h3.streams:
                continue  # a request in flight: it gets the graceful timeout
            connection.quic.close(error_code=H3_NO_ERROR, reason_phrase="agent stopping")
            # Sent here rather than through ``protocol.send_all``: at the very end the
            # task group that would run its timer is gone.
            for data, address in connection.quic.datagrams_to_send(
                    now=self.context.time()):
                assert self.transport is not None
                self.transport.sendto(data, address)
            for cid in connection.cids:
                protocol.connections.pop(cid, None)
            connection.cids = set()
            await connection.task.stop()


def hypercorn_version() -> tuple[int, int] | None:
    """The installed Hypercorn's ``(major, minor)``, or None when it cannot be told.

    Read from the ``hypercorn-X.Y.Z.dist-info`` folder beside the package, which costs
    no import (``importlib.metadata`` costs the agent about 2 MB of memory).
    """
    site = Path(hypercorn.__file__).resolve().parent.parent
    for info in site.glob("hypercorn-*.dist-info"):
        parts = info.name.removeprefix("hypercorn-").removesuffix(".dist-info").split(".")
        try:
            return int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            continue
    return None


def install() -> bool:
    """Put :class:`ClosingUDPServer` where Hypercorn's asyncio server looks it up (it
    brings :class:`~._h3_stream_guard.GuardedH3Protocol` with it); whether it was (only
    on a known version)."""
    version = hypercorn_version()
    if version not in _KNOWN_VERSIONS:
        _log.warning("Hypercorn %s is not a version the agent's HTTP/3 guards were "
                     "written for: serving it unguarded (a client cancelling a request "
                     "may end the HTTP/3 listener)", version)
        return False
    hypercorn_run.UDPServer = ClosingUDPServer  # type: ignore[attr-defined]
    return True

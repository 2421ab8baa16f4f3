"""The HTTP/3 protocol the agent serves with: Hypercorn's, told about cancelled streams.

See :mod:`._h3_guard` for why. This module imports aioquic (and, through it,
``cryptography``): :class:`~._h3_guard.ClosingUDPServer` loads it when the first QUIC
packet arrives, so an agent that no HTTP/3 client has reached does not carry it.
"""

from __future__ import annotations

import logging
from typing import Any

import hypercorn.protocol.quic as hypercorn_quic
from aioquic.quic.events import (
    QuicEvent,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.h3 import H3Protocol

__all__ = ["GuardedH3Protocol", "QuicProtocol"]

_log = logging.getLogger("ghostpanel.agent.http3")

#: RFC 9114 8.1: a request the server had to abandon.
H3_INTERNAL_ERROR = 0x102


class GuardedH3Protocol(H3Protocol):
    """Hypercorn's HTTP/3 protocol, told about streams the client cancelled (see the
    module notes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Cancelled streams whose client may still send request data (it stopped our
        # sending, not its own): that data is dropped unread until the stream's end.
        self._draining: set[int] = set()

    async def handle(self, quic_event: QuicEvent) -> None:
        """Hypercorn's handling, then a client's reset of a request stream ends that
        request for the application."""
        if isinstance(quic_event, StreamDataReceived) and \
                quic_event.stream_id in self._draining:
            if quic_event.end_stream:
                self._draining.discard(quic_event.stream_id)
            return  # the rest of a cancelled request's body: nobody reads it
        if isinstance(quic_event, StreamReset):
            self._draining.discard(quic_event.stream_id)
        await super().handle(quic_event)
        if isinstance(quic_event, StreamReset | StopSendingReceived):
            await self._cancel(quic_event.stream_id)

    async def stream_send(self, event: StreamEvent) -> None:
        """Send ``event`` unless its stream was cancelled; an error of sending ends that
        stream alone."""
        stream_id = event.stream_id
        if not isinstance(event, StreamClosed) and stream_id not in self.streams:
            return  # cancelled: what the application still sends has nowhere to go
        try:
            await super().stream_send(event)
        except Exception as error:  # one stream's failure, see the notes
            # aioquic refuses a stream the client reset meanwhile (RuntimeError,
            # ValueError, or the h3 layer's FrameUnexpected): an ordinary race. Anything
            # else is a bug worth a traceback, but still only this stream's.
            _log.log(logging.DEBUG if isinstance(error, RuntimeError | ValueError)
                     else logging.WARNING, "HTTP/3 stream %d ended: %s", stream_id, error,
                     exc_info=not isinstance(error, RuntimeError | ValueError))
            self._abandon(stream_id)
            await self._cancel(stream_id)

    async def _cancel(self, stream_id: int) -> None:
        """End a request the client no longer wants: its stream is forgotten (Hypercorn
        forgets a stream only when the application ends it, which for a stream closed
        under it is never) and the application told (``http.disconnect``)."""
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        receiving = self._quic_streams().get(stream_id)
        if receiving is not None and not receiving.receiver.is_finished:
            self._draining.add(stream_id)
        await stream.handle(StreamClosed(stream_id=stream_id))

    def _quic_streams(self) -> dict[int, Any]:
        # aioquic's own table of live streams (private, stable through 1.x): whether the
        # client may still send on a stream.
        streams: dict[int, Any] = getattr(self.connection._quic, "_streams", {})
        return streams

    def _abandon(self, stream_id: int) -> None:
        """Reset our side of a stream that failed, so the client is not left waiting."""
        quic = self.connection._quic  # the QUIC connection under the h3 one
        try:
            quic.reset_stream(stream_id, H3_INTERNAL_ERROR)
        except Exception:  # already reset or finished: nothing to do
            return


# Hypercorn's QUIC protocol makes its HTTP/3 protocol by this module-level name.
hypercorn_quic.H3Protocol = GuardedH3Protocol  # type: ignore[attr-defined]
QuicProtocol = hypercorn_quic.QuicProtocol

"""A request body read whole at the ASGI level, and given again to the app behind.

The gateway judges a request by its body before it lets it through, and the
``/api/v1`` forwarder must know a body's length before it sends anything; both read it
whole from ``receive`` here, and :func:`replay` hands it on as if it were unread.
"""

from __future__ import annotations

from ..server._problems import Message, Receive
from ..server._request_body import MAX_BODY

__all__ = ["read_whole", "replay"]


async def read_whole(receive: Receive) -> bytes | None:
    """The whole request body.

    Parameters
    ----------
    receive : Receive
        The ASGI ``receive`` of the request.

    Returns
    -------
    bytes or None
        The body; None when it is over :data:`MAX_BODY` bytes (reading stops there, so
        a client cannot make the gateway hold more) or the client left.
    """
    pieces: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        pieces.append(chunk)
        if not message.get("more_body", False):
            return b"".join(pieces)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then the client's own messages.

    Parameters
    ----------
    body : bytes
        The body read already (with :func:`read_whole` or the like).
    receive : Receive
        The request's own ``receive``; its only use from then on is to tell that the
        client has gone.

    Returns
    -------
    Receive
        The ``receive`` to give the app behind the gateway.
    """
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed

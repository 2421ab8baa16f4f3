"""The ASGI lifespan protocol, for the agent's app and the gateway's alike.

Both apps are plain ASGI callables (no framework owns their lifespan), and both answer
it the same way: run a start-up and a shut-down hook, and report a hook's failure to
the server in the ``*.failed`` message rather than raising into it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ._problems import Receive, Send

__all__ = ["serve_lifespan"]


async def serve_lifespan(receive: Receive, send: Send, *,
                         startup: Callable[[], Awaitable[None]] | None,
                         shutdown: Callable[[], Awaitable[None]]) -> None:
    """Answer one ``lifespan`` connection until the server shuts down.

    Parameters
    ----------
    receive, send : Receive, Send
        The lifespan connection's ASGI callables.
    startup : Callable[[], Awaitable[None]] or None
        Awaited on ``lifespan.startup``; None for an app with nothing to start.
    shutdown : Callable[[], Awaitable[None]]
        Awaited on ``lifespan.shutdown``.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if startup is not None:
                try:
                    await startup()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await shutdown()
            except Exception as error:
                await send({"type": "lifespan.shutdown.failed", "message": str(error)})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return

"""RFC 9457 problem documents (``application/problem+json``), for raw ASGI and Starlette.

Every error the agent answers itself has this shape, so that a client reads one format
whatever failed: ``{"type", "title", "status", "detail"}`` plus members of its own.
``type`` is ``about:blank``: the status and ``title`` say what kind of problem it is,
``detail`` says what happened this time.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["PROBLEM_TYPE", "Message", "Receive", "Scope", "Send", "problem_body",
           "problem_response", "send_problem"]

PROBLEM_TYPE = "application/problem+json"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def problem_body(status: int, detail: str, *, title: str | None = None,
                 **extra: object) -> bytes:
    """The JSON of a problem document.

    Examples
    --------
    >>> json.loads(problem_body(404, "no route GET /api/v1/x"))
    {'type': 'about:blank', 'title': 'Not Found', 'status': 404, 'detail': 'no route GET /api/v1/x'}
    """
    document = {"type": "about:blank", "title": title or HTTPStatus(status).phrase,
                "status": status, "detail": detail, **extra}
    return json.dumps(document).encode()


async def send_problem(send: Send, status: int, detail: str, *, title: str | None = None,
                       headers: Iterable[tuple[bytes, bytes]] = (),
                       response_type: str = "http.response", **extra: object) -> None:
    """Answer an ASGI request with a problem document.

    ``response_type`` is ``"websocket.http.response"`` to refuse a WebSocket handshake
    with an HTTP answer (the ASGI denial-response extension).
    """
    body = problem_body(status, detail, title=title, **extra)
    await send({"type": f"{response_type}.start", "status": status,
                "headers": [(b"content-type", PROBLEM_TYPE.encode()),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": f"{response_type}.body", "body": body, "more_body": False})


def problem_response(status: int, detail: str, *, title: str | None = None,
                     headers: Mapping[str, str] | None = None, **extra: object) -> Response:
    """A Starlette response carrying a problem document."""
    from starlette.responses import Response

    return Response(problem_body(status, detail, title=title, **extra), status_code=status,
                    media_type=PROBLEM_TYPE, headers=headers)

"""Reading a request body for ``/api/v1`` routes: bounded, decoded, with clear refusals.

Every route that takes a body reads it here, so that a body too large (413), not
UTF-8 or not JSON (400), or of the wrong JSON type (422) gets the same problem answer
whichever route it reached, and no route holds more than :data:`MAX_BODY` bytes.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

__all__ = ["MAX_BODY", "BodyProblem", "json_body", "json_object", "text_body"]

#: The most bytes an API body may have (a Boltfile or a container spec is a few KiB).
MAX_BODY = 1024 * 1024


class BodyProblem(Exception):
    """A body the route cannot take: ``status`` and ``detail`` for the problem answer.

    Routes turn it into a problem with ``problem_response(error.status, error.detail)``.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def _bounded_bytes(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyProblem(413, f"the body has {int(declared):,} bytes; at most {limit:,} "
                               "are accepted")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            # Stop reading: a client that lied about (or left out) its length does not
            # get to make the agent hold more than the limit.
            raise BodyProblem(413, f"the body has more than {limit:,} bytes, the most "
                                   "accepted")
    return bytes(body)


async def text_body(request: Request, *, limit: int = MAX_BODY) -> str:
    """The body as UTF-8 text, at most ``limit`` bytes.

    Raises
    ------
    BodyProblem
        413 when too large, 400 when not UTF-8.
    """
    raw = await _bounded_bytes(request, limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyProblem(400, f"the body is not UTF-8 text (byte {error.start}: "
                               f"{error.reason})") from error


async def json_body(request: Request, *, limit: int = MAX_BODY) -> Any:
    """The body parsed as JSON, at most ``limit`` bytes.

    Raises
    ------
    BodyProblem
        413 when too large; 400 when empty, not UTF-8 or not JSON (with line and column).
    """
    text = await text_body(request, limit=limit)
    if not text.strip():
        raise BodyProblem(400, "the body is empty; send a JSON document "
                               "(Content-Type: application/json)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BodyProblem(400, f"the body is not JSON: {error.msg} at line {error.lineno} "
                               f"column {error.colno}") from error


async def json_object(request: Request, *, limit: int = MAX_BODY) -> dict[str, Any]:
    """The body as a JSON object (``{...}``).

    Raises
    ------
    BodyProblem
        As :func:`json_body`, and 422 when the JSON is not an object.
    """
    document = await json_body(request, limit=limit)
    if not isinstance(document, dict):
        raise BodyProblem(422, f"the body must be a JSON object, not "
                               f"{type(document).__name__}")
    return document

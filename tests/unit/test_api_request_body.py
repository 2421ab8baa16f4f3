"""Bounded body reading for ``/api/v1`` routes (``_request_body``): the limit holds
whether or not the client declares a length, and each bad body gets its status and a
detail that says what to change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ghostpanel_kernel.server._problems import problem_response
from ghostpanel_kernel.server._request_body import (
    MAX_BODY,
    BodyProblem,
    json_body,
    json_object,
    text_body,
)
from tests.unit.api_client import problem_of

LIMIT = 64


def _app(read: Any, seen: list[int]) -> Starlette:
    async def route(request: Request) -> Response:
        try:
            value = await read(request, limit=LIMIT)
        except BodyProblem as error:
            return problem_response(error.status, error.detail)
        return JSONResponse({"value": value})

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            seen.append(len(message.get("body", b"")))
            return message
        await app(scope, counted, send)

    app = Starlette(routes=[Route("/", route, methods=["POST"])])
    return counting  # type: ignore[return-value]


async def _post(read: Any, seen: list[int] | None = None, **request: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(read, seen if seen is not None else []))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        return await http.post("/", **request)


async def _pieces(count: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"x" * size


def test_the_default_limit_is_a_mebibyte() -> None:
    assert MAX_BODY == 1024 * 1024


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    seen: list[int] = []
    answer = await _post(text_body, seen, content=b"x" * (LIMIT + 1))
    assert problem_of(answer, 413)["detail"] == (f"the body has {LIMIT + 1:,} bytes; at most "
                                                 f"{LIMIT:,} are accepted")
    assert seen == []  # refused on the header: not one byte read


async def test_an_undeclared_length_stops_at_the_limit() -> None:
    seen: list[int] = []
    # A streamed body has no Content-Length (chunked): the reader counts as it reads.
    answer = await _post(text_body, seen, content=_pieces(100, 16))
    assert "more than 64 bytes" in str(problem_of(answer, 413)["detail"])
    assert sum(seen) <= LIMIT + 16  # it stopped reading at the piece that went over


async def test_text_must_be_utf8() -> None:
    answer = await _post(text_body, content=b"ok \xff")
    assert problem_of(answer, 400)["detail"] == ("the body is not UTF-8 text (byte 3: "
                                                 "invalid start byte)")
    assert (await _post(text_body, content="été".encode())).json() == {"value": "été"}


@pytest.mark.parametrize(("content", "status", "detail"), [
    (b"", 400, "the body is empty"),
    (b"  \n", 400, "the body is empty"),
    (b'{"a": }', 400, "the body is not JSON: Expecting value at line 1 column 7"),
    (b'{\n"a": 1,\n}', 400, "at line 3 column 1"),
])
async def test_bad_json_says_where(content: bytes, status: int, detail: str) -> None:
    answer = await _post(json_body, content=content)
    assert detail in str(problem_of(answer, status)["detail"])


async def test_json_object_wants_an_object() -> None:
    answer = await _post(json_object, content=b"[1, 2]")
    assert problem_of(answer, 422)["detail"] == "the body must be a JSON object, not list"
    assert (await _post(json_object, json={"a": [1]})).json() == {"value": {"a": [1]}}
    assert (await _post(json_body, json=[1])).json() == {"value": [1]}

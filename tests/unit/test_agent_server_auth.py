"""The agent's authentication middleware and its per-peer limiter, on ASGI scopes.

No server: each test calls :class:`AuthMiddleware` with a scope, records what it sent
and whether the application behind it was called (a refused request must not be).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ghostpanel_kernel.server._auth import AUTH_SCOPE_KEY, AuthMiddleware, FailureLimiter
from ghostpanel_kernel.server._token_check import TokenCheckFailed

GOOD = "gpa_good"


class Recorder:
    """The application behind the middleware: records the scopes it was given."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def check(token: str) -> str | None:
    return "ci" if token == GOOD else None


def make(*, client_certificates: bool = False, limit: int = 3,
         clock: Clock | None = None, checker: Any = check) -> tuple[AuthMiddleware, Recorder]:
    app = Recorder()
    limiter = FailureLimiter(limit, 60.0, clock=clock or Clock())
    return AuthMiddleware(app, check_token=checker, client_certificates=client_certificates,
                          limiter=limiter), app


def scope(kind: str = "http", *, authorization: str | None = None, peer: str = "10.0.0.7",
          scheme: str = "https", http_version: str = "1.1", **extra: Any) -> dict[str, Any]:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return {"type": kind, "method": "POST", "path": "/containers/create", "headers": headers,
            "client": (peer, 40000), "scheme": scheme, "http_version": http_version, **extra}


async def call(middleware: AuthMiddleware, request: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(request, receive, send)
    return sent


def answer(sent: list[dict[str, Any]]) -> tuple[int, dict[bytes, bytes], Any]:
    head = sent[0]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    headers = dict(head["headers"])
    parsed = json.loads(body) if headers.get(b"content-type") == b"application/problem+json" \
        else body
    return head["status"], headers, parsed


async def test_a_good_token_passes_and_names_the_token() -> None:
    middleware, app = make()
    sent = await call(middleware, scope(authorization=f"Bearer {GOOD}"))
    assert answer(sent)[0] == 200
    assert app.scopes[0][AUTH_SCOPE_KEY].kind == "token"
    assert app.scopes[0][AUTH_SCOPE_KEY].name == "ci"


async def test_the_bearer_scheme_is_case_blind() -> None:
    middleware, app = make()
    await call(middleware, scope(authorization=f"bearer   {GOOD}"))
    assert len(app.scopes) == 1


@pytest.mark.parametrize(("authorization", "reason"), [
    (None, "no credentials"),
    ("Bearer gpa_bad", "unknown or revoked token"),
    ("Basic dXNlcjpwYXNz", "not a bearer token"),
    ("Bearer", "not a bearer token"),
])
async def test_refused_requests_never_reach_the_app(authorization: str | None,
                                                    reason: str) -> None:
    middleware, app = make()
    status, headers, problem = answer(await call(middleware, scope(authorization=authorization)))
    assert status == 401 and not app.scopes
    assert problem["status"] == 401 and reason in problem["detail"]
    assert headers[b"www-authenticate"].startswith(b'Bearer realm="ghostpanel"')


async def test_lifespan_passes_untouched() -> None:
    middleware, app = make()
    await call(middleware, {"type": "lifespan"})
    assert app.scopes == [{"type": "lifespan"}]


async def test_a_peer_is_locked_out_after_its_failures_even_with_a_good_token() -> None:
    clock = Clock()
    middleware, app = make(limit=3, clock=clock)
    for _ in range(3):
        assert answer(await call(middleware, scope(authorization="Bearer x")))[0] == 401
    status, headers, problem = answer(await call(middleware,
                                                 scope(authorization=f"Bearer {GOOD}")))
    assert status == 429 and headers[b"retry-after"] == b"60" and not app.scopes
    assert "10.0.0.7" in problem["detail"]
    # Another peer is not affected.
    assert answer(await call(middleware, scope(authorization=f"Bearer {GOOD}",
                                               peer="10.0.0.8")))[0] == 200
    clock.now += 30
    assert answer(await call(middleware, scope()))[2]["status"] == 429
    clock.now += 31  # the failures have left the window
    assert answer(await call(middleware, scope(authorization=f"Bearer {GOOD}")))[0] == 200


def test_the_limiter_forgets_old_peers_first() -> None:
    clock = Clock()
    limiter = FailureLimiter(1, 60.0, clock=clock)
    for index in range(5000):
        limiter.failed(f"peer-{index}")
    assert limiter.retry_after("peer-0") is None  # forgotten: memory stays bounded
    assert limiter.retry_after("peer-4999") == 60


async def test_a_store_that_cannot_be_read_is_503_not_401() -> None:
    async def broken(token: str) -> str | None:
        raise TokenCheckFailed("database is locked")

    middleware, app = make(checker=broken)
    status, _, problem = answer(await call(middleware, scope(authorization="Bearer x")))
    assert status == 503 and "database is locked" in problem["detail"] and not app.scopes


async def test_client_certificates_count_on_tls_only_not_http3_nor_plain() -> None:
    middleware, app = make(client_certificates=True)
    assert answer(await call(middleware, scope()))[0] == 200
    assert app.scopes[0][AUTH_SCOPE_KEY].kind == "client-certificate"
    # HTTP/3 (aioquic asks for no client certificate) and a unix socket need a token.
    assert answer(await call(middleware, scope(http_version="3")))[0] == 401
    assert answer(await call(middleware, scope(scheme="http", client=None)))[0] == 401
    assert len(app.scopes) == 1


async def test_a_websocket_is_refused_with_a_401_answer_when_the_server_can() -> None:
    middleware, app = make()
    sent = await call(middleware, scope("websocket", scheme="wss",
                                        extensions={"websocket.http.response": {}}))
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 401
    assert not app.scopes


async def test_a_websocket_is_closed_before_accept_otherwise() -> None:
    middleware, app = make()
    sent = await call(middleware, scope("websocket", scheme="wss"))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": sent[0]["reason"]}]
    assert not app.scopes

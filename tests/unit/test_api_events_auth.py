"""A WebSocket's token as a subprotocol (what a browser can send), on ASGI scopes:
accepted, never echoed, never left in the scope for the application to see."""

from __future__ import annotations

from typing import Any

from ghostpanel_kernel.server._auth import AuthMiddleware, FailureLimiter

GOOD = "gpa_good-Token_1"


async def check(token: str) -> str | None:
    return "browser" if token == GOOD else None


class Accepting:
    """The application: records its scope and accepts the handshake as a route does
    (without choosing a subprotocol), or with ``chosen``."""

    def __init__(self, chosen: str | None = None) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.chosen = chosen

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        await send({"type": "websocket.accept", "subprotocol": self.chosen, "headers": []})


def websocket(protocols: list[str], *, authorization: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"agent")]
    if protocols:
        headers.append((b"sec-websocket-protocol", ", ".join(protocols).encode()))
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    return {"type": "websocket", "path": "/api/v1/events", "headers": headers,
            "subprotocols": protocols, "client": ("10.0.0.9", 5000), "scheme": "wss",
            "http_version": "1.1", "query_string": b""}


async def run(protocols: list[str], *, authorization: str | None = None,
              app: Accepting | None = None) -> tuple[Accepting, list[dict[str, Any]]]:
    app = app or Accepting()
    middleware = AuthMiddleware(app, check_token=check, client_certificates=False,
                                limiter=FailureLimiter(10, 60.0))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(websocket(protocols, authorization=authorization), receive, send)
    return app, sent


async def test_the_token_subprotocol_authenticates_and_ghostpanel_is_answered() -> None:
    app, sent = await run(["ghostpanel", f"ghostpanel.bearer.{GOOD}"])
    assert sent == [{"type": "websocket.accept", "subprotocol": "ghostpanel", "headers": []}]
    (seen,) = app.scopes
    assert seen["subprotocols"] == ["ghostpanel"]
    assert all(GOOD.encode() not in value for _, value in seen["headers"])
    assert (b"sec-websocket-protocol", b"ghostpanel") in seen["headers"]


async def test_the_token_is_never_echoed_even_when_it_is_the_only_offer() -> None:
    app, sent = await run([f"ghostpanel.bearer.{GOOD}"])
    assert sent == [{"type": "websocket.accept", "subprotocol": None, "headers": []}]
    assert app.scopes[0]["subprotocols"] == []
    assert all(key != b"sec-websocket-protocol" for key, _ in app.scopes[0]["headers"])


async def test_an_application_choice_of_subprotocol_stands() -> None:
    _, sent = await run(["ghostpanel", "v2", f"ghostpanel.bearer.{GOOD}"],
                        app=Accepting(chosen="v2"))
    assert sent[0]["subprotocol"] == "v2"


async def test_a_bad_token_subprotocol_is_refused() -> None:
    app, sent = await run(["ghostpanel", "ghostpanel.bearer.gpa_wrong"])
    assert not app.scopes
    assert sent[0] == {"type": "websocket.close", "code": 1008, "reason": sent[0]["reason"]}
    assert "gpa_wrong" not in sent[0]["reason"]


async def test_no_token_at_all_is_refused() -> None:
    for protocols in ([], ["ghostpanel"], ["ghostpanel.bearer."]):
        app, sent = await run(protocols)
        assert not app.scopes, protocols
        assert sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008


async def test_the_header_still_works_and_leaves_subprotocols_alone() -> None:
    app, sent = await run(["ghostpanel"], authorization=f"Bearer {GOOD}")
    assert app.scopes[0]["subprotocols"] == ["ghostpanel"]
    assert sent[0]["subprotocol"] is None  # the application's own choice: none

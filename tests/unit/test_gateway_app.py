"""The gateway's router, authentication and request framing, without a hub.

The app is driven through ``httpx.ASGITransport`` with a token table as its identity
source (the constructor argument only tests pass). Environment ``prod`` is registered
in a temporary SQLite store for a recording "engine" on a unix socket that answers
nothing useful: every request here must be refused or routed before the engine, and
the recording proves that none reached it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.gateway._app import GatewayApp
from ghostpanel_kernel.gateway._context import ENVIRONMENT, IDENTITY, REQUEST_ID
from ghostpanel_kernel.gateway._gateway_state import GatewayState
from ghostpanel_kernel.gateway._identity import Identity
from ghostpanel_kernel.server._problems import Receive, Scope, Send

PREFIX = "/services/ghostpanel/"

TABLE = {
    "op": Identity("olga", groups=frozenset({"blue"})),
    "viewer": Identity("vic", groups=frozenset({"blue"})),
    "dep": Identity("dora", groups=frozenset({"blue"})),
    "nobody": Identity("nina"),
    "root": Identity("ada", admin=True),
}


async def table(token: str) -> Identity | None:
    return TABLE.get(token)


class Recorder:
    """A unix socket that records every request head it receives (and answers 500)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.heads: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class RecordingApi:
    """Stands in for the /api/v1 side: records the scope it was called with."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    async def aclose(self) -> None:
        """Nothing to close."""


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Recorder]:
    recorder = Recorder(tmp_path / "engine.sock")
    server = await asyncio.start_unix_server(recorder.serve, path=str(recorder.path))
    async with server:
        yield recorder


@pytest.fixture
async def gateway(tmp_path: Path, engine: Recorder) -> AsyncIterator[GatewayApp]:
    state = GatewayState(f"sqlite:///{tmp_path / 'store.db'}")
    state.registry.add("prod", f"unix://{engine.path}")
    state.registry.add("stage", f"unix://{engine.path}")
    for subject, role in (("olga", "operator"), ("vic", "viewer"), ("dora", "deployer")):
        state.roles.grant(subject, role, "prod")
    app = GatewayApp(state, prefix=PREFIX, identity_source=table)
    try:
        yield app
    finally:
        await app.shutdown()


def client(app: GatewayApp, token: str | None = None, scheme: str = "Bearer"
           ) -> httpx.AsyncClient:
    headers = {} if token is None else {"Authorization": f"{scheme} {token}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="http://gateway", headers=headers)


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"]
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


# -- authentication ---------------------------------------------------------------------


async def test_no_token_is_401_with_a_bearer_challenge(gateway: GatewayApp) -> None:
    async with client(gateway) as http:
        answer = await http.get(f"{PREFIX}env/prod/engine/_ping")
    body = problem(answer, 401)
    assert answer.headers["www-authenticate"] == 'Bearer realm="ghostpanel"'
    assert "ghostpanel hub token" in body["detail"]


async def test_an_unknown_token_is_401_invalid_token(gateway: GatewayApp,
                                                     engine: Recorder) -> None:
    async with client(gateway, "stolen") as http:
        answer = await http.post(f"{PREFIX}env/prod/engine/v1.41/containers/x/stop")
    problem(answer, 401)
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert engine.heads == []


@pytest.mark.parametrize("scheme", ["token", "Bearer", "bearer"])
async def test_both_token_schemes_authenticate(gateway: GatewayApp, scheme: str) -> None:
    async with client(gateway, "op", scheme) as http:
        answer = await http.get(PREFIX)
    assert answer.status_code == 200
    assert answer.json()["whoami"] == f"{PREFIX}api/v1/whoami"


async def test_a_path_outside_the_prefix_is_404(gateway: GatewayApp) -> None:
    async with client(gateway, "op") as http:
        problem(await http.get("/elsewhere/env/prod/engine/_ping"), 404)
        problem(await http.get(f"{PREFIX}nothing-here"), 404)


async def test_every_answer_has_its_own_request_id(gateway: GatewayApp) -> None:
    async with client(gateway, "viewer") as http:
        first = await http.get(f"{PREFIX}env/nowhere/engine/_ping")
        second = await http.get(f"{PREFIX}env/nowhere/engine/_ping")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert len(first.headers["x-request-id"]) == 32


# -- environments and permissions -------------------------------------------------------


async def test_an_unknown_environment_names_only_those_the_caller_may_use(
        gateway: GatewayApp) -> None:
    async with client(gateway, "op") as http:
        body = problem(await http.get(f"{PREFIX}env/nowhere/engine/_ping"), 404)
    assert body["environments"] == ["prod"]  # "stage" exists, but olga has no role there
    assert "'nowhere'" in body["detail"] and "prod" in body["detail"]
    async with client(gateway, "nobody") as http:
        body = problem(await http.get(f"{PREFIX}env/nowhere/engine/_ping"), 404)
    assert body["environments"] == []


async def test_a_missing_permission_is_403_audited_and_never_forwarded(
        gateway: GatewayApp, engine: Recorder) -> None:
    async with client(gateway, "viewer") as http:
        answer = await http.post(f"{PREFIX}env/prod/engine/v1.41/containers/web/stop")
    body = problem(answer, 403)
    assert body == {**body, "environment": "prod", "permission": "lifecycle",
                    "detail": "your role on prod does not allow lifecycle "
                              "(POST /containers/web/stop)"}
    assert engine.heads == []
    rows = gateway.state.audit.entries(user="vic")
    assert [(row.action, row.result, row.status, row.target, row.request_id)
            for row in rows] == [("container.stop", "denied", 403, "web",
                                  answer.headers["x-request-id"])]


async def test_no_role_on_an_environment_is_403_there(gateway: GatewayApp,
                                                      engine: Recorder) -> None:
    async with client(gateway, "op") as http:
        body = problem(await http.get(f"{PREFIX}env/stage/engine/v1.41/containers/json"),
                       403)
    assert body["permission"] == "read"
    assert engine.heads == []


async def test_a_route_outside_the_table_and_a_non_canonical_path(
        gateway: GatewayApp, engine: Recorder) -> None:
    async with client(gateway, "root") as http:
        problem(await http.get(f"{PREFIX}env/prod/engine/v1.41/swarm"), 403)
        problem(await http.post(f"{PREFIX}env/prod/engine/v1.41.0/containers/web/stop"), 400)
        problem(await http.get(f"{PREFIX}env/prod/engine/v1.41/containers/x%2F..%2Fjson"),
                400)
    assert engine.heads == []
    results = [(row.result, row.status) for row in gateway.state.audit.entries(user="ada")]
    assert results == [("denied", 403), ("denied", 400), ("denied", 400)]


# -- bodies -----------------------------------------------------------------------------


async def test_a_privileged_create_is_403_for_a_deployer(gateway: GatewayApp,
                                                        engine: Recorder) -> None:
    async with client(gateway, "dep") as http:
        body = problem(await http.post(
            f"{PREFIX}env/prod/engine/v1.41/containers/create",
            content=b'{"Image":"busybox","HostConfig":{"Privileged":true}}'), 403)
    assert "admin" in body["detail"] and body["permission"] == "admin"
    assert engine.heads == []


async def test_a_chunked_body_is_read_whole_and_judged(gateway: GatewayApp,
                                                      engine: Recorder) -> None:
    pieces = [b'{"Image":"busybox",', b'"HostConfig":{"Privileged":false,', b'"privileged"',
              b':true}}']

    async def chunks() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async with client(gateway, "dep") as http:
        problem(await http.post(f"{PREFIX}env/prod/engine/v1.41/containers/create",
                                content=chunks()), 403)
    assert engine.heads == []


async def test_an_empty_or_invalid_create_body_is_400(gateway: GatewayApp,
                                                     engine: Recorder) -> None:
    async with client(gateway, "dep") as http:
        problem(await http.post(f"{PREFIX}env/prod/engine/v1.41/containers/create"), 400)
        problem(await http.post(f"{PREFIX}env/prod/engine/v1.41/containers/create",
                                content=b'{"Image": '), 400)
    assert engine.heads == []


async def test_bodies_over_a_mebibyte_are_413_however_framed(gateway: GatewayApp,
                                                            engine: Recorder) -> None:
    huge = b'{"Image":"busybox","Env":["' + b"x" * (1024 * 1024) + b'"]}'

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 65536):
            yield huge[start:start + 65536]

    async with client(gateway, "dep") as http:
        declared = await http.post(f"{PREFIX}env/prod/engine/v1.41/containers/create",
                                   content=huge)
        streamed = await http.post(f"{PREFIX}env/prod/engine/v1.41/containers/create",
                                   content=chunked())
    problem(declared, 413)
    problem(streamed, 413)
    assert declared.headers["connection"] == "close"
    assert engine.heads == []


async def test_conflicting_framing_is_400(gateway: GatewayApp, engine: Recorder) -> None:
    messages: list[dict[str, Any]] = []
    scope: dict[str, Any] = {
        "type": "http", "method": "POST", "scheme": "http", "http_version": "1.1",
        "path": f"{PREFIX}env/prod/engine/v1.41/containers/create",
        "raw_path": f"{PREFIX}env/prod/engine/v1.41/containers/create".encode(),
        "query_string": b"", "root_path": "",
        "headers": [(b"authorization", b"Bearer dep"), (b"content-length", b"2"),
                    (b"transfer-encoding", b"chunked")]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await gateway(scope, receive, send)
    assert messages[0]["status"] == 400
    assert b"Transfer-Encoding" in messages[1]["body"]
    assert engine.heads == []


# -- the /api/v1 side ---------------------------------------------------------------------


async def test_api_paths_reach_the_api_with_the_scope_keys_set(gateway: GatewayApp) -> None:
    api = RecordingApi()
    gateway._api = api
    async with client(gateway, "op") as http:
        assert (await http.get(f"{PREFIX}api/v1/whoami")).status_code == 200
        assert (await http.get(f"{PREFIX}env/prod/api/v1/containers")).status_code == 200
    whole, per_env = api.scopes
    assert (whole["path"], whole["root_path"], whole[ENVIRONMENT]) == (
        "/api/v1/whoami", "/services/ghostpanel", None)
    assert (per_env["path"], per_env["root_path"], per_env[ENVIRONMENT]) == (
        "/api/v1/containers", "/services/ghostpanel/env/prod", "prod")
    assert per_env[IDENTITY] == TABLE["op"] and per_env[REQUEST_ID]


# -- the browser login --------------------------------------------------------------------


class FakeHubAuth:
    """The parts of HubOAuth the login uses, answering from a table."""

    oauth_client_id = "service-ghostpanel"
    oauth_redirect_uri = "/services/ghostpanel/oauth_callback"
    oauth_authorization_url = "/hub/api/oauth2/authorize"

    def __init__(self) -> None:
        self._oauth_states: dict[str, Any] = {}
        self.codes = {"good-code": "browser-token"}

    def generate_state(self, next_url: str) -> str:
        state = f"state-{len(self._oauth_states)}"
        self._oauth_states[state] = {"next_url": next_url}
        return state

    def get_next_url(self, state: str) -> str:
        return str(self._oauth_states.get(state, {}).get("next_url") or PREFIX)

    def clear_oauth_state(self, state: str) -> None:
        self._oauth_states.pop(state, None)

    async def user_for_token(self, token: str, *, sync: bool = True) -> dict[str, Any] | None:
        if token == "browser-token":
            return {"kind": "user", "name": "olga", "groups": ["blue"], "scopes": []}
        return None

    async def token_for_code(self, code: str, *, sync: bool = True) -> str:
        from tornado.web import HTTPError

        if code not in self.codes:
            raise HTTPError(500, "Failed to check authorization: invalid_grant")
        return self.codes[code]


@pytest.fixture
async def browser_gateway(tmp_path: Path, engine: Recorder) -> AsyncIterator[GatewayApp]:
    from ghostpanel_kernel.gateway._hub_identity import HubLogin

    state = GatewayState(f"sqlite:///{tmp_path / 'store.db'}")
    state.registry.add("prod", f"unix://{engine.path}")
    login = HubLogin(prefix=PREFIX, cookie_secret=b"s" * 32, hub_auth=FakeHubAuth())
    app = GatewayApp(state, prefix=PREFIX, login=login)
    try:
        yield app
    finally:
        await app.shutdown()


async def test_the_oauth_login_round_trip(browser_gateway: GatewayApp) -> None:
    transport = httpx.ASGITransport(app=browser_gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        start = await http.get(f"{PREFIX}api/v1/whoami?x=1", headers={"Accept": "text/html"})
        assert start.status_code == 302
        location = httpx.URL(start.headers["location"])
        assert location.path == "/hub/api/oauth2/authorize"
        assert location.params["client_id"] == "service-ghostpanel"
        state = location.params["state"]
        # Without the state cookie (another browser), the callback is refused.
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as other:
            problem(await other.get(f"{PREFIX}oauth_callback",
                                    params={"code": "good-code", "state": state}), 400)
        done = await http.get(f"{PREFIX}oauth_callback",
                              params={"code": "good-code", "state": state})
        assert done.status_code == 302
        assert done.headers["location"] == f"{PREFIX}api/v1/whoami?x=1"
        cookie = next(value for value in done.headers.get_list("set-cookie")
                      if value.startswith("service-ghostpanel="))
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        browser_gateway._api = api = RecordingApi()
        assert (await http.get(f"{PREFIX}api/v1/whoami")).status_code == 200
        assert api.scopes[-1][IDENTITY].name == "olga"
        # The cookie never authorises a change: that needs the token in a header.
        problem(await http.post(f"{PREFIX}env/prod/engine/v1.41/containers/x/stop"), 401)


async def test_a_forged_cookie_or_a_bad_code_is_refused(browser_gateway: GatewayApp) -> None:
    transport = httpx.ASGITransport(app=browser_gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway",
                                 cookies={"service-ghostpanel": "browser-token"}) as http:
        problem(await http.get(f"{PREFIX}api/v1/whoami"), 401)
        start = await http.get(PREFIX, headers={"Accept": "text/html"})
        state = httpx.URL(start.headers["location"]).params["state"]
        problem(await http.get(f"{PREFIX}oauth_callback",
                               params={"code": "bad-code", "state": state}), 403)


async def test_the_next_url_never_leaves_the_gateway(browser_gateway: GatewayApp) -> None:
    login = browser_gateway.login
    assert login is not None
    step = login.start("https://evil.example/steal")
    state = httpx.URL(step.location).params["state"]
    assert login.hub_auth.get_next_url(state) == PREFIX
    step = login.start(f"{PREFIX}/..//evil.example")
    state = httpx.URL(step.location).params["state"]
    assert login.hub_auth.get_next_url(state) == PREFIX
    step = login.start(f"{PREFIX}api/v1/whoami")
    state = httpx.URL(step.location).params["state"]
    assert login.hub_auth.get_next_url(state) == f"{PREFIX}api/v1/whoami"


def test_cache_max_age_zero_is_refused() -> None:
    from ghostpanel_kernel.gateway._hub_identity import HubLogin

    with pytest.raises(ValueError, match="forever"):
        HubLogin(prefix=PREFIX, cookie_secret=b"k" * 32, cache_max_age=0,
                 hub_auth=FakeHubAuth())


def test_the_hub_model_becomes_an_identity() -> None:
    from ghostpanel_kernel.gateway._hub_identity import identity_from_model

    user = identity_from_model({"kind": "user", "name": "ada", "groups": ["blue", "red"],
                                "admin": True, "scopes": ["custom:ghostpanel:prod:read"]})
    assert user == Identity("ada", frozenset({"blue", "red"}), True,
                            frozenset({"custom:ghostpanel:prod:read"}))
    service = identity_from_model({"kind": "service", "name": "cron", "scopes": []})
    assert (service.kind, service.admin, service.groups) == ("service", False, frozenset())
    assert identity_from_model({"name": "x", "admin": "yes"}).admin is False



@pytest.mark.parametrize(("origin", "admitted"), [
    (None, True), (b"http://gateway", True), (b"https://evil.example", False)])
async def test_the_cookie_opens_websockets_from_the_gateways_own_origin_only(
        browser_gateway: GatewayApp, origin: bytes | None, admitted: bool) -> None:
    login = browser_gateway.login
    assert login is not None
    cookie = f"{login.cookie_name}={login._sign(login.cookie_name, 'browser-token')}"
    headers = [(b"host", b"gateway"), (b"cookie", cookie.encode())]
    if origin is not None:
        headers.append((b"origin", origin))
    scope: dict[str, Any] = {
        "type": "websocket", "scheme": "ws", "http_version": "1.1",
        "path": f"{PREFIX}env/prod/api/v1/events",
        "raw_path": f"{PREFIX}env/prod/api/v1/events".encode(), "query_string": b"",
        "root_path": "", "headers": headers, "subprotocols": []}
    browser_gateway._api = api = RecordingWebSocketApi()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await browser_gateway(scope, receive, send)
    if admitted:
        assert api.scopes[-1][IDENTITY].name == "olga"
        assert sent[0]["type"] == "websocket.accept"
        assert (b"x-request-id", api.scopes[-1][REQUEST_ID].encode()) in sent[0]["headers"]
    else:
        assert api.scopes == []
        assert sent == [{"type": "websocket.close", "code": 1008, "reason": sent[0]["reason"]}]


class RecordingWebSocketApi(RecordingApi):
    """Accepts a WebSocket and records its scope."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        await send({"type": "websocket.accept"})

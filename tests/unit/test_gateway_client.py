"""The client side inside a hub session: finding the gateway, its API, its environments,
and a 403 read as "your role on ENV does not allow X". The gateway is canned
(:class:`FakeGateway` over ``httpx.MockTransport``); the paths and headers the client
sends are what is checked.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import ghostpanel_kernel
from ghostpanel_kernel import PermissionDenied, connect
from ghostpanel_kernel.engine import (
    AgentAuthError,
    EngineAPIError,
    Environment,
    EnvironmentNotFound,
)
from ghostpanel_kernel.environments import (
    EnvironmentRegistry,
    GatewayRegistry,
    session_registry,
)
from ghostpanel_kernel.environments import _gateway as gateway_module
from ghostpanel_kernel.gateway._client import AuditEntry, GatewayClient, HubGateway

TOKEN = "hub-token-ada"
HUB = "http://127.0.0.1:8000"
GATEWAY = f"{HUB}/services/ghostpanel/"
HUB_ENV = {"JUPYTERHUB_API_TOKEN": TOKEN, "JUPYTERHUB_API_URL": f"{HUB}/hub/api",
           "JUPYTERHUB_USER": "ada"}
STOP_PATH = "/services/ghostpanel/env/prod/engine/v1.41/containers/web/stop"


class FakeGateway:
    """The gateway's answers to ada (operator on prod, viewer on staging), recorded."""

    def __init__(self, *, admin: bool = False) -> None:
        self.admin = admin
        self.log: list[httpx.Request] = []
        self.audit_rows = [
            {"seq": 1, "time": "2026-12-07T10:00:00Z", "user": "ada", "environment": "prod",
             "action": "container.stop", "target": "a" * 64, "result": "allowed",
             "status": 204, "request_id": "r1", "detail": None, "hash": "x"},
            {"seq": 2, "time": "2026-12-07T10:01:00+00:00", "user": "bob",
             "environment": "prod", "action": "container.kill", "target": "web",
             "result": "denied", "status": 403, "request_id": "r2",
             "detail": "your role on prod does not allow lifecycle"},
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.log.append(request)
        path = request.url.path
        if request.headers.get("authorization", "").split(" ", 1)[-1] != TOKEN:
            return httpx.Response(401, json={"detail": "no such token"})
        if path == "/services/ghostpanel/api/v1/whoami":
            return httpx.Response(200, json={
                "name": "ada", "kind": "user", "teams": ["blue"], "admin": self.admin,
                "permissions": {"prod": ["read", "logs", "lifecycle"], "staging": ["read"],
                                "secret": []}})
        if path == "/services/ghostpanel/api/v1/environments":
            return httpx.Response(200, json=[
                {"name": "prod", "kind": "local", "labels": {"region": "eu"},
                 "permissions": ["read", "logs", "lifecycle"]},
                {"name": "staging", "kind": "agent", "labels": {}, "permissions": ["read"]}])
        if path == "/services/ghostpanel/api/v1/audit":
            if not self.admin:
                return _problem(403, "only hub admins may read the audit log",
                                permission="admin")
            return httpx.Response(200, json=self.audit_rows)
        if path.endswith("/engine/_ping"):
            return httpx.Response(200, text="OK", headers={
                "Api-Version": "1.41", "Server": "Libpod/4.3.1 (linux)"})
        if path == "/services/ghostpanel/env/prod/engine/v1.41/containers/json":
            return httpx.Response(200, json=[])
        if path == "/services/ghostpanel/env/prod/engine/v1.41/containers/web/json":
            return httpx.Response(200, json={"Id": "web", "Name": "/web",
                                             "State": {"Status": "running"}})
        if path == STOP_PATH:
            return _problem(403, "your role on prod does not allow lifecycle "
                                 "(POST /v1.41/containers/web/stop)",
                            environment="prod", permission="lifecycle")
        if path == "/services/ghostpanel/env/prod/engine/v1.41/containers/theirs/stop":
            return _problem(403, "container theirs belongs to another team",
                            environment="prod")
        return httpx.Response(404, json={"message": f"no route {path}"})

    def paths(self) -> list[str]:
        return [request.url.path for request in self.log]


def _problem(status: int, detail: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, headers={"Content-Type": "application/problem+json"},
                          content=json.dumps({"type": "about:blank", "title": "Forbidden",
                                              "status": status, "detail": detail,
                                              **extra}).encode())


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def in_hub(monkeypatch: pytest.MonkeyPatch, gateway: FakeGateway) -> Iterator[FakeGateway]:
    """A hub session: the hub's variables set, the gateway-wide calls served by the fake."""
    for name in ("GHOSTPANEL_GATEWAY_URL", "GHOSTPANEL_ENVIRONMENT",
                 "JUPYTERHUB_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in HUB_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(gateway_module, "GatewayRegistry",
                        partial(GatewayRegistry, transport=httpx.MockTransport(gateway)))
    yield gateway


# -- finding the gateway --------------------------------------------------------------


def test_the_gateway_url_is_derived_from_the_hub_api_url() -> None:
    found = HubGateway.from_environ(HUB_ENV)
    assert found is not None
    assert found.url == GATEWAY and found.token == TOKEN and found.user == "ada"
    prefixed = HubGateway.from_environ({**HUB_ENV, "JUPYTERHUB_API_URL":
                                        "https://hub.example:8443/jhub/hub/api/"})
    assert prefixed is not None
    assert prefixed.url == "https://hub.example:8443/jhub/services/ghostpanel/"


def test_ghostpanel_gateway_url_wins_and_gets_its_port_spelled_out() -> None:
    found = HubGateway.from_environ({**HUB_ENV, "GHOSTPANEL_GATEWAY_URL":
                                     "http://localhost/services/ghostpanel"})
    assert found is not None
    # The engine client's default port is 2375: the hub's must be written out.
    assert found.url == "http://localhost:80/services/ghostpanel/"
    assert found.environment_url("prod") == "http://localhost:80/services/ghostpanel/env/prod"


@pytest.mark.parametrize("environ", [
    {},  # not in a hub
    {"JUPYTERHUB_API_URL": f"{HUB}/hub/api"},  # no token
    {**HUB_ENV, "JUPYTERHUB_SERVICE_NAME": "ghostpanel"},  # the gateway itself
    {**HUB_ENV, "GHOSTPANEL_GATEWAY_URL": "off"},  # turned off
    {"JUPYTERHUB_API_TOKEN": TOKEN},  # no URL to find it at
])
def test_no_gateway_outside_a_user_session(environ: dict[str, str]) -> None:
    assert HubGateway.from_environ(environ) is None


def test_the_token_is_not_in_the_repr() -> None:
    found = HubGateway.from_environ(HUB_ENV)
    assert TOKEN not in repr(found)


# -- the gateway-wide API -------------------------------------------------------------


def _client(gateway: FakeGateway) -> GatewayClient:
    return GatewayClient(HubGateway(GATEWAY, TOKEN), transport=httpx.MockTransport(gateway))


async def test_whoami_sends_the_token_scheme_and_reads_permissions(gateway: FakeGateway
                                                                   ) -> None:
    async with _client(gateway) as client:
        me = await client.whoami()
    assert gateway.log[0].headers["authorization"] == f"token {TOKEN}"
    assert gateway.paths() == ["/services/ghostpanel/api/v1/whoami"]
    assert me.name == "ada" and me.teams == frozenset({"blue"}) and not me.admin
    assert me.permissions["prod"] == frozenset({"read", "logs", "lifecycle"})
    assert me.may("lifecycle", "prod") and not me.may("lifecycle", "staging")
    assert not me.may("read", "secret")


async def test_environments_lists_names_kinds_and_permissions(gateway: FakeGateway) -> None:
    async with _client(gateway) as client:
        found = await client.environments()
    assert [(e.name, e.kind, e.labels.get("region")) for e in found] == [
        ("prod", "local", "eu"), ("staging", "agent", None)]
    assert found[1].permissions == frozenset({"read"})


async def test_audit_passes_its_filters_and_reads_rows() -> None:
    gateway = FakeGateway(admin=True)
    async with _client(gateway) as client:
        rows = await client.audit(user="ada", environment="prod",
                                  since=datetime(2026, 12, 7, 9, 0, tzinfo=UTC), limit=50)
    query = dict(gateway.log[0].url.params)
    assert query == {"user": "ada", "environment": "prod", "since": "2026-12-07T09:00:00Z",
                     "limit": "50"}
    assert rows[0] == AuditEntry(sequence=1, time=datetime(2026, 12, 7, 10, 0, tzinfo=UTC),
                                 user="ada", environment="prod", action="container.stop",
                                 target="a" * 64, result="allowed", status=204,
                                 request_id="r1", detail=None)
    assert rows[1].result == "denied" and rows[1].time == datetime(2026, 12, 7, 10, 1,
                                                                   tzinfo=UTC)


async def test_the_audit_log_refused_to_a_non_admin_says_so(gateway: FakeGateway) -> None:
    async with _client(gateway) as client:
        with pytest.raises(PermissionDenied) as caught:
            await client.audit()
    assert str(caught.value) == ("your role on the gateway does not allow admin "
                                 "(GET /api/v1/audit)")


async def test_a_token_the_hub_refuses_is_an_auth_error_without_the_token() -> None:
    client = GatewayClient(HubGateway(GATEWAY, "stale-token-9f3e"),
                           transport=httpx.MockTransport(FakeGateway()))
    async with client:
        with pytest.raises(AgentAuthError, match="did not accept this session's hub token"
                           ) as caught:
            await client.whoami()
    assert "stale-token-9f3e" not in str(caught.value)


# -- 403 problems as PermissionDenied -------------------------------------------------


def _env(gateway: FakeGateway, name: str = "prod") -> Environment:
    return Environment(f"{GATEWAY}env/{name}", name=name, token=TOKEN,
                       transport=httpx.MockTransport(gateway))


async def test_an_environment_behind_the_gateway_reaches_engine_below_its_path(
        gateway: FakeGateway) -> None:
    env = _env(gateway)
    try:
        assert await env.containers.list() == []
    finally:
        await env.aclose()
    assert gateway.paths() == ["/services/ghostpanel/env/prod/engine/_ping",
                               "/services/ghostpanel/env/prod/engine/v1.41/containers/json"]
    assert {r.headers["authorization"] for r in gateway.log} == {f"Bearer {TOKEN}"}
    assert env.client.is_agent  # so /api/v1 (exec WebSocket, GPUs) is used


async def test_a_403_problem_reads_as_your_role_does_not_allow(gateway: FakeGateway) -> None:
    env = _env(gateway)
    try:
        with pytest.raises(PermissionDenied) as caught:
            await env.client.post_json("/containers/web/stop")
    finally:
        await env.aclose()
    error = caught.value
    assert str(error) == ("your role on prod does not allow lifecycle "
                          "(POST /v1.41/containers/web/stop)")
    assert isinstance(error, EngineAPIError) and error.status_code == 403
    assert (error.environment, error.permission) == ("prod", "lifecycle")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is PermissionDenied and str(copy) == str(error)


async def test_a_403_without_a_permission_keeps_the_gateways_words(gateway: FakeGateway
                                                                   ) -> None:
    env = _env(gateway)
    try:
        with pytest.raises(PermissionDenied) as caught:
            await env.client.post_json("/containers/theirs/stop")
    finally:
        await env.aclose()
    assert str(caught.value) == ("refused on prod: container theirs belongs to another team "
                                 "(POST /v1.41/containers/theirs/stop)")


async def test_an_engines_own_403_stays_an_engine_error() -> None:
    def engine(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/_ping":
            return httpx.Response(200, text="OK", headers={"Api-Version": "1.41"})
        return httpx.Response(403, json={"message": "authorization denied by plugin"})

    env = Environment("tcp://127.0.0.1:2375", transport=httpx.MockTransport(engine))
    try:
        with pytest.raises(EngineAPIError) as caught:
            await env.client.post_json("/containers/web/stop")
    finally:
        await env.aclose()
    assert not isinstance(caught.value, PermissionDenied)


async def test_a_refused_token_on_an_environment_says_the_hub_refused_it() -> None:
    env = Environment(f"{GATEWAY}env/prod", name="prod", token="stale-token-9f3e",
                      transport=httpx.MockTransport(FakeGateway()))
    try:
        with pytest.raises(AgentAuthError) as caught:
            await env.ping()
    finally:
        await env.aclose()
    assert str(caught.value).startswith(f"[401] the gateway at {GATEWAY}env/prod refused "
                                        "the token (no such token): the hub no longer "
                                        "accepts it")
    assert "stale-token-9f3e" not in str(caught.value)


def test_a_token_goes_over_plain_http_only_to_the_loopback() -> None:
    Environment(f"{GATEWAY}env/prod", token=TOKEN)  # the hub's own loopback gateway
    Environment("http://localhost:8000/services/ghostpanel/env/prod", token=TOKEN)
    with pytest.raises(ValueError, match="a token is sent only over TLS"):
        Environment("http://10.0.0.5:8000/services/ghostpanel/env/prod", token=TOKEN)


# -- the registry in a hub session -----------------------------------------------------


def test_outside_a_hub_the_registry_is_the_local_one(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Any) -> None:
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path))
    monkeypatch.delenv("GHOSTPANEL_DATABASE_URL", raising=False)
    registry = session_registry()
    try:
        assert type(registry) is EnvironmentRegistry
    finally:
        registry.close()


def test_in_a_hub_the_registry_lists_the_gateways_environments(in_hub: FakeGateway) -> None:
    registry = session_registry()
    assert isinstance(registry, GatewayRegistry)
    specs = registry.list()
    assert [(s.name, s.url, s.token, s.labels) for s in specs] == [
        ("prod", f"{GATEWAY}env/prod", TOKEN, {"region": "eu"}),
        ("staging", f"{GATEWAY}env/staging", TOKEN, {})]
    assert registry.resolve(None).name == "prod"  # the first one the user may see
    assert [s.name for s in registry.select(["all"])] == ["prod", "staging"]
    assert registry.permissions("staging") == frozenset({"read"})
    with pytest.raises(EnvironmentNotFound, match="lists only the environments your hub "
                                                  "role lets you see"):
        registry.get("secret")
    with pytest.raises(ValueError, match="cannot register 'x' in a hub session"):
        registry.add("x", "tcp://127.0.0.1:2375")
    with pytest.raises(ValueError, match="set GHOSTPANEL_ENVIRONMENT=staging"):
        registry.use("staging")
    assert registry.health() == {}


def test_ghostpanel_environment_names_the_default(in_hub: FakeGateway,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTPANEL_ENVIRONMENT", "staging")
    assert session_registry().resolve(None).name == "staging"


def test_a_user_without_any_role_is_told_to_ask_for_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def nothing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[])

    registry = GatewayRegistry(HubGateway(GATEWAY, TOKEN),
                               transport=httpx.MockTransport(nothing))
    with pytest.raises(EnvironmentNotFound, match="shows you no environment: ask a hub admin"):
        registry.resolve(None)


async def test_connect_without_arguments_opens_the_gateways_first_environment(
        in_hub: FakeGateway) -> None:
    # Called from a running loop, as in a notebook: the registry's blocking read
    # must not need this loop.
    env = connect(transport=httpx.MockTransport(in_hub))
    try:
        assert env.name == "prod"
        await env.ping()
    finally:
        await env.aclose()
    assert in_hub.paths()[-1] == "/services/ghostpanel/env/prod/engine/_ping"
    assert in_hub.log[-1].headers["authorization"] == f"Bearer {TOKEN}"


async def test_connect_by_name_goes_through_the_gateway(in_hub: FakeGateway) -> None:
    env = connect("staging", transport=httpx.MockTransport(in_hub))
    try:
        assert env.url == f"{GATEWAY}env/staging"
    finally:
        await env.aclose()
    with pytest.raises(EnvironmentNotFound):
        connect("secret")


# -- the CLI ---------------------------------------------------------------------------


def test_the_cli_prints_a_refusal_and_exits_non_zero(in_hub: FakeGateway,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostpanel_kernel.cli import cli

    # The CLI opens real connections: serve the environments' requests by the fake too.
    real_open = gateway_module.EnvironmentSpec.open

    def open_with_fake(spec: Any, **options: Any) -> Environment:
        return real_open(spec, **{**options, "transport": httpx.MockTransport(in_hub)})

    monkeypatch.setattr(gateway_module.EnvironmentSpec, "open", open_with_fake)
    result = CliRunner().invoke(cli, ["stop", "web"])
    assert result.exit_code != 0
    assert ("your role on prod does not allow lifecycle (POST /v1.41/containers/web/stop)"
            in result.output)
    assert STOP_PATH in in_hub.paths()


def test_permission_denied_is_public() -> None:
    assert ghostpanel_kernel.PermissionDenied is PermissionDenied


def test_env_ls_and_add_in_a_hub_session(in_hub: FakeGateway) -> None:
    from ghostpanel_kernel.cli import cli

    listed = CliRunner().invoke(cli, ["env", "ls", "--json"])
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.stdout)
    assert [(r["name"], r["url"]) for r in records] == [
        ("prod", f"{GATEWAY}env/prod"), ("staging", f"{GATEWAY}env/staging")]
    assert TOKEN not in listed.output
    added = CliRunner().invoke(cli, ["env", "add", "x", "tcp://127.0.0.1:2375"])
    assert added.exit_code != 0
    assert "cannot register 'x' in a hub session" in added.output

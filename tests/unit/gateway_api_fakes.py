"""A stand-in gateway for the unit tests of ``GatewayApi``: identities, roles, audit.

:class:`FakeContext` implements the gateway's ``GatewayContext`` over a dict of grants
and a list of audit rows; :func:`gateway_client` serves a :class:`GatewayApi` through
httpx's ASGI transport (no sockets), the caller chosen per request by the
``X-Test-User`` header (one of :data:`USERS`) the way the gateway's router would set
``scope[IDENTITY]`` after the hub vouched for a token. The environment named ``lab``
runs on :func:`team_engine`, a fake Podman with one container of team ``blue``
(``blue1``) and one of team ``red`` (``red1``).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from ghostpanel_kernel._exceptions import EnvironmentNotFound
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.gateway._api_gateway import GatewayApi
from ghostpanel_kernel.gateway._context import CONTEXT, ENVIRONMENT, IDENTITY, REQUEST_ID
from ghostpanel_kernel.gateway._identity import Identity
from ghostpanel_kernel.gateway._ownership import OWNER_LABEL, TEAMS_LABEL
from ghostpanel_kernel.gateway._permissions import BUILTIN_ROLES, PERMISSIONS
from tests.unit.fake_engine import WEB_INSPECT, FakeEngine, empty, env_for, json_answer

__all__ = ["BLUE_ID", "RED_ID", "USERS", "AuditRow", "FakeAudit", "FakeContext",
           "gateway_client", "team_engine"]

BLUE_ID = "b1" * 32
RED_ID = "e5" * 32

USERS: dict[str, Identity] = {
    "ada": Identity("ada", groups=frozenset({"blue"})),           # operator on lab
    "vic": Identity("vic", groups=frozenset({"blue"})),           # viewer on lab
    "rex": Identity("rex", groups=frozenset({"red"})),            # deployer on lab
    "nob": Identity("nob"),                                       # nothing anywhere
    "root": Identity("root", admin=True),
}

GRANTS: dict[tuple[str, str], frozenset[str]] = {
    ("ada", "lab"): BUILTIN_ROLES["operator"],
    ("vic", "lab"): BUILTIN_ROLES["viewer"],
    ("rex", "lab"): BUILTIN_ROLES["deployer"],
    ("ada", "other"): BUILTIN_ROLES["viewer"],
}


def _owned(team: str, owner: str) -> dict[str, str]:
    return {OWNER_LABEL: owner, TEAMS_LABEL: team}


def _inspect(ident: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    body = copy.deepcopy(WEB_INSPECT)
    body.update(Id=ident, Name=f"/{name}")
    body["Config"]["Labels"] = labels
    return body


def _summary(ident: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"Id": ident, "Names": [f"/{name}"], "Image": "busybox", "State": "running",
            "Status": "Up", "Created": 0, "Labels": labels, "Ports": []}


def team_engine() -> FakeEngine:
    """A fake Podman with ``blue1`` (team blue, by ada) and ``red1`` (team red)."""
    blue, red = _owned("blue", "ada"), _owned("red", "rex")
    routes = {("GET", "/containers/json"): json_answer(
        [_summary(BLUE_ID, "blue1", blue), _summary(RED_ID, "red1", red),
         _summary("c0" * 32, "bare", {})])}
    for ident, name, labels in ((BLUE_ID, "blue1", blue), (RED_ID, "red1", red)):
        for key in (ident, name):
            routes[("GET", f"/containers/{key}/json")] = json_answer(
                _inspect(ident, name, labels))
        routes[("POST", f"/containers/{ident}/stop")] = empty()
    return FakeEngine(routes)


@dataclass
class AuditRow:
    """An audit record as the fake log keeps it (fields of ``AuditLog.record``)."""

    user: str
    environment: str | None
    action: str
    target: str | None
    result: str
    status: int | None
    request_id: str | None
    detail: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FakeAudit:
    """The audit log's two calls the ``/api/v1`` side makes, over a list."""

    rows: list[AuditRow] = field(default_factory=list)

    def record(self, **fields: Any) -> int:
        self.rows.append(AuditRow(**fields))
        return len(self.rows)

    def entries(self, user: str | None = None, since: datetime | None = None,
                until: datetime | None = None, environment: str | None = None,
                limit: int | None = None) -> list[AuditRow]:
        found = [row for row in self.rows
                 if (user is None or row.user == user)
                 and (environment is None or row.environment == environment)
                 and (since is None or row.time >= since)]
        return found[:limit] if limit is not None else found


@dataclass
class FakeContext:
    """``GatewayContext`` over :data:`GRANTS`, a :class:`FakeAudit` and environments."""

    environments: dict[str, Environment]
    audit: FakeAudit = field(default_factory=FakeAudit)
    grants: dict[tuple[str, str], frozenset[str]] = field(
        default_factory=lambda: dict(GRANTS))

    async def permissions(self, identity: Identity, environment: str) -> frozenset[str]:
        if identity.admin:
            return frozenset(PERMISSIONS)
        return self.grants.get((identity.name, environment), frozenset())

    async def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            raise EnvironmentNotFound(name, known=list(self.environments)) from None

    def environment_names(self) -> list[str]:
        return sorted(self.environments)


class _Router:
    """What the gateway's router does before the ``/api/v1`` side: the scope keys."""

    def __init__(self, api: GatewayApi, context: FakeContext) -> None:
        self.api = api
        self.context = context

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", []))
        user = headers.get(b"x-test-user", b"nob").decode()
        path: str = scope["path"]
        environment = None
        if path.startswith("/env/"):
            environment, _, rest = path.removeprefix("/env/").partition("/")
            path = "/" + rest
        scope = {**scope, "path": path, IDENTITY: USERS[user], CONTEXT: self.context,
                 ENVIRONMENT: environment, REQUEST_ID: f"req-{len(self.context.audit.rows)}"}
        scope.pop("raw_path", None)
        await self.api(scope, receive, send)


@contextlib.asynccontextmanager
async def gateway_client(engine: FakeEngine | None = None, *,
                         agent: Environment | None = None
                         ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeContext]]:
    """A client of a :class:`GatewayApi` with environments ``lab`` (on ``engine``) and
    ``other`` (an empty fake), plus ``remote`` when an ``agent`` environment is given."""
    envs = {"lab": env_for(engine or team_engine(), name="lab"),
            "other": env_for(FakeEngine(), name="other")}
    if agent is not None:
        envs["remote"] = agent
    context = FakeContext(envs)
    api = GatewayApi()
    transport = httpx.ASGITransport(app=_Router(api, context))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http, context
    finally:
        await api.aclose()
        for env in envs.values():
            await env.aclose()

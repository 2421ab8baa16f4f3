"""The gateway's own ``/api/v1`` routes (whoami, environments, audit, OpenAPI) and the
events filter, over the fakes of :mod:`tests.unit.gateway_api_fakes`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ghostpanel_kernel.gateway._api_filters import filter_events
from ghostpanel_kernel.gateway._gateway_openapi import gateway_document
from ghostpanel_kernel.gateway._identity import Identity
from ghostpanel_kernel.gateway._ownership import OWNER_LABEL, TEAMS_LABEL
from ghostpanel_kernel.gateway._permissions import BUILTIN_ROLES, PERMISSIONS
from ghostpanel_kernel.server._api import api_document
from ghostpanel_kernel.server._openapi import HTTP_METHODS
from tests.unit.gateway_api_fakes import gateway_client


def _as(user: str) -> dict[str, str]:
    return {"X-Test-User": user}


def _in_order(role: str) -> list[str]:
    return [p for p in PERMISSIONS if p in BUILTIN_ROLES[role]]


async def test_whoami_says_who_and_what_per_environment() -> None:
    async with gateway_client() as (http, _context):
        ada = (await http.get("/api/v1/whoami", headers=_as("ada"))).json()
        assert ada == {"name": "ada", "kind": "user", "teams": ["blue"], "admin": False,
                       "permissions": {"lab": _in_order("operator"),
                                       "other": _in_order("viewer")}}
        root = (await http.get("/api/v1/whoami", headers=_as("root"))).json()
        assert root["admin"] is True
        assert root["permissions"]["lab"] == list(PERMISSIONS)


async def test_environments_lists_only_where_the_caller_holds_something() -> None:
    async with gateway_client() as (http, _context):
        ada = (await http.get("/api/v1/environments", headers=_as("ada"))).json()
        assert [(e["name"], e["kind"], e["permissions"]) for e in ada] == [
            ("lab", "local", _in_order("operator")), ("other", "local", _in_order("viewer"))]
        assert all("url" not in e for e in ada)
        vic = (await http.get("/api/v1/environments", headers=_as("vic"))).json()
        assert [e["name"] for e in vic] == ["lab"]
        assert (await http.get("/api/v1/environments", headers=_as("nob"))).json() == []


async def test_the_audit_log_is_for_admins_and_a_refusal_is_recorded() -> None:
    async with gateway_client() as (http, context):
        await http.post("/env/lab/api/v1/containers/blue1/stop", headers=_as("vic"))
        await http.post("/env/lab/api/v1/containers/blue1/stop", headers=_as("ada"))
        refused = await http.get("/api/v1/audit", headers=_as("ada"))
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert context.audit.rows[-1].action == "audit.read"
        assert context.audit.rows[-1].result == "denied"
        assert context.audit.rows[-1].environment is None
        everything = (await http.get("/api/v1/audit", headers=_as("root"))).json()
        assert [(e["user"], e["result"]) for e in everything] == [
            ("vic", "denied"), ("ada", "allowed"), ("ada", "denied")]
        assert everything[0]["time"].endswith("Z")
        vic = (await http.get("/api/v1/audit?user=vic", headers=_as("root"))).json()
        assert [e["action"] for e in vic] == ["container.stop"]
        lab = (await http.get("/api/v1/audit?environment=lab", headers=_as("root"))).json()
        assert len(lab) == 2
        one = (await http.get("/api/v1/audit?limit=1", headers=_as("root"))).json()
        assert len(one) == 1
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (await http.get("/api/v1/audit", params={"since": later},
                               headers=_as("root"))).json() == []
        bad = await http.get("/api/v1/audit?since=yesterday", headers=_as("root"))
        assert bad.status_code == 422
        assert (await http.get("/api/v1/audit?limit=0", headers=_as("root"))
                ).status_code == 422


async def test_an_unknown_gateway_route_is_a_404_problem() -> None:
    async with gateway_client() as (http, _context):
        answer = await http.get("/api/v1/nothing", headers=_as("ada"))
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"


async def test_the_document_holds_every_agent_route_under_env() -> None:
    document = gateway_document()
    agent = api_document()
    for path, item in agent["paths"].items():
        mine = document["paths"][f"/env/{{name}}{path}"]
        assert mine["parameters"][0]["name"] == "name"
        for method in HTTP_METHODS:
            if method in item:
                assert {"400", "403", "404"} <= set(mine[method]["responses"]), \
                    (method, path)
    assert {"/api/v1/whoami", "/api/v1/environments", "/api/v1/audit",
            "/api/v1/openapi.json"} <= set(document["paths"])
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/services/ghostpanel"}]
    async with gateway_client() as (http, _context):
        served = (await http.get("/api/v1/openapi.json", headers=_as("nob"))).json()
        assert served == json.loads(json.dumps(document))


def _event(kind: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"type": f"{kind}.created", "data": {"id": "x", "kind": kind,
                                                "environment": "agent-host",
                                                "attributes": labels}}


async def test_events_reach_only_those_who_may_see_their_object() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    ada = Identity("ada", groups=frozenset({"blue"}))
    filtered = filter_events(send, ada, "lab")
    messages = [
        {"type": "agent.subscribed", "data": {"environment": "agent-host"}},
        _event("container", {OWNER_LABEL: "ada", TEAMS_LABEL: "blue"}),
        _event("container", {OWNER_LABEL: "rex", TEAMS_LABEL: "red"}),
        _event("container", {}),
        _event("image", {}),
        _event("volume", {OWNER_LABEL: "bob", TEAMS_LABEL: "blue,green"}),
    ]
    for message in messages:
        await filtered({"type": "websocket.send", "text": json.dumps(message)})
    await filtered({"type": "websocket.send", "text": "not json"})
    await filtered({"type": "websocket.close", "code": 1000})
    texts = [json.loads(m["text"]) for m in sent if m["type"] == "websocket.send"]
    assert [(t["type"], t["data"].get("kind")) for t in texts] == [
        ("agent.subscribed", None), ("container.created", "container"),
        ("image.created", "image"), ("volume.created", "volume")]
    assert {t["data"]["environment"] for t in texts} == {"lab"}
    assert sent[-1] == {"type": "websocket.close", "code": 1000}

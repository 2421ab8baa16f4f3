"""``GatewayApi``'s per-environment side: roles, ownership, creates, Surge, the audit log.

Each test serves the gateway's ``/api/v1`` side over a fake Podman (``lab``: ``blue1``
of team blue, ``red1`` of team red, ``bare`` without owner) with the callers of
:mod:`tests.unit.gateway_api_fakes`, and checks both the answer and what reached the
engine: a refused request must reach nothing.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.gateway._ownership import OWNER_LABEL, TEAMS_LABEL
from tests.unit.fake_engine import FakeEngine
from tests.unit.gateway_api_fakes import BLUE_ID, RED_ID, gateway_client, team_engine

PROBLEM = "application/problem+json"


def _as(user: str) -> dict[str, str]:
    return {"X-Test-User": user}


def _stops(engine: FakeEngine) -> list[str]:
    return [path for method, path, _ in engine.calls if method == "POST"]


async def test_a_viewer_lists_only_her_teams_containers() -> None:
    async with gateway_client() as (http, _context):
        answer = await http.get("/env/lab/api/v1/containers", headers=_as("vic"))
        assert answer.status_code == 200
        assert [c["name"] for c in answer.json()] == ["blue1"]
        # Another team sees its own; an admin sees all, unowned ones included.
        rex = await http.get("/env/lab/api/v1/containers", headers=_as("rex"))
        assert [c["name"] for c in rex.json()] == ["red1"]
        root = await http.get("/env/lab/api/v1/containers", headers=_as("root"))
        assert sorted(c["name"] for c in root.json()) == ["bare", "blue1", "red1"]
        assert int(answer.headers["content-length"]) == len(answer.content)


async def test_a_viewers_stop_is_refused_and_recorded_and_reaches_nothing() -> None:
    engine = team_engine()
    async with gateway_client(engine) as (http, context):
        answer = await http.post("/env/lab/api/v1/containers/blue1/stop",
                                 headers=_as("vic"))
        assert answer.status_code == 403
        assert answer.headers["content-type"] == PROBLEM
        problem = answer.json()
        assert problem["environment"] == "lab"
        assert problem["permission"] == "lifecycle"
        assert "your role on lab does not allow lifecycle" in problem["detail"]
        assert _stops(engine) == []
        [row] = context.audit.rows
        assert (row.user, row.environment, row.result, row.status) == \
            ("vic", "lab", "denied", 403)
        assert row.action == "container.stop"


async def test_an_operator_stops_her_teams_container_by_its_full_id() -> None:
    engine = team_engine()
    async with gateway_client(engine) as (http, context):
        answer = await http.post("/env/lab/api/v1/containers/blue1/stop",
                                 headers=_as("ada"))
        assert answer.status_code == 200, answer.text
        # Resolved before the check, and acted on by the id that was checked.
        assert _stops(engine) == [f"/containers/{BLUE_ID}/stop"]
        [row] = context.audit.rows
        assert (row.user, row.result, row.status, row.target) == \
            ("ada", "allowed", 200, BLUE_ID)


async def test_another_teams_container_is_403_and_an_unknown_one_404() -> None:
    engine = team_engine()
    async with gateway_client(engine) as (http, context):
        red = await http.post("/env/lab/api/v1/containers/red1/stop", headers=_as("ada"))
        assert red.status_code == 403
        assert "another team" in red.json()["detail"]
        by_id = await http.get(f"/env/lab/api/v1/containers/{RED_ID}", headers=_as("ada"))
        assert by_id.status_code == 403
        missing = await http.post("/env/lab/api/v1/containers/nope/stop",
                                  headers=_as("ada"))
        assert missing.status_code == 404
        assert _stops(engine) == []
        assert [row.result for row in context.audit.rows] == ["denied", "denied"]


async def test_no_role_no_environment_no_route() -> None:
    async with gateway_client() as (http, context):
        none = await http.get("/env/lab/api/v1/containers", headers=_as("nob"))
        assert none.status_code == 403
        assert none.json()["permission"] == "read"
        unknown = await http.get("/env/nowhere/api/v1/containers", headers=_as("root"))
        assert unknown.status_code == 404
        assert "nowhere" in unknown.json()["detail"]
        assert [row.user for row in context.audit.rows] == ["nob"]


async def test_surge_changes_are_refused_to_non_admins() -> None:
    engine = team_engine()
    async with gateway_client(engine) as (http, context):
        answer = await http.post(
            "/env/lab/api/v1/surge/apply", content=b"project = 'x'\n",
            headers={**_as("rex"), "Content-Type": "application/toml"})
        assert answer.status_code == 403
        assert "Surge" in answer.json()["detail"]
        assert engine.calls == []
        assert context.audit.rows[-1].result == "denied"


def _creating_engine(created: list[Any]) -> FakeEngine:
    engine = team_engine()
    new_id = "ab" * 32

    def create(request: httpx.Request) -> httpx.Response:
        created.append(json.loads(request.content))
        return httpx.Response(201, json={"Id": new_id, "Warnings": []})

    engine.routes[("POST", "/containers/create")] = create
    engine.routes[("GET", f"/containers/{new_id}/json")] = lambda request: httpx.Response(
        200, json={"Id": new_id, "Name": "/made", "State": {"Status": "created"},
                   "Image": "sha256:" + "0" * 64, "Created": "2026-12-07T10:00:00Z",
                   "Config": {"Image": "busybox", "Labels": created[-1].get("Labels")},
                   "HostConfig": {}, "NetworkSettings": {}})
    return engine


async def test_an_engine_body_create_is_stamped_with_the_callers_ownership() -> None:
    created: list[Any] = []
    async with gateway_client(_creating_engine(created)) as (http, context):
        answer = await http.post("/env/lab/api/v1/containers?name=made", headers=_as("rex"),
                                 json={"Image": "busybox", "Labels": {"app": "x"}})
        assert answer.status_code == 201, answer.text
        labels = created[0]["Labels"]
        assert labels == {"app": "x", OWNER_LABEL: "rex", TEAMS_LABEL: "red"}
        assert answer.json()["labels"][OWNER_LABEL] == "rex"
        assert (context.audit.rows[-1].action, context.audit.rows[-1].result) == \
            ("container.create", "allowed")


@pytest.mark.parametrize("body", [
    {"Image": "busybox", "Labels": {OWNER_LABEL: "someone"}},
    {"Image": "busybox", "HostConfig": {"Privileged": True}},
    {"Image": "busybox", "hostconfig": {"binds": ["/etc:/x"]}},
], ids=["ownership-label", "privileged", "host-bind"])
async def test_a_create_the_engine_side_would_refuse_is_refused(body: Any) -> None:
    created: list[Any] = []
    async with gateway_client(_creating_engine(created)) as (http, context):
        answer = await http.post("/env/lab/api/v1/containers", headers=_as("rex"),
                                 json=body)
        assert answer.status_code == 403, answer.text
        assert created == []
        assert context.audit.rows[-1].result == "denied"


async def test_boltfile_creates_are_for_admins() -> None:
    created: list[Any] = []
    async with gateway_client(_creating_engine(created)) as (http, _context):
        service = await http.post("/env/lab/api/v1/containers", headers=_as("rex"),
                                  json={"name": "s", "service": {"image": "busybox"}})
        assert service.status_code == 403
        toml = await http.post("/env/lab/api/v1/containers", headers={
            **_as("rex"), "Content-Type": "application/toml"},
            content=b"project = 'p'\n[services.s]\nimage = 'busybox'\n")
        assert toml.status_code == 403
        assert created == []


def _agent_environment(handler: Any) -> Environment:
    """The environment ``remote``: an agent whose answers ``handler`` gives, its token
    ``agent-secret`` (what the forwarded requests must carry, not the caller's)."""
    return Environment("https://agent.test:9443", name="remote", token="agent-secret",
                       transport=httpx.MockTransport(handler))


class _Agent:
    """A GhostPanel agent as its environment's transport sees it: the Engine API (a
    fake Podman) at ``/``, and ``/api/v1`` answered here, every request noted."""

    def __init__(self) -> None:
        self.engine = team_engine()
        self.api_requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v1/"):
            self.api_requests.append(request)
            return httpx.Response(200, json=[
                {"id": BLUE_ID, "name": "blue1", "labels": {OWNER_LABEL: "ada",
                                                            TEAMS_LABEL: "blue"}},
                {"id": RED_ID, "name": "red1", "labels": {OWNER_LABEL: "rex",
                                                          TEAMS_LABEL: "red"}}])
        return await self.engine(request)


async def test_an_agent_environment_is_forwarded_with_the_agents_token() -> None:
    agent = _Agent()
    env = _agent_environment(agent)
    async with gateway_client(agent=env) as (http, context):
        context.grants[("ada", "remote")] = frozenset({"read", "lifecycle"})
        answer = await http.get("/env/remote/api/v1/containers?status=running",
                                headers={**_as("ada"), "Authorization": "token hub-token"})
        assert answer.status_code == 200
        assert [c["name"] for c in answer.json()] == ["blue1"]
        [sent] = agent.api_requests
        assert sent.headers["authorization"] == "Bearer agent-secret"
        assert sent.url.path == "/api/v1/containers"
        assert sent.url.query == b"status=running"
        # An id in the path: resolved through the agent's Engine API, forwarded by id.
        await http.post("/env/remote/api/v1/containers/blue1/stop", headers=_as("ada"))
        assert agent.api_requests[-1].url.path == f"/api/v1/containers/{BLUE_ID}/stop"
        refused = await http.post("/env/remote/api/v1/containers/red1/stop",
                                  headers=_as("ada"))
        assert refused.status_code == 403
        assert len(agent.api_requests) == 2


async def test_an_agent_that_cannot_be_reached_is_a_502_and_a_big_body_a_413() -> None:
    agent = _Agent()

    async def down(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v1/"):
            raise httpx.ConnectError("connection refused")
        return await agent(request)

    env = _agent_environment(down)
    async with gateway_client(agent=env) as (http, context):
        context.grants[("rex", "remote")] = frozenset({"read", "gpus"})
        answer = await http.get("/env/remote/api/v1/containers", headers=_as("rex"))
        assert answer.status_code == 502
        assert answer.json()["engine"] == "https://agent.test:9443"
        big = await http.post("/env/remote/api/v1/gpus/allocate", headers=_as("rex"),
                              content=b"x" * (1024 * 1024 + 1))
        assert big.status_code == 413
        # A change that failed is recorded with the status the caller got.
        assert [(row.action, row.result, row.status) for row in context.audit.rows] == [
            ("gpus.allocate", "failed", 413)]


async def test_a_refused_handshake_without_the_denial_extension_closes_4403() -> None:
    from ghostpanel_kernel.gateway._api_gateway import GatewayApi
    from ghostpanel_kernel.gateway._context import CONTEXT, ENVIRONMENT, IDENTITY
    from tests.unit.gateway_api_fakes import USERS, FakeContext

    env = Environment("unix:///run/podman/podman.sock", name="lab",
                      transport=httpx.MockTransport(team_engine()))
    context = FakeContext({"lab": env})
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/api/v1/containers/blue1/exec",
             "query_string": b"cmd=sh", "headers": [], "extensions": {},
             IDENTITY: USERS["vic"], CONTEXT: context, ENVIRONMENT: "lab"}
    try:
        await GatewayApi()(scope, receive, send)
    finally:
        await env.aclose()
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 4403
    assert "does not allow exec" in sent[0]["reason"]
    assert [(r.action, r.result) for r in context.audit.rows] == [
        ("container.exec", "denied")]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/env/lab/api/v1/surge/plan", {"path": "/etc/Boltfile.toml"}),
    ("GET", "/env/lab/api/v1/surge/status?path=/etc/Boltfile.toml", None),
], ids=["plan-body", "status-query"])
async def test_a_boltfile_on_the_host_is_for_admins(method: str, path: str,
                                                    body: Any) -> None:
    engine = team_engine()
    async with gateway_client(engine) as (http, context):
        answer = await http.request(method, path, json=body, headers=_as("rex"))
        assert answer.status_code == 403
        assert "for admins" in answer.json()["detail"]
        assert engine.calls == []
        assert context.audit.rows[-1].result == "denied"


async def test_a_plan_of_a_boltfile_sent_is_read_by_the_route() -> None:
    async with gateway_client() as (http, context):
        answer = await http.post("/env/lab/api/v1/surge/plan", headers=_as("rex"),
                                 json={"boltfile": "not toml ["})
        # The body came through unchanged: the route itself found it is not TOML.
        assert answer.status_code == 422, answer.text
        assert context.audit.rows == []  # a plan changes nothing


async def test_a_full_ids_owner_is_read_once_and_a_name_every_time() -> None:
    engine = team_engine()

    def inspects() -> int:
        return sum(1 for method, path, _ in engine.calls
                   if method == "GET" and path.startswith("/containers/")
                   and path.endswith("/json") and path != "/containers/json")

    async with gateway_client(engine) as (http, _context):
        for _ in range(3):
            assert (await http.post(f"/env/lab/api/v1/containers/{BLUE_ID}/stop",
                                    headers=_as("ada"))).status_code == 200
        # One look-up for ownership; the route's own inspects (it reloads after a
        # stop) are the app's, two per request.
        assert inspects() == 1 + 3 * 2
        for _ in range(2):
            assert (await http.get(f"/env/lab/api/v1/containers/{RED_ID}",
                                   headers=_as("ada"))).status_code == 403
        assert inspects() == 1 + 3 * 2 + 1
        before = inspects()
        await http.post("/env/lab/api/v1/containers/blue1/stop", headers=_as("ada"))
        await http.post("/env/lab/api/v1/containers/blue1/stop", headers=_as("ada"))
        assert inspects() == before + 2 * (1 + 2)


class _MetricsAgent(_Agent):
    """An agent whose metrics history, events and alert feed name both teams' containers
    and one without an owner (``bare``)."""

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in ("/api/v1/metrics/history", "/api/v1/metrics/events"):
            self.api_requests.append(request)
            return httpx.Response(200, json={
                "columns": ["time", "environment", "container", "metric", "value"],
                "rows": [[1.0, "local", "blue1", "cpu_cores", 0.5],
                         [1.0, "local", "red1", "cpu_cores", 0.9],
                         [1.0, "local", "bare", "cpu_cores", 0.1]]})
        if path == "/api/v1/alerts":
            self.api_requests.append(request)
            return httpx.Response(200, json={
                "enabled": True, "seq": 3, "silences": [],
                "alerts": [{"id": 1, "container": "blue1", "state": "firing"},
                           {"id": 2, "container": "red1", "state": "firing"}]})
        return await super().__call__(request)


@pytest.mark.parametrize("path", ["/api/v1/metrics/history", "/api/v1/metrics/events"])
async def test_metrics_rows_of_other_teams_containers_are_dropped(path: str) -> None:
    agent = _MetricsAgent()
    env = _agent_environment(agent)
    async with gateway_client(agent=env) as (http, context):
        context.grants[("ada", "remote")] = frozenset({"read"})
        answer = await http.get(f"/env/remote{path}", headers=_as("ada"))
        assert answer.status_code == 200
        assert [row[2] for row in answer.json()["rows"]] == ["blue1"]
        assert int(answer.headers["content-length"]) == len(answer.content)
        root = await http.get(f"/env/remote{path}", headers=_as("root"))
        assert [row[2] for row in root.json()["rows"]] == ["blue1", "red1", "bare"]


async def test_alerts_of_other_teams_containers_are_dropped_and_silences_are_admins() -> None:
    agent = _MetricsAgent()
    env = _agent_environment(agent)
    async with gateway_client(agent=env) as (http, context):
        context.grants[("ada", "remote")] = frozenset({"read", "lifecycle"})
        answer = await http.get("/env/remote/api/v1/alerts", headers=_as("ada"))
        assert answer.status_code == 200
        assert [alert["container"] for alert in answer.json()["alerts"]] == ["blue1"]
        silence = await http.post("/env/remote/api/v1/alerts/silences", headers=_as("ada"),
                                  json={"matchers": {"container": "*"}, "duration": "1h"})
        assert silence.status_code == 403 and silence.json()["permission"] == "admin"
        assert all(sent.method == "GET" for sent in agent.api_requests)

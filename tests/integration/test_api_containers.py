"""``/api/v1/containers`` on a real ``ghostpanel agent`` and its private Podman engine:
create (JSON service table, Boltfile TOML, Engine API body), list with filters, get,
start/stop/restart, remove; unknown containers, Boltfile errors and an engine that is
down, each as its problem answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel.engine import Environment, NotFound
from ghostpanel_kernel.server._api import api_document
from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401
from tests.agent_process import problem_answer as _problem
from tests.integration.conftest import unique
from tests.podman_service import BUSYBOX_REFERENCE

pytestmark = pytest.mark.integration

TOML = {"content-type": "application/toml"}


async def test_a_container_from_create_to_removal(
        agent: RunningAgent, env: Environment, track_container: Callable[[str], None]) -> None:
    name = unique("gp-api")
    track_container(name)
    label = f"gp-api-test={name}"
    with agent.client(timeout=60) as http:
        created = http.post("/api/v1/containers", json={"name": name, "service": {
            "image": BUSYBOX_REFERENCE, "command": ["sleep", "300"],
            "labels": {"gp-api-test": name}, "env": {"MODE": "api"}}})
        assert created.status_code == 201, created.text
        container = created.json()
        assert container["name"] == name and container["state"] == "created"
        assert container["image"] == BUSYBOX_REFERENCE and container["warnings"] == []
        assert created.headers["location"] == f"/api/v1/containers/{container['id']}"

        listed = http.get("/api/v1/containers", params={"label": label}).json()
        assert [c["id"] for c in listed] == [container["id"]]
        assert http.get("/api/v1/containers", params={"label": label,
                                                       "status": "running"}).json() == []
        assert [c["name"] for c in http.get(
            "/api/v1/containers", params={"name": name[-8:]}).json()] == [name]

        started = http.post(f"/api/v1/containers/{name}/start")
        assert started.status_code == 200, started.text
        assert started.json()["state"] == "running"
        restarted = http.post(f"/api/v1/containers/{name}/restart?timeout=0")
        assert restarted.json()["state"] == "running", restarted.text
        refused = _problem(http.delete(f"/api/v1/containers/{name}"), 409)
        assert "running" in refused["detail"] or "force" in refused["detail"]
        stopped = http.post(f"/api/v1/containers/{container['short_id']}/stop?timeout=0")
        assert stopped.json()["state"] == "exited", stopped.text
        one = http.get(f"/api/v1/containers/{name}").json()
        assert one["labels"]["gp-api-test"] == name and one["created"]

        assert http.delete(f"/api/v1/containers/{name}?force=true").status_code == 204
        gone = _problem(http.get(f"/api/v1/containers/{name}"), 404)
        assert gone["detail"] == f"no container {name!r} on this agent's engine"
    with pytest.raises(NotFound):
        await env.containers.get(name)
    inspect = await env.containers.list(all=True, filters={"label": label})
    assert inspect == []


async def test_create_from_a_boltfile_and_from_an_engine_body(
        agent: RunningAgent, env: Environment, track_container: Callable[[str], None]) -> None:
    web, raw = unique("gp-api"), unique("gp-api")
    track_container(web)
    track_container(raw)
    boltfile = (f'project = "shop"\n\n[services.{web}]\nimage = "{BUSYBOX_REFERENCE}"\n'
                'command = ["sleep", "300"]\n')
    with agent.client(timeout=60) as http:
        answer = http.post("/api/v1/containers", content=boltfile, headers=TOML)
        assert answer.status_code == 201, answer.text
        assert answer.json()["name"] == web
        engine_body = http.post(f"/api/v1/containers?name={raw}",
                                json={"Image": BUSYBOX_REFERENCE, "Cmd": ["true"]})
        assert engine_body.status_code == 201, engine_body.text
    assert (await env.containers.get(web)).attrs["Config"]["Cmd"] == ["sleep", "300"]
    assert (await env.containers.get(raw)).attrs["Config"]["Cmd"] == ["true"]


def test_boltfile_errors_come_back_with_line_and_column(agent: RunningAgent) -> None:
    with agent.client() as http:
        invalid = _problem(http.post(
            "/api/v1/containers", headers=TOML,
            content='project = "x"\n[services.web]\nimage = "busybox"\nports = ["0:80"]\n'),
            422)
        syntax = _problem(http.post("/api/v1/containers", headers=TOML,
                                    content='project = "x"\n[services.web\n'), 400)
        json_table = _problem(http.post("/api/v1/containers", json={
            "service": {"image": "busybox", "ports": ["x:80"]}}), 422)
    first = invalid["diagnostics"][0]
    assert (first["path"], first["line"], first["column"], first["key"]) == (
        "<body>", 4, 10, "services.web.ports")
    assert syntax["diagnostics"][0]["line"] == 2 and syntax["detail"].startswith("<body>:2:")
    assert json_table["diagnostics"][0]["key"] == "service.ports"


def test_unknown_containers_and_bad_input(agent: RunningAgent) -> None:
    missing = unique("gp-missing")
    with agent.client() as http:
        for method, path in [("GET", ""), ("POST", "/start"), ("POST", "/stop"),
                             ("POST", "/restart"), ("DELETE", "")]:
            answer = _problem(http.request(method, f"/api/v1/containers/{missing}{path}"),
                              404)
            assert missing in answer["detail"], (method, path)
        _problem(http.get("/api/v1/containers?status=asleep"), 422)
        _problem(http.post(f"/api/v1/containers/{missing}/stop?timeout=soon"), 422)
        no_image = _problem(http.post("/api/v1/containers", json={
            "service": {"image": "localhost/gp-no-such-image:1"}}), 422)
    assert "gp-no-such-image" in no_image["detail"]


def test_an_engine_that_is_down_is_named(agent_factory: Callable[..., RunningAgent],
                                         tmp_path: Path) -> None:
    socket = f"unix://{tmp_path}/no-engine.sock"
    running = agent_factory(engine_url=socket)
    with running.client() as http:
        listing = _problem(http.get("/api/v1/containers"), 502)
        start = _problem(http.post("/api/v1/containers/web/start"), 502)
    assert listing["engine"] == socket and socket in start["detail"]


def test_the_document_and_the_docs_page(agent: RunningAgent) -> None:
    with agent.client() as http:
        document = http.get("/api/v1/openapi.json")
        page = http.get("/api/v1/docs")
        anonymous = httpx.get(f"{agent.url}/api/v1/openapi.json",
                              verify=agent.ssl_context())
    assert document.status_code == 200 and document.json() == api_document()
    assert page.status_code == 200 and "GhostPanel agent API" in page.text
    _problem(anonymous, 401)  # behind the same authentication as every route

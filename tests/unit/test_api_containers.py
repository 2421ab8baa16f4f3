"""``/api/v1/containers`` over a FakeEngine: the JSON shape, filters, create bodies
(Boltfile TOML, a JSON service table, an Engine API body), lifecycle actions, removal,
and each failure as the problem answer it must be."""

from __future__ import annotations

import json
from typing import Any

import httpx

from ghostpanel_kernel.engine import Environment
from tests.unit.api_client import api_client, problem_of
from tests.unit.fake_engine import (
    WEB_ID,
    WEB_INSPECT,
    FakeEngine,
    empty,
    json_answer,
    web_engine,
)

# One entry of Podman 4.3.1's compat listing (GET /containers/json?all=true), trimmed.
LISTED: dict[str, Any] = {
    "Id": WEB_ID, "Names": ["/web"], "Image": "localhost/busybox:latest",
    "Created": 1796763707, "State": "running", "Status": "Up 2 minutes",
    "Labels": {"app": "web"},
    "Ports": [{"IP": "127.0.0.1", "PrivatePort": 8080, "PublicPort": 18080, "Type": "tcp"}],
}
NEW_ID = "5" * 64


def _created_engine(**routes: Any) -> FakeEngine:
    """A fake that creates the container ``web`` (answering its inspect afterwards)."""
    return web_engine({("POST", "/containers/create"): json_answer({"Id": WEB_ID,
                                                                    "Warnings": []}, 201),
                       **routes})


async def test_the_listing_is_the_kernel_models_fields() -> None:
    engine = FakeEngine({("GET", "/containers/json"): json_answer([LISTED])})
    async with api_client(engine) as http:
        answer = await http.get("/api/v1/containers")
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{
        "id": WEB_ID, "short_id": WEB_ID[:12], "name": "web",
        "image": "localhost/busybox:latest", "state": "running", "status": "Up 2 minutes",
        "health": "", "created": "2026-12-08T21:01:47+00:00", "labels": {"app": "web"},
        "ports": ["127.0.0.1:18080->8080/tcp"]}]
    assert engine.calls[0][2]["all"] == "true"  # stopped ones too


async def test_labels_go_to_the_engine_states_and_names_are_read_here() -> None:
    other = {**LISTED, "Id": "f" * 64, "Names": ["/db"], "State": "exited"}
    engine = FakeEngine({("GET", "/containers/json"): json_answer([LISTED, other])})
    async with api_client(engine) as http:
        answer = await http.get("/api/v1/containers", params=[
            ("status", "running"), ("status", "restarting"), ("label", "app=web"),
            ("name", "(")])
        assert answer.status_code == 200 and answer.json() == []  # no name holds "("
        named = await http.get("/api/v1/containers", params={"name": "we"})
        exited = await http.get("/api/v1/containers", params={"status": "exited"})
    assert [c["name"] for c in named.json()] == ["web"]
    assert [c["name"] for c in exited.json()] == ["db"]
    # Podman 4.3 answers a 500 to a state filter it has no word for: never sent.
    assert engine.filters(0) == {"label": ["app=web"]}
    assert "filters" not in engine.calls[1][2] and "filters" not in engine.calls[2][2]


async def test_a_bad_filter_is_a_422_and_no_engine_call() -> None:
    engine = FakeEngine()
    async with api_client(engine) as http:
        status = problem_of(await http.get("/api/v1/containers?status=sleeping"), 422)
        label = problem_of(await http.get("/api/v1/containers?label==x"), 422)
    assert "running" in str(status["detail"]) and "KEY=VALUE" in str(label["detail"])
    assert engine.requests == []


async def test_get_one_and_an_unknown_one() -> None:
    async with api_client(web_engine()) as http:
        web = await http.get("/api/v1/containers/web")
        missing = problem_of(await http.get("/api/v1/containers/nope"), 404)
        dots = problem_of(await http.get("/api/v1/containers/%2E%2E"), 404)
    assert web.json()["id"] == WEB_ID and web.json()["state"] == "running"
    assert web.json()["created"] == WEB_INSPECT["Created"]
    assert web.json()["ports"] == ["127.0.0.1:18080->8080/tcp", "9090/udp"]
    assert missing["detail"] == "no container 'nope' on this agent's engine"
    assert "'..'" in str(dots["detail"])


async def test_an_engine_that_is_down_is_a_502_naming_it(tmp_path: Any) -> None:
    socket = f"unix://{tmp_path}/no-engine.sock"
    async with api_client(environment=Environment(socket)) as http:
        listing = problem_of(await http.get("/api/v1/containers"), 502)
        one = problem_of(await http.post("/api/v1/containers/web/start"), 502)
    assert listing["engine"] == socket and one["engine"] == socket


async def test_create_from_a_json_service_table() -> None:
    engine = _created_engine()
    service = {"image": "localhost/busybox:latest", "command": ["sleep", "300"],
               "env": {"MODE": "api"}, "labels": {"team": "ops"}, "ports": ["18080:80"],
               "volumes": ["/srv/data:/data:ro", "cache:/cache"], "restart": "always",
               "memory_limit": "64m"}
    async with api_client(engine) as http:
        answer = await http.post("/api/v1/containers",
                                 json={"name": "web", "service": service})
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == f"/api/v1/containers/{WEB_ID}"
    assert answer.json()["id"] == WEB_ID and answer.json()["warnings"] == []
    method, path, query = engine.calls[0]
    assert (method, path, query) == ("POST", "/containers/create", {"name": "web"})
    body = json.loads(engine.requests[0].content)
    assert body["Image"] == "localhost/busybox:latest" and body["Cmd"] == ["sleep", "300"]
    assert body["Env"] == ["MODE=api"] and body["Labels"] == {"team": "ops"}
    host = body["HostConfig"]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "18080"}]}
    # Named volumes by their own name: one container has no project to prefix them with.
    assert host["Binds"] == ["/srv/data:/data:ro", "cache:/cache"]
    assert host["RestartPolicy"] == {"Name": "always"} and host["Memory"] == 64 * 2**20
    assert "NetworkMode" not in host and "NetworkingConfig" not in body  # engine default


async def test_a_service_joins_its_networks_by_their_engine_names() -> None:
    engine = _created_engine()
    engine.routes[("GET", "/networks/back")] = json_answer({"Id": "n" * 64, "Name": "back"})
    engine.routes[("POST", f"/networks/{'n' * 64}/connect")] = empty(200)
    async with api_client(engine) as http:
        answer = await http.post("/api/v1/containers", json={"name": "web", "service": {
            "image": "busybox", "networks": ["front", "back"]}})
    assert answer.status_code == 201, answer.text
    body = json.loads(engine.requests[0].content)
    assert body["HostConfig"]["NetworkMode"] == "front"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"front": {"Aliases": ["web"]}}}
    connect = json.loads(engine.requests[-1].content)
    assert connect == {"Container": WEB_ID, "EndpointConfig": {"Aliases": ["web"]}}


async def test_a_network_it_cannot_join_undoes_the_create() -> None:
    engine = _created_engine()
    engine.routes[("DELETE", f"/containers/{WEB_ID}")] = empty()
    async with api_client(engine) as http:
        answer = problem_of(await http.post("/api/v1/containers", json={
            "name": "web", "service": {"image": "busybox", "networks": ["front", "gone"]}}),
            422)
    assert "gone" in str(answer["detail"])
    assert engine.calls[-1] == ("DELETE", f"/containers/{WEB_ID}",
                                {"force": "true", "v": "true"})


async def test_a_json_table_with_errors_names_its_keys() -> None:
    engine = FakeEngine()
    async with api_client(engine) as http:
        bad_port = problem_of(await http.post("/api/v1/containers", json={
            "service": {"image": "busybox", "ports": ["99999:80"]}}), 422)
        replicas = problem_of(await http.post("/api/v1/containers", json={
            "service": {"image": "busybox", "replicas": 2}}), 422)
        relative = problem_of(await http.post("/api/v1/containers", json={
            "service": {"image": "busybox", "volumes": ["./data:/data"]}}), 422)
        null = problem_of(await http.post("/api/v1/containers", json={
            "service": {"image": "busybox", "user": None}}), 422)
        build = problem_of(await http.post("/api/v1/containers", json={
            "service": {"build": "."}}), 422)
        extra = problem_of(await http.post("/api/v1/containers", json={
            "service": {"image": "busybox"}, "replicas": 3}), 422)
        bad_name = problem_of(await http.post("/api/v1/containers", json={
            "name": "-x", "service": {"image": "busybox"}}), 422)
        bad_image = problem_of(await http.post("/api/v1/containers", json={
            "service": {"image": "P z"}}), 422)
        bad_engine_image = problem_of(await http.post("/api/v1/containers", json={
            "Image": "Busy box"}), 422)
    diagnostics: Any = bad_port["diagnostics"]
    assert diagnostics[0]["key"] == "service.ports" and "99999" in diagnostics[0]["message"]
    assert diagnostics[0]["hint"] and "line" not in diagnostics[0]
    assert "at service.ports" in str(bad_port["detail"])
    assert "replicas" in str(replicas["detail"]) and "surge/apply" in str(replicas["detail"])
    assert "absolute path" in str(relative["detail"])
    assert "service cannot be a Boltfile table" in str(null["detail"])
    assert "image" in str(build["detail"])
    assert "replicas" in str(extra["detail"]) and "-x" in str(bad_name["detail"])
    # Podman answers these with a 500 ("invalid reference format"): refused before it.
    assert str(bad_image["detail"]).startswith("service.image 'P z' is not an image ref")
    assert str(bad_engine_image["detail"]).startswith("Image 'Busy box' is not an image")
    assert engine.requests == []  # nothing reached the engine


BOLTFILE = """\
project = "shop"

[services.web]
image = "localhost/busybox:latest"
command = ["sleep", "300"]

[services.db]
image = "localhost/busybox:latest"
"""


async def test_create_from_a_boltfile() -> None:
    engine = _created_engine()
    async with api_client(engine) as http:
        which = problem_of(await http.post(
            "/api/v1/containers", content=BOLTFILE,
            headers={"content-type": "application/toml"}), 422)
        answer = await http.post("/api/v1/containers?service=web", content=BOLTFILE,
                                 headers={"content-type": "application/toml"})
        named = await http.post("/api/v1/containers?service=db&name=db-1", content=BOLTFILE,
                                headers={"content-type": "application/toml; charset=utf-8"})
    assert "?service=NAME" in str(which["detail"]) and "web, db" in str(which["detail"])
    assert answer.status_code == 201, answer.text
    assert engine.calls[0][2] == {"name": "web"}
    assert json.loads(engine.requests[0].content)["Cmd"] == ["sleep", "300"]
    assert named.status_code == 201 and engine.calls[2][2] == {"name": "db-1"}


async def test_a_boltfile_error_says_path_line_and_column() -> None:
    headers = {"content-type": "application/toml"}
    async with api_client(FakeEngine()) as http:
        syntax = problem_of(await http.post("/api/v1/containers", headers=headers,
                                            content='project = "x"\n[services.web\n'), 400)
        invalid = problem_of(await http.post(
            "/api/v1/containers", headers=headers,
            content='project = "x"\n[services.web]\nimage = "b"\nports = ["99999:80"]\n'),
            422)
    assert syntax["detail"].startswith("<body>:2:")  # type: ignore[union-attr]
    diagnostic: Any = invalid["diagnostics"]
    assert (diagnostic[0]["path"], diagnostic[0]["line"], diagnostic[0]["column"]) == (
        "<body>", 4, 10)
    assert diagnostic[0]["key"] == "services.web.ports"
    assert "at <body>:4:10" in str(invalid["detail"])


async def test_an_engine_api_body_goes_to_the_engine_unchanged() -> None:
    engine = _created_engine()
    body = {"Image": "localhost/busybox:latest", "Cmd": ["true"], "HostConfig": {
        "Memory": 1 << 26}}
    async with api_client(engine) as http:
        answer = await http.post("/api/v1/containers?name=web", json=body)
    assert answer.status_code == 201, answer.text
    assert json.loads(engine.requests[0].content) == body
    assert engine.calls[0][2] == {"name": "web"}


async def test_bodies_that_are_not_create_requests() -> None:
    async with api_client(FakeEngine()) as http:
        neither = problem_of(await http.post("/api/v1/containers", json={"x": 1}), 422)
        array = problem_of(await http.post("/api/v1/containers", json=[1]), 422)
        broken = problem_of(await http.post("/api/v1/containers", content=b"{",
                                            headers={"content-type": "application/json"}),
                            400)
        xml = problem_of(await http.post("/api/v1/containers", content=b"<a/>",
                                         headers={"content-type": "text/xml"}), 415)
    assert "Image" in str(neither["detail"]) and "list" in str(array["detail"])
    assert "line 1" in str(broken["detail"]) and "application/toml" in str(xml["detail"])


async def test_engine_refusals_keep_their_meaning() -> None:
    conflict = _created_engine()
    conflict.routes[("POST", "/containers/create")] = json_answer(
        {"message": "the container name \"web\" is already in use"}, 409)
    no_image = FakeEngine({("POST", "/containers/create"): json_answer(
        {"message": "no such image"}, 404)})
    failing = web_engine({("POST", f"/containers/{WEB_ID}/start"): json_answer(
        {"message": "OCI runtime error"}, 500)})
    service = {"name": "web", "service": {"image": "busybox"}}
    async with api_client(conflict) as http:
        in_use = problem_of(await http.post("/api/v1/containers", json=service), 409)
    async with api_client(no_image) as http:
        missing = problem_of(await http.post("/api/v1/containers", json=service), 422)
    async with api_client(failing) as http:
        broken = problem_of(await http.post("/api/v1/containers/web/start"), 502)
    assert "already in use" in str(in_use["detail"])
    assert "no such image" in str(missing["detail"])
    assert "OCI runtime error" in str(broken["detail"])


async def test_lifecycle_actions_answer_the_container_afterwards() -> None:
    engine = web_engine({(m, f"/containers/{WEB_ID}/{action}"): empty()
                         for m, action in (("POST", "start"), ("POST", "stop"),
                                           ("POST", "restart"))})
    async with api_client(engine) as http:
        started = await http.post("/api/v1/containers/web/start")
        stopped = await http.post("/api/v1/containers/web/stop?timeout=3")
        restarted = await http.post("/api/v1/containers/web/restart")
        bad = problem_of(await http.post("/api/v1/containers/web/stop?timeout=-1"), 422)
    assert started.status_code == stopped.status_code == restarted.status_code == 200
    assert started.json()["name"] == "web"
    actions = [(path.rsplit("/", 1)[-1], query) for method, path, query in engine.calls
               if method == "POST"]
    assert actions == [("start", {}), ("stop", {"t": "3"}), ("restart", {})]
    assert "timeout" in str(bad["detail"])


async def test_remove_with_force_and_volumes() -> None:
    engine = web_engine({("DELETE", f"/containers/{WEB_ID}"): empty()})
    async with api_client(engine) as http:
        removed = await http.delete("/api/v1/containers/web?force=true&volumes=1")
        bad = problem_of(await http.delete("/api/v1/containers/web?force=maybe"), 422)
        running = problem_of(await http.delete("/api/v1/containers/web"), 409)
    assert removed.status_code == 204 and removed.content == b""
    assert running["detail"] == ("container 'web' is running; stop it first, or remove it "
                                 "with ?force=true")
    deletes = [call for call in engine.calls if call[0] == "DELETE"]
    assert deletes == [("DELETE", f"/containers/{WEB_ID}", {"force": "true", "v": "true"})]
    assert "force" in str(bad["detail"])


async def test_an_unknown_method_is_a_405_problem() -> None:
    async with api_client(FakeEngine()) as http:
        answer: httpx.Response = await http.put("/api/v1/containers/web")
    problem_of(answer, 405)

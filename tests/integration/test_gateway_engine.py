"""The gateway's Engine API side through a real gateway process on the real Podman engine.

The gateway runs as ``tests/gateway_process.py`` starts it (the real app and store; a
token table stands in for the hub). Containers of team blue and team red are made
through the gateway by their deployers, so that they carry the ownership labels the
gateway stamps. Every refusal is checked twice: the status and problem the caller gets,
and the engine's own event log (``GET /events?since=&until=`` on its socket), which
must show nothing for the refused request.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.agent_process import (  # noqa: F401 (fixtures)
    RunningAgent,
    agent_factory_fixture,
    agent_fixture,
)
from tests.gateway_process import (  # noqa: F401 (fixtures)
    BINDINGS,
    RunningGateway,
    gateway_factory_fixture,
    start_gateway,
)
from tests.orphans import claim
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def _engine_http(engine: PodmanService) -> httpx.Client:
    socket_path = engine.url.removeprefix("unix://")
    return httpx.Client(transport=httpx.HTTPTransport(uds=socket_path),
                        base_url="http://engine", timeout=30)


def event_window(since: float) -> dict[str, str]:
    """``since``/``until`` for an engine's ``GET /events``: from ``since`` to 1 s from
    now. Podman 4 ends at once, empty, when ``until`` has already passed, so the window
    always ends in the future (the answer comes when it ends)."""
    return {"since": f"{since:.3f}", "until": f"{time.time() + 1:.3f}"}


def read_events(text: str, since: float) -> list[dict[str, Any]]:
    """The events of an event stream's text that happened at ``since`` or later."""
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [event for event in events if event.get("timeNano", 0) >= since * 1e9]


def engine_events(engine: PodmanService, since: float) -> list[dict[str, Any]]:
    """The engine's own event log from ``since`` (seconds since the epoch) to now."""
    with _engine_http(engine) as http:
        answer = http.get("/v1.41/events", params=event_window(since))
    answer.raise_for_status()
    return read_events(answer.text, since)


def changes(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(type, action, actor id) of every event that is not a read."""
    return [(event.get("Type", ""), event.get("Action", ""),
             (event.get("Actor") or {}).get("ID", "")) for event in events
            if event.get("Action") not in ("exec_died",)]


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of a refusal with ``status`` (asserted)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM, answer.headers
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["detail"]
    return body


def raw_request(port: int, head: bytes, body: bytes = b"", *, read_all: bool = False
                ) -> tuple[int, bytes]:
    """Send bytes as they are (no client normalises them); the first status and answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(head + body)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
            if not read_all and b"\r\n\r\n" in data:
                head_part, _, rest = data.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(rest) >= length[0]:
                    break
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


@dataclass
class World:
    """The gateway, the engine, and the objects the tests act on."""

    gateway: RunningGateway
    engine: PodmanService
    own: dict[str, Any]        # a running container of team blue (made by dora)
    other: dict[str, Any]      # a running container of team red (made by rex)
    bare: dict[str, Any]       # a container made on the engine directly: no labels
    own_volume: str
    other_volume: str

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def raw(self, method: str, path: str, token: str, body: bytes = b"",
            extra: bytes = b"") -> tuple[int, bytes]:
        target = f"{self.gateway.url}env/prod/engine{path}".split("127.0.0.1:", 1)[1]
        target = target[target.index("/"):]
        head = (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nConnection: close\r\n").encode() + extra
        if body and b"transfer-encoding" not in extra.lower() and \
                b"content-length" not in extra.lower():
            head += b"Content-Length: %d\r\n" % len(body)
        return raw_request(self.gateway.port, head + b"\r\n", body)


def _make(gateway: RunningGateway, token: str, name: str) -> dict[str, Any]:
    with gateway.engine(token) as http:
        answer = http.post("/v1.41/containers/create", params={"name": name},
                           json={"Image": BUSYBOX_REFERENCE, "Cmd": ["sleep", "600"]})
        assert answer.status_code == 201, answer.text
        ident = answer.json()["Id"]
        started = http.post(f"/v1.41/containers/{ident}/start")
        assert started.status_code == 204, started.text
        inspected = http.get(f"/v1.41/containers/{ident}/json").json()
    return {"id": ident, "name": name, "labels": inspected["Config"]["Labels"]}


def _volume(gateway: RunningGateway, token: str, name: str) -> str:
    with gateway.engine(token) as http:
        answer = http.post("/v1.41/volumes/create", json={"Name": name})
        assert answer.status_code == 201, answer.text
    return name


@pytest.fixture(scope="module")
def world(podman_engine: PodmanService) -> Iterator[World]:
    """One gateway on the session engine for the module, and the objects of two teams."""
    home = claim(Path(tempfile.mkdtemp(prefix="gp-gw-", dir="/tmp")))
    gateway = start_gateway(podman_engine.url, home=home)
    tag = uuid.uuid4().hex[:6]
    made: list[str] = []
    volumes: list[str] = []
    try:
        own = _make(gateway, "dep-blue", f"gw-blue-{tag}")
        made.append(own["id"])
        other = _make(gateway, "dep-red", f"gw-red-{tag}")
        made.append(other["id"])
        with _engine_http(podman_engine) as http:
            answer = http.post("/v1.41/containers/create", params={"name": f"gw-bare-{tag}"},
                               json={"Image": BUSYBOX_REFERENCE, "Cmd": ["sleep", "600"]})
            assert answer.status_code == 201, answer.text
            bare = {"id": answer.json()["Id"], "name": f"gw-bare-{tag}"}
            made.append(bare["id"])
        volumes.append(_volume(gateway, "dep-blue", f"gw-vblue-{tag}"))
        volumes.append(_volume(gateway, "dep-red", f"gw-vred-{tag}"))
        yield World(gateway, podman_engine, own, other, bare, volumes[0], volumes[1])
    finally:
        try:
            gateway.stop()
        finally:
            with _engine_http(podman_engine) as http:
                for ident in made:
                    http.delete(f"/v1.41/containers/{ident}", params={"force": "1"})
                for name in volumes:
                    http.delete(f"/v1.41/volumes/{name}", params={"force": "1"})
            shutil.rmtree(home, ignore_errors=True)


def assert_nothing_reached(world: World, since: float, *ids: str) -> None:
    """The engine logged no change since ``since`` (none at all, or none about ``ids``)."""
    time.sleep(0.3)  # the engine writes its event log asynchronously
    seen = changes(engine_events(world.engine, since))
    if ids:
        seen = [event for event in seen if event[2] in ids]
    assert seen == [], seen


# -- ownership stamping, listing filters -----------------------------------------------


def test_creates_are_stamped_with_the_owner_and_teams(world: World) -> None:
    assert world.own["labels"]["io.ghostpanel.owner"] == "dora"
    assert world.own["labels"]["io.ghostpanel.teams"] == "blue"
    assert world.other["labels"]["io.ghostpanel.teams"] == "red"
    with _engine_http(world.engine) as http:
        volume = http.get(f"/v1.41/volumes/{world.own_volume}").json()
    assert volume["Labels"]["io.ghostpanel.owner"] == "dora"


def test_a_client_set_ownership_label_is_refused(world: World) -> None:
    since = time.time()
    with world.gateway.engine("dep-red") as http:
        answer = http.post("/v1.41/containers/create", json={
            "Image": BUSYBOX_REFERENCE, "Labels": {"io.ghostpanel.teams": "blue"}})
    problem(answer, 403)
    assert_nothing_reached(world, since)


def test_container_list_shows_only_the_teams_containers(world: World) -> None:
    with world.gateway.engine("op-blue") as http:
        listed = http.get("/v1.41/containers/json", params={"all": "1"}).json()
    ids = {item["Id"] for item in listed}
    assert world.own["id"] in ids
    assert world.other["id"] not in ids and world.bare["id"] not in ids
    with world.gateway.engine("admin") as http:
        everything = {item["Id"] for item in http.get(
            "/v1.41/containers/json", params={"all": "1"}).json()}
    assert {world.own["id"], world.other["id"], world.bare["id"]} <= everything


def test_volume_list_and_df_are_filtered(world: World) -> None:
    with world.gateway.engine("op-red") as http:
        volumes = {item["Name"] for item in http.get("/v1.41/volumes").json()["Volumes"]}
        df = http.get("/v1.41/system/df").json()
    assert world.other_volume in volumes and world.own_volume not in volumes
    df_containers = {item["Id"] for item in df["Containers"]}
    assert world.other["id"] in df_containers
    assert world.own["id"] not in df_containers and world.bare["id"] not in df_containers
    assert world.own_volume not in {item["Name"] for item in df["Volumes"] or []}
    assert df["Images"], "images are the environment's: not filtered"


def test_events_are_filtered_by_team(world: World) -> None:
    since = time.time() - 0.5
    with world.gateway.engine("dep-blue") as http:
        assert http.post(f"/v1.41/containers/{world.own['id']}/pause").status_code == 204
        assert http.post(f"/v1.41/containers/{world.own['id']}/unpause").status_code == 204
    with world.gateway.engine("admin") as http:
        assert http.post(f"/v1.41/containers/{world.other['id']}/pause").status_code == 204
        assert http.post(f"/v1.41/containers/{world.other['id']}/unpause").status_code == 204
    with world.gateway.engine("op-blue") as http:
        seen = read_events(http.get("/v1.41/events", params=event_window(since)).text,
                           since)
    actors = {(event.get("Actor") or {}).get("ID") for event in seen}
    assert world.own["id"] in actors, seen
    assert world.other["id"] not in actors, seen
    with world.gateway.engine("admin") as http:
        everything = {(event.get("Actor") or {}).get("ID") for event in read_events(
            http.get("/v1.41/events", params=event_window(since)).text, since)}
    assert {world.own["id"], world.other["id"]} <= everything


# -- permissions and the audit log -------------------------------------------------------


def test_a_viewer_cannot_stop_and_the_denial_is_audited(world: World) -> None:
    since = time.time()
    with world.gateway.engine("view-blue") as http:
        answer = http.post(f"/v1.41/containers/{world.own['id']}/stop")
    body = problem(answer, 403)
    assert body["environment"] == "prod" and body["permission"] == "lifecycle"
    assert body["detail"] == (f"your role on prod does not allow lifecycle "
                              f"(POST /containers/{world.own['id']}/stop)")
    assert_nothing_reached(world, since, world.own["id"])
    request_id = answer.headers["x-request-id"]
    rows = [row for row in world.gateway.audit(user="vic") if row.request_id == request_id]
    assert len(rows) == 1
    assert (rows[0].result, rows[0].status, rows[0].action) == ("denied", 403,
                                                                "container.stop")


def test_an_operator_restarts_her_teams_container_by_name_forwarded_by_full_id(
        world: World) -> None:
    with world.gateway.engine("op-blue") as http:
        answer = http.post(f"/v1.41/containers/{world.own['name']}/restart",
                           params={"t": "0"})
    assert answer.status_code == 204, answer.text
    rows = [row for row in world.gateway.audit(user="olga")
            if row.request_id == answer.headers["x-request-id"]]
    assert len(rows) == 1, (world.gateway.audit(), world.gateway.log())
    assert (rows[0].result, rows[0].status, rows[0].action) == ("allowed", 204,
                                                                "container.restart")
    assert rows[0].target == world.own["id"]


def test_a_hub_scope_grants_a_permission(world: World) -> None:
    with world.gateway.engine("scoped") as http:
        assert http.get("/v1.41/containers/json").status_code == 200
        problem(http.post(f"/v1.41/containers/{world.own['id']}/stop"), 403)


def test_another_teams_container_is_403_and_unknown_is_404(world: World) -> None:
    since = time.time()
    with world.gateway.engine("op-blue") as http:
        body = problem(http.post(f"/v1.41/containers/{world.other['id']}/stop"), 403)
        assert "not owned by your team" in body["detail"]
        problem(http.post(f"/v1.41/containers/{world.bare['id']}/stop"), 403)
        problem(http.get(f"/v1.41/containers/{world.other['name']}/json"), 403)
        problem(http.post("/v1.41/containers/no-such-container-here/stop"), 404)
    assert_nothing_reached(world, since, world.other["id"], world.bare["id"])


def test_exec_is_judged_by_its_container(world: World) -> None:
    with world.gateway.engine("op-blue") as http:
        created = http.post(f"/v1.41/containers/{world.own['id']}/exec",
                            json={"Cmd": ["true"], "AttachStdout": False})
        assert created.status_code == 201, created.text
        exec_id = created.json()["Id"]
        inspected = http.get(f"/v1.41/exec/{exec_id}/json")
        assert inspected.status_code == 200
        assert inspected.json()["ContainerID"] == world.own["id"]
    since = time.time()
    with world.gateway.engine("op-red") as http:
        problem(http.post(f"/v1.41/exec/{exec_id}/start", json={"Detach": True}), 403)
        problem(http.get(f"/v1.41/exec/{exec_id}/json"), 403)
        problem(http.post(f"/v1.41/containers/{world.own['id']}/exec",
                          json={"Cmd": ["true"]}), 403)
    assert_nothing_reached(world, since, world.own["id"])


def test_unknown_environment_and_missing_or_bad_token(world: World) -> None:
    with world.gateway.client("op-blue") as http:
        body = problem(http.get("env/nowhere/engine/v1.41/_ping"), 404)
        assert body["environments"] == ["prod"]
    with world.gateway.engine(None) as http:
        answer = http.get("/_ping")
        problem(answer, 401)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.headers["x-request-id"]
    with world.gateway.engine("not-a-token") as http:
        problem(http.get("/_ping"), 401)


def test_a_revoked_role_stops_working(world: World) -> None:
    world.gateway.grant("@blue", "helpdesk", "prod")
    deadline = time.monotonic() + 10
    with world.gateway.engine("scoped") as http:
        path = f"/v1.41/containers/{world.own['id']}/logs"
        while http.get(path, params={"stdout": "1"}).status_code != 200:
            assert time.monotonic() < deadline, "the grant did not take effect in 10 s"
            time.sleep(0.2)
        world.gateway.revoke("@blue", "helpdesk", "prod")
        revoked = time.monotonic()
        while http.get(path, params={"stdout": "1"}).status_code != 403:
            assert time.monotonic() - revoked < 10, "the revocation took over 10 s"
            time.sleep(0.2)


# -- the attack requests of the security cases --------------------------------------------


@pytest.mark.parametrize("body", [
    b'{"Image":"busybox","HostConfig":{"Privileged":false,"privileged":true}}',
    '{"Image":"busybox","HostConfig":{"Binds":[],"Bind\u017f":["/:/host"]}}'.encode(),
    b'{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/",'
    b'"Target":"/h"}]}}',
    b'{"Image":"busybox","HostConfig":{"NetworkMode":"host"}}',
    b'{"Image":"busybox","HostConfig":{"Privileged":true}}',
], ids=["case-folded-duplicate", "long-s-duplicate", "bind-mount", "host-network",
        "privileged"])
def test_dangerous_creates_are_refused(world: World, body: bytes) -> None:
    since = time.time()
    with world.gateway.engine("dep-blue") as http:
        problem(http.post("/v1.41/containers/create", content=body,
                          headers={"Content-Type": "application/json"}), 403)
    assert_nothing_reached(world, since)


def test_references_to_another_teams_container_are_refused(world: World) -> None:
    since = time.time()
    other = world.other["name"]
    with world.gateway.engine("dep-blue") as http:
        for host_config in ({"PidMode": f"container:{other}"},
                            {"VolumesFrom": [other]},
                            {"NetworkMode": f"container:{world.other['id'][:12]}"}):
            problem(http.post("/v1.41/containers/create",
                              json={"Image": BUSYBOX_REFERENCE, "HostConfig": host_config}),
                    403)
    assert_nothing_reached(world, since)


def test_a_host_bind_volume_is_admin_only(world: World) -> None:
    since = time.time()
    with world.gateway.engine("dep-blue") as http:
        problem(http.post("/v1.41/volumes/create", json={
            "Name": "x", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}}), 403)
    assert_nothing_reached(world, since)


def test_non_canonical_paths_are_400(world: World) -> None:
    since = time.time()
    own = world.own["id"]
    for path in (f"/v1.41.0/containers/{own}/stop", f"/v01.41/containers/{own}/stop",
                 "/v1.41/containers/../images/json", "/v1.41/containers/x%2F..%2Fjson",
                 "//v1.41/containers/json"):
        status, data = world.raw("POST" if path.endswith("stop") else "GET", path,
                                 "op-blue")
        assert status == 400, (path, data)
    assert_nothing_reached(world, since, own)


def test_any_framing_is_read_whole_and_judged(world: World) -> None:
    since = time.time()
    privileged = b'{"Image":"busybox","HostConfig":{"Privileged":true}}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(privileged), privileged)
    status, data = world.raw("POST", "/v1.41/containers/create", "dep-blue", chunked,
                             extra=b"Transfer-Encoding: chunked\r\n")
    assert status == 403, data
    status, data = world.raw("POST", "/v1.41/containers/create", "dep-blue", privileged,
                             extra=b"Content-Length: 0\r\n")
    assert status in (400, 403), data
    status, data = world.raw("POST", "/v1.41/containers/create", "dep-blue", chunked,
                             extra=b"Transfer-Encoding: chunked\r\nContent-Length: 10\r\n")
    assert status == 400, data
    huge = b'{"Image":"busybox","Env":["' + b"x" * (1024 * 1024) + b'"]}'
    with world.gateway.engine("dep-blue") as http:
        problem(http.post("/v1.41/containers/create", content=huge), 413)
        problem(http.post("/v1.41/containers/create", content=iter([huge])), 413)
    assert_nothing_reached(world, since)


def test_prefixes_and_encoded_names_resolve_before_the_owner_check(world: World) -> None:
    since = time.time()
    other = world.other
    encoded = "".join(f"%{byte:02X}" for byte in other["name"].encode())
    with world.gateway.engine("op-blue") as http:
        problem(http.post(f"/v1.41/containers/{other['id'][:12]}/kill"), 403)
    for path in (f"/v1.41/containers/%2F{other['name']}/kill",
                 f"/v1.41/containers/{encoded}/kill"):
        status, data = world.raw("POST", path, "op-blue")
        assert status == 403, (path, data)
    assert_nothing_reached(world, since, other["id"])
    with world.gateway.engine("op-red") as http:
        answer = http.post(f"/v1.41/containers/%2F{quote(other['name'])}/kill",
                           params={"signal": "SIGCONT"})
    assert answer.status_code == 204, answer.text
    row = next(row for row in world.gateway.audit(user="rick")
               if row.request_id == answer.headers["x-request-id"])
    assert row.target == other["id"]


def test_the_docker_cli_is_held_to_the_same_rules(world: World, tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on PATH")
    import subprocess

    def run(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        config = tmp_path / token
        config.mkdir(exist_ok=True)
        (config / "config.json").write_text(json.dumps(
            {"HttpHeaders": {"Authorization": f"Bearer {token}"}}))
        host = f"tcp://127.0.0.1:{world.gateway.port}/services/ghostpanel/env/prod/engine"
        return subprocess.run([docker, "-H", host, *args], capture_output=True, text=True,
                              env={"DOCKER_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
                              timeout=60, check=False)

    listed = run("op-blue", "ps", "-a", "--no-trunc", "--format", "{{.ID}}")
    assert listed.returncode == 0, listed.stderr
    assert world.own["id"] in listed.stdout and world.other["id"] not in listed.stdout
    since = time.time()
    refused = run("op-blue", "stop", world.other["name"])
    assert refused.returncode != 0 and "not owned by your team" in refused.stderr
    viewer = run("view-blue", "stop", world.own["name"])
    assert viewer.returncode != 0 and "does not allow lifecycle" in viewer.stderr
    assert_nothing_reached(world, since, world.other["id"], world.own["id"])


def test_a_prune_removes_only_what_the_caller_created(world: World) -> None:
    tag = uuid.uuid4().hex[:6]
    made: list[str] = []
    try:
        for token in ("dep-blue", "dep-red"):
            with world.gateway.engine(token) as http:
                answer = http.post("/v1.41/containers/create", params={
                    "name": f"gw-prune-{token}-{tag}"}, json={"Image": BUSYBOX_REFERENCE})
                assert answer.status_code == 201, answer.text
                made.append(answer.json()["Id"])
        with world.gateway.engine("dep-blue") as http:
            pruned = http.post("/v1.41/containers/prune")
        assert pruned.status_code == 200, pruned.text
        deleted = pruned.json()["ContainersDeleted"] or []
        assert made[0] in deleted
        assert made[1] not in deleted and world.bare["id"] not in deleted
        with _engine_http(world.engine) as http:
            assert http.get(f"/v1.41/containers/{made[1]}/json").status_code == 200
            assert http.get(f"/v1.41/containers/{world.bare['id']}/json").status_code == 200
    finally:
        with _engine_http(world.engine) as http:
            for ident in made:
                http.delete(f"/v1.41/containers/{ident}", params={"force": "1"})


def test_a_commit_is_judged_by_the_container_it_names(world: World) -> None:
    since = time.time()
    with world.gateway.engine("dep-red") as http:
        body = problem(http.post("/v1.41/commit", params={
            "container": world.own["name"], "repo": "localhost/stolen"}), 403)
    assert "not owned by your team" in body["detail"]
    assert_nothing_reached(world, since)
    with world.gateway.engine("dep-red") as http:
        problem(http.post("/v1.41/build", params={"networkmode": "host"}, content=b""), 403)
        problem(http.post("/v1.41/images/create",
                          params={"fromSrc": "http://127.0.0.1:9/x.tar"}), 403)
    assert_nothing_reached(world, since)


def test_connecting_another_teams_container_to_a_network_is_refused(world: World) -> None:
    tag = uuid.uuid4().hex[:6]
    with world.gateway.engine("dep-blue") as http:
        created = http.post("/v1.41/networks/create", json={"Name": f"gw-net-{tag}"})
        assert created.status_code == 201, created.text
        network = created.json()["Id"]
        try:
            since = time.time()
            body = problem(http.post(f"/v1.41/networks/{network}/connect",
                                     json={"Container": world.other["name"]}), 403)
            assert "not owned by your team" in body["detail"]
            assert_nothing_reached(world, since, world.other["id"], network)
            with world.gateway.engine("dep-red") as red:  # and the network is blue's
                problem(red.post(f"/v1.41/networks/{network}/connect",
                                 json={"Container": world.other["id"]}), 403)
                problem(red.delete(f"/v1.41/networks/{network}"), 403)
        finally:
            assert http.delete(f"/v1.41/networks/{network}").status_code == 204


def test_sigterm_stops_the_gateway_with_status_0(gateway_factory: Any) -> None:
    import signal

    gateway = gateway_factory()
    with gateway.engine("admin") as http:
        assert http.get("/_ping").text == "OK"
    assert gateway.stop(signal.SIGTERM) == 0


# -- agent environments ---------------------------------------------------------------------


def test_an_agent_environment_is_reached_with_the_agents_own_token(
        agent: RunningAgent, gateway_factory: Any) -> None:
    assert agent.fingerprint is not None
    pinned = ("--token", agent.token, "--fingerprint", agent.fingerprint)
    gateway = gateway_factory(
        environments={"prod": agent.engine_url, "remote": (agent.url, *pinned),
                      "remote-h3": (f"h3://127.0.0.1:{agent.port}", *pinned)},
        bindings=(*BINDINGS, ("olga", "viewer", "remote")))
    for env in ("remote", "remote-h3"):
        with gateway.engine("admin", env) as http:
            # The hub token would be refused by the agent (401): a 200 shows that the
            # gateway sent the agent's own token instead, over the pinned certificate.
            version = http.get("/v1.41/version")
            assert version.status_code == 200, version.text
            assert version.json()["Components"][0]["Name"] == "Podman Engine"
    with gateway.engine("op-blue", "remote") as http:
        listed = http.get("/v1.41/containers/json", params={"all": "1"})
        assert listed.status_code == 200
        assert all(item["Labels"].get("io.ghostpanel.teams") == "blue"
                   for item in listed.json())
        problem(http.post("/v1.41/containers/anything/stop"), 403)

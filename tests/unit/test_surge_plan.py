"""Plan: the Boltfile against canned engines (the shared fake engine, MockTransport)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.surge import (
    LABEL_CONFIG_HASH,
    LABEL_PROJECT,
    LABEL_REPLICA,
    LABEL_SERVICE,
    SurgeError,
    desired_state,
    plan_surge,
)
from ghostpanel_kernel.surge._plan import same_image

from .fake_engine import FakeEngine, env_for, json_answer

IMAGE = "localhost/busybox:latest"
BF = f"""\
project = "p"

[services.db]
image = "{IMAGE}"
command = ["sleep", "300"]

[services.web]
image = "{IMAGE}"
command = ["httpd", "-f"]
depends_on = ["db"]
replicas = 2
"""


def container(name: str, *, state: str = "running", labels: dict[str, str] | None = None,
              image_id: str = "sha256:" + "a" * 64, command: list[str] | None = None,
              ident: str | None = None) -> dict[str, Any]:
    """A container as Podman lists it (``Config`` only in the inspect form)."""
    return {"Id": ident or (name.encode().hex() + "0" * 64)[:64], "Names": [f"/{name}"],
            "Image": IMAGE, "ImageID": image_id, "State": state, "Labels": labels or {},
            "Config": {"Image": IMAGE, "Cmd": command or ["sleep", "300"],
                       "Labels": labels or {}}}


def managed(name: str, service: str, replica: int, config_hash: str,
            **options: Any) -> dict[str, Any]:
    return container(name, labels={LABEL_PROJECT: "p", LABEL_SERVICE: service,
                                   LABEL_REPLICA: str(replica),
                                   LABEL_CONFIG_HASH: config_hash}, **options)


class Engine(FakeEngine):
    """A fake engine holding containers, networks, volumes and image ids."""

    def __init__(self, containers: list[dict[str, Any]] | None = None,
                 networks: list[dict[str, Any]] | None = None,
                 images: dict[str, str] | None = None) -> None:
        super().__init__()
        self.containers = list(containers or [])
        self.routes[("GET", "/containers/json")] = self.list_containers
        self.routes[("GET", "/networks")] = json_answer(
            networks if networks is not None else [{"Name": "podman", "Labels": {}}])
        self.routes[("GET", "/volumes")] = json_answer({"Volumes": []})
        for entry in self.containers:
            inspect = {**entry, "Name": entry["Names"][0], "State": {"Status": entry["State"]}}
            self.routes[("GET", f"/containers/{entry['Id']}/json")] = json_answer(inspect)
        for reference, ident in (images or {}).items():
            path = f"/images/{quote(reference, safe=':@')}/json"  # as the client quotes it
            self.routes[("GET", path)] = json_answer({"Id": ident})

    def list_containers(self, request: httpx.Request) -> httpx.Response:
        filters = json.loads(request.url.params.get("filters", "{}"))
        listed = []
        for entry in self.containers:
            name = entry["Names"][0].lstrip("/")
            if "label" in filters and not all(
                    entry["Labels"].get(k) == v
                    for k, _, v in (f.partition("=") for f in filters["label"])):
                continue
            if "name" in filters and not any(re.search(f, name) for f in filters["name"]):
                continue
            listed.append({k: v for k, v in entry.items() if k != "Config"})
        return httpx.Response(200, json=listed)


def open_env(opened: list[Environment], engine: FakeEngine, name: str = "east",
             region: str = "us-east") -> Environment:
    env = env_for(engine, name=name, labels={"region": region})
    opened.append(env)
    return env


def hashes() -> dict[str, str]:
    state = desired_state(Boltfile.loads(BF))
    return {name: spec.config_hash for name, spec in state.services.items()}


def summary(plan_env: Any) -> list[tuple[str, str, str]]:
    return [(a.kind, a.service, a.container) for a in plan_env.actions]


async def test_an_empty_engine_gets_everything_created(opened: list[Environment]) -> None:
    engine = Engine()
    plan = await plan_surge(Boltfile.loads(BF), [open_env(opened, engine)])
    [east] = plan.environments
    assert summary(east) == [("create", "", "p_default"), ("create", "db", "p_db"),
                             ("create", "web", "p_web_1"), ("create", "web", "p_web_2")]
    assert [a.reason for a in east.actions] == [
        "network the services join", "new service", "new replica 1 of 2",
        "new replica 2 of 2"]
    assert east.actions[0].resource == "network"
    assert plan.ok and plan.changes
    # Read with one listing by label and one by name, whatever the number of containers.
    assert sorted(json.dumps(engine.filters(i)) for i in range(len(engine.calls))
                  if engine.calls[i][1] == "/containers/json") == [
        json.dumps({"label": [f"{LABEL_PROJECT}=p"]}), json.dumps({"name": ["p_"]})]
    assert plan.to_dict()["environments"][0]["actions"][1] == {
        "kind": "create", "service": "db", "container": "p_db", "reason": "new service",
        "resource": "container", "replica": 1, "container_id": ""}


async def test_running_containers_are_compared_by_config_hash(
        opened: list[Environment]) -> None:
    wanted = hashes()
    engine = Engine([
        managed("p_db", "db", 1, wanted["db"]),
        managed("p_web_1", "web", 1, "0" * 64),
        managed("p_web_2", "web", 2, wanted["web"], state="exited"),
    ], networks=[{"Name": "p_default", "Labels": {LABEL_PROJECT: "p"}}])
    [east] = (await plan_surge(Boltfile.loads(BF), [open_env(opened, engine)])).environments
    assert summary(east) == [("unchanged", "db", "p_db"), ("recreate", "web", "p_web_1"),
                             ("start", "web", "p_web_2")]
    assert east.actions[1].reason == f"configuration changed (hash 000000000000 -> " \
                                     f"{wanted['web'][:12]})"
    assert east.actions[2].reason == "up to date but exited"
    assert east.actions[1].container_id == engine.containers[1]["Id"]
    assert east.actions[1].running and not east.actions[2].running


async def test_what_is_no_longer_wanted_is_removed(opened: list[Environment]) -> None:
    wanted = hashes()
    engine = Engine([
        managed("p_db", "db", 1, wanted["db"]),
        managed("p_web", "web", 1, wanted["web"]),          # named for one replica
        managed("p_web_3", "web", 3, wanted["web"]),        # beyond replicas = 2
        managed("p_cache", "cache", 1, "c" * 64),           # service left the file
        managed("p_db-surge-old-0123456789ab", "db", 1, "d" * 64),  # interrupted apply
        container("p_webby"),                               # not ours: Bolt's names only
        container("other_p_web"),                           # another project's
    ], networks=[{"Name": "p_default", "Labels": {LABEL_PROJECT: "p"}},
                 {"Name": "p_old", "Labels": {LABEL_PROJECT: "p"}},
                 {"Name": "podman", "Labels": {}}])
    [east] = (await plan_surge(Boltfile.loads(BF), [open_env(opened, engine)])).environments
    removals = {a.container: a.reason for a in east.actions if a.kind == "remove"}
    assert removals == {
        "p_cache": "service `cache` is no longer in the Boltfile",
        "p_db-surge-old-0123456789ab": "set aside by an apply that did not finish",
        "p_web": "renamed: `web` now runs 2 replica(s)",
        "p_web_3": "replica 3 is beyond replicas = 2",
        "p_old": "no service uses this network any more",
    }
    assert [a.resource for a in east.actions if a.container == "p_old"] == ["network"]
    assert summary(east)[:3] == [("unchanged", "db", "p_db"), ("create", "web", "p_web_1"),
                                 ("create", "web", "p_web_2")]


async def test_bolt_named_containers_without_labels_are_adopted(
        opened: list[Environment]) -> None:
    engine = Engine([
        container("p_db", command=["sleep", "300"]),
        container("p_web_1", command=["httpd", "-f"], state="exited"),
        container("p_web_2", command=["httpd", "-f", "-p", "80"]),
    ])
    [east] = (await plan_surge(Boltfile.loads(BF), [open_env(opened, engine)])).environments
    assert [(a.kind, a.container, a.reason) for a in east.actions[1:]] == [
        ("unchanged", "p_db", "adopted: image and command match"),
        ("start", "p_web_1", "adopted (image and command match), exited"),
        ("recreate", "p_web_2", "adopted container runs ['httpd', '-f', '-p', '80'], "
                                "the Boltfile ['httpd', '-f']"),
    ]
    # Their command is not in a listing: each candidate was inspected.
    assert sum(1 for call in engine.calls if call[1].endswith("/json")
               and call[1].startswith("/containers/") and call[1] != "/containers/json") == 3


async def test_with_pull_a_changed_image_id_recreates(opened: list[Environment]) -> None:
    wanted = hashes()
    engine = Engine([managed("p_db", "db", 1, wanted["db"], image_id="sha256:" + "a" * 64),
                     managed("p_web_1", "web", 1, wanted["web"]),
                     managed("p_web_2", "web", 2, wanted["web"])],
                    networks=[{"Name": "p_default", "Labels": {}}],
                    images={IMAGE: "sha256:" + "b" * 64})
    env = open_env(opened, engine)
    assert not (await plan_surge(Boltfile.loads(BF), [env])).changes
    [east] = (await plan_surge(Boltfile.loads(BF), [env], pull=True)).environments
    assert [a.kind for a in east.actions] == ["recreate"] * 3
    assert east.actions[0].reason == (f"image changed ({IMAGE} is now bbbbbbbbbbbb, the "
                                      "container runs aaaaaaaaaaaa)")


async def test_an_environment_that_cannot_be_read_gets_its_error(
        opened: list[Environment]) -> None:
    broken = FakeEngine(answer=json_answer({"message": "storage is on fire"}, 500))
    plan = await plan_surge(Boltfile.loads(BF), [open_env(opened, Engine()),
                                                 open_env(opened, broken, "west", "eu-west")])
    east, west = plan.environments
    assert east.error is None and len(east.actions) == 4
    assert west.actions == () and "storage is on fire" in str(west.error)
    assert not plan.ok
    assert plan.to_dict()["environments"][1]["error"].startswith("[500] storage is on fire")


async def test_a_missing_external_network_is_an_environment_error(
        opened: list[Environment]) -> None:
    text = (f'project = "p"\n[services.s]\nimage = "{IMAGE}"\nnetworks = ["corp"]\n'
            '[networks.corp]\ndriver = "bridge"\nexternal = true\n')
    [east] = (await plan_surge(Boltfile.loads(text), [open_env(opened, Engine())])).environments
    assert isinstance(east.error, SurgeError)
    assert str(east.error) == "external network 'p_corp' does not exist on 'east'"


async def test_refusals_come_before_any_request(opened: list[Environment]) -> None:
    engine = Engine()
    env = open_env(opened, engine)
    with pytest.raises(SurgeError, match="1 error"):
        await plan_surge(Boltfile.loads('project = "p"\n[services.s]\n'), [env])
    with pytest.raises(SurgeError, match="no selected environment"):
        await plan_surge(Boltfile.loads(BF + 'regions = ["mars"]\n'), [env])
    with pytest.raises(ValueError, match="distinct names"):
        await plan_surge(Boltfile.loads(BF), [env, env])
    assert engine.log == []


def test_same_image() -> None:
    assert same_image("busybox", "docker.io/library/busybox:latest")
    assert same_image("nginx:1.27", "docker.io/nginx:1.27")
    assert not same_image("nginx:1.27", "nginx:1.28")
    assert same_image("localhost/app", "localhost/app:latest")
    assert same_image("localhost:5000/app", "localhost:5000/app:latest")

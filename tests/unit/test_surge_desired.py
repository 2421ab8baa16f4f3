"""From a Boltfile to Surge's desired state: translation, config hash, refusals, schema."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from ghostpanel_kernel.bolt import Boltfile, validate
from ghostpanel_kernel.engine import GhostPanelError
from ghostpanel_kernel.engine._container_spec import build_create_body
from ghostpanel_kernel.surge import (
    LABEL_CONFIG_HASH,
    LABEL_PROJECT,
    LABEL_REPLICA,
    LABEL_SERVICE,
    SurgeError,
    desired_state,
)
from ghostpanel_kernel.surge._desired import config_hash, start_order

FULL = """\
project = "shop"

[services.web]
image = "localhost/busybox:latest"
command = ["httpd", "-f", "-p", "8080"]
entrypoint = ["/bin/sh", "-c"]
environment = { A = "1", B = "2" }
env = { B = "3" }
labels = { team = "web" }
ports = ["8080:80", "8443:443", "5353/udp"]
volumes = ["./site:/srv:ro", "cache:/cache", "/etc/hosts:/etc/hosts:ro,z"]
networks = ["front", "back"]
restart = "unless-stopped"
cpu_limit = "1.5"
memory_limit = "512Mi"
working_dir = "/srv"
user = "nobody"
hostname = "web1"
read_only = true
cap_add = ["NET_ADMIN"]
depends_on = ["db"]
replicas = 2
regions = ["us-east", "eu-west"]

[services.web.healthcheck]
test = ["wget", "-q", "localhost"]
interval = "1m30s"
timeout = "500ms"
retries = 3
start_period = "10s"
disable = false

[services.db]
image = "postgres:16"

[networks.front]
driver = "bridge"

[networks.back]
driver = "bridge"
internal = true
name = "shared-back"
ipam = { config = [{ subnet = "10.77.0.0/24", gateway = "10.77.0.1" }] }

[volumes.cache]
driver = "local"
labels = { keep = "yes" }
"""


def boltfile(text: str, path: Path | None = None) -> Boltfile:
    if path is None:
        return Boltfile.loads(text)
    path.write_text(text, encoding="utf-8")
    return Boltfile.load(path)


def test_every_supported_key_is_translated(tmp_path: Path) -> None:
    state = desired_state(boltfile(FULL, tmp_path / "Boltfile.toml"))
    assert state.project == "shop"
    assert list(state.services) == ["db", "web"]  # depends_on first
    web = state.services["web"]
    assert web.replicas == 2 and web.regions == ("us-east", "eu-west")
    assert web.depends_on == ("db",)
    assert dict(web.create) == {
        "image": "localhost/busybox:latest",
        "command": ["httpd", "-f", "-p", "8080"],
        "entrypoint": ["/bin/sh", "-c"],
        "env": {"A": "1", "B": "3"},
        "labels": {"team": "web"},
        "ports": {"80/tcp": 8080, "443/tcp": 8443, "5353/udp": 5353},
        "volumes": [f"{tmp_path}/site:/srv:ro", "shop_cache:/cache",
                    "/etc/hosts:/etc/hosts:ro,z"],
        "network": "shop_front",
        "network_aliases": ["web"],
        "restart_policy": "unless-stopped",
        "cpus": 1.5,
        "memory": 512 * 1024**2,
        "working_dir": "/srv",
        "user": "nobody",
        "hostname": "web1",
        "read_only": True,
        "cap_add": ["NET_ADMIN"],
        "healthcheck": {"Test": ["CMD", "wget", "-q", "localhost"], "Interval": 90 * 10**9,
                        "Timeout": 500 * 10**6, "Retries": 3, "StartPeriod": 10 * 10**9},
    }
    assert web.networks == (("shared-back", ("web",)),)
    assert web.host_ports == ((8080, "tcp"), (8443, "tcp"), (5353, "udp"))
    assert web.healthcheck == web.create["healthcheck"]
    # The engine client takes the spec as it is.
    body = build_create_body(**web.create)
    assert body["HostConfig"]["PortBindings"]["80/tcp"] == [{"HostIp": "", "HostPort": "8080"}]
    assert set(state.networks) == {"shop_default", "shop_front", "shared-back"}
    back = state.networks["shared-back"]
    assert (back.key, back.internal, back.subnet, back.gateway) == (
        "back", True, "10.77.0.0/24", "10.77.0.1")
    assert state.volumes["shop_cache"].labels == {"keep": "yes"}
    db = state.services["db"]
    assert dict(db.create) == {"image": "postgres:16", "network": "shop_default",
                               "network_aliases": ["db"]}
    assert (db.replicas, db.regions, db.healthcheck) == (1, (), None)
    assert state.images == ["postgres:16", "localhost/busybox:latest"]


def test_labels_and_names_of_a_replica() -> None:
    state = desired_state(boltfile(FULL))
    web = state.services["web"]
    labels = web.labels("shop", 2)
    assert labels == {"team": "web", LABEL_PROJECT: "shop", LABEL_SERVICE: "web",
                      LABEL_REPLICA: "2", LABEL_CONFIG_HASH: web.config_hash}
    assert web.container_name("shop", 2) == "shop_web_2"
    assert state.services["db"].container_name("shop", 1) == "shop_db"


def test_relative_binds_start_from_the_boltfile_folder(tmp_path: Path) -> None:
    text = 'project = "p"\n[services.s]\nimage = "i"\nvolumes = ["../data:/d", "~/x:/x"]\n'
    inner = tmp_path / "deploy"
    inner.mkdir()
    binds = desired_state(boltfile(text, inner / "Boltfile.toml")).services["s"].create["volumes"]
    assert binds == [f"{tmp_path}/data:/d", f"{Path.home()}/x:/x"]
    elsewhere = desired_state(boltfile(text), base_dir="/opt/app").services["s"]
    assert elsewhere.create["volumes"][0] == "/opt/data:/d"


def test_the_config_hash_follows_the_config_only() -> None:
    base = 'project = "p"\n[services.web]\nimage = "i"\nenv = { A = "1", B = "2" }\n'
    first = desired_state(boltfile(base)).services["web"].config_hash
    # Key order, layout, comments, replicas and regions do not change it...
    same = desired_state(boltfile(
        'project = "p"  # shop\n\n[services.web]\nenv = {B = "2", A = "1"}\n'
        'image = "i"\nreplicas = 4\nregions = ["x"]\n')).services["web"].config_hash
    assert same == first
    # ... the image, a variable or a network does.
    changed = [desired_state(boltfile(text)).services["web"].config_hash for text in (
        base.replace('"i"', '"i:2"'), base.replace('"2"', '"3"'),
        base + 'networks = ["front"]\n[networks.front]\ndriver = "bridge"\n')]
    assert len({first, *changed}) == 4
    assert config_hash({"a": 1}) == config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(first) == 64 and int(first, 16) >= 0


def test_replicas_override_for_scale() -> None:
    state = desired_state(boltfile(FULL), replicas={"db": 0})
    assert state.services["db"].replicas == 0
    assert state.services["web"].replicas == 2
    with pytest.raises(SurgeError, match="no service `cache`"):
        desired_state(boltfile(FULL), replicas={"cache": 2})
    with pytest.raises(SurgeError, match="replicas must be a whole number >= 0"):
        desired_state(boltfile(FULL), replicas={"db": -1})


def test_an_invalid_boltfile_is_refused_with_its_diagnostics() -> None:
    text = ('project = "p"\n[services.web]\nimage = "i"\nports = ["80:80"]\n'
            '[services.api]\nimage = "i"\nports = ["80:81"]\n')
    with pytest.raises(SurgeError) as caught:
        desired_state(boltfile(text))
    error = caught.value
    assert isinstance(error, GhostPanelError)
    assert [d.key for d in error.diagnostics] == ["services.api.ports"]
    assert str(error).splitlines()[0] == ("<string>: 1 error; Bolt refuses this Boltfile "
                                          "and Surge applies nothing")
    assert "host port 80 is already published" in str(error).splitlines()[1]
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.diagnostics) == (error.message, error.diagnostics)


@pytest.mark.parametrize(("service", "message"), [
    ('build = "./app"', "uses `build`"),
    ('image = "i"\ncontainer_name = "x"', "uses `container_name`"),
    ('image = "i"\ndns = ["1.1.1.1"]\nsysctls = { a = "1" }', "uses `dns`, `sysctls`"),
    ('image = "i"\nvolumes = ["/data"]', "anonymous volume '/data'"),
    ('image = "i"\nreplicas = -1', "replicas must be a whole number >= 0"),
    ('image = "i"\nreplicas = "3"', "replicas must be a whole number >= 0"),
    ('image = "i"\nregions = "us"', "regions must be a list"),
    ('image = "i"\nregions = [""]', "regions must be a list"),
    ('image = "i"\nlabels = { "io.ghostpanel.surge.project" = "x" }', "belong to Surge"),
    ('image = "i"\nmemory_limit = "lots"', "cannot read the size 'lots'"),
    ('image = "i"\ncpu_limit = "0"', "not a positive number of CPUs"),
    ('image = "i"\nrestart = "sometimes"', "'sometimes' is not one of"),
    ('image = "i"\nhealthcheck = { test = ["true"], interval = "soon", disable = false }',
     "cannot read the duration 'soon'"),
    ('image = "i"\nnetworks = ["host", "front"]', "network mode of the engine"),
])
def test_what_surge_cannot_apply_exactly_is_refused(service: str, message: str) -> None:
    with pytest.raises(SurgeError, match=message.replace("(", r"\(")):
        desired_state(boltfile(f'project = "p"\n[services.s]\n{service}\n'))


def test_engine_networks_and_disabled_healthchecks() -> None:
    state = desired_state(boltfile(
        'project = "p"\n[services.s]\nimage = "i"\nnetworks = ["host"]\n'
        'healthcheck = { test = ["CMD", "true"], disable = true }\n'
        '[services.t]\nimage = "i"\nnetworks = ["default", "bridge"]\n'))
    s = state.services["s"]
    assert (s.create["network"], "network_aliases" in s.create) == ("host", False)
    assert s.create["healthcheck"] == {"Test": ["NONE"]} and s.healthcheck is None
    t = state.services["t"]
    assert t.create["network"] == "p_default" and t.networks == (("bridge", ()),)
    assert set(state.networks) == {"p_default"}


def test_external_resources_keep_their_names() -> None:
    state = desired_state(boltfile(
        'project = "p"\n[services.s]\nimage = "i"\nnetworks = ["edge"]\n'
        'volumes = ["store:/s"]\n[networks.edge]\ndriver = "bridge"\nexternal = true\n'
        'name = "corp-edge"\n[volumes.store]\nexternal = true\n'))
    assert state.networks["corp-edge"].external
    assert state.volumes["p_store"].external


def test_start_order() -> None:
    assert start_order({"a": ["b", "c"], "b": ["c"], "c": [], "d": []}) == ["c", "d", "b", "a"]
    with pytest.raises(SurgeError, match="cycle"):
        start_order({"a": ["b"], "b": ["a"]})
    with pytest.raises(SurgeError, match="`x`, which is not defined"):
        start_order({"a": ["x"]})


def test_the_validator_notes_that_bolt_ignores_replicas_and_regions() -> None:
    found = validate(Boltfile.loads(
        'project = "p"\n[services.web]\nimage = "i"\nreplicas = 3\n'
        'regions = ["us-east", "us-east"]\n'))
    assert [(d.severity, d.line, d.key) for d in found] == [
        ("warning", 4, "services.web.replicas"), ("warning", 5, "services.web.regions"),
        ("warning", 5, "services.web.regions")]
    assert found[0].message == ("Bolt ignores `replicas`; GhostPanel's Surge runs 3 "
                                "container(s) of this service")
    assert "region us-east, us-east" in found[1].message
    assert found[2].message == "region 'us-east' is listed twice"
    # A malformed value is a warning for Bolt (it drops the key) ...
    bad = validate(Boltfile.loads('project = "p"\n[services.web]\nimage = "i"\n'
                                  'replicas = "three"\n'))
    assert [(d.severity, d.message) for d in bad] == [
        ("warning", '`replicas` must be a whole number from 0 to 4294967295, not the '
                    'string "three"')]
    # ... and an error for Surge.
    with pytest.raises(SurgeError, match="replicas must be"):
        desired_state(Boltfile.loads('project = "p"\n[services.web]\nimage = "i"\n'
                                     'replicas = "three"\n'))

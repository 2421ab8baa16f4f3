"""Judging Engine API bodies (``gateway/_body_review``): every dangerous option is
admin-only however its keys are spelt, references to other objects are returned for the
owner check, client-set ownership labels are refused, and ``stamp_owner`` re-encodes
the judged data with the labels added."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ghostpanel_kernel.gateway._body_review import (
    JSON_BODY_TEMPLATES,
    BodyReview,
    judges_body,
    review_body,
    review_query,
    stamp_owner,
)
from ghostpanel_kernel.gateway._engine_policy import EngineCall, classify
from ghostpanel_kernel.gateway._go_json import read_go_json
from ghostpanel_kernel.gateway._identity import Identity
from ghostpanel_kernel.gateway._ownership import OWNER_LABEL, TEAMS_LABEL
from ghostpanel_kernel.gateway._refusal import Refusal

CREATE = classify("POST", b"/v1.41/containers/create")
VOLUME = classify("POST", b"/v1.41/volumes/create")
NETWORK = classify("POST", b"/v1.41/networks/create")
EXEC = classify("POST", b"/v1.41/containers/web/exec")
UPDATE = classify("POST", b"/v1.41/containers/web/update")
CONNECT = classify("POST", b"/v1.41/networks/n1/connect")
DISCONNECT = classify("POST", b"/v1.41/networks/n1/disconnect")
ADA = Identity("ada", groups=frozenset({"blue"}))


def _review(call: EngineCall, body: Any) -> BodyReview:
    # Through read_go_json, as the gateway does: what is judged is what Go reads.
    return review_body(call, read_go_json(json.dumps(body).encode()))


def _host(host: dict[str, Any]) -> BodyReview:
    return _review(CREATE, {"Image": "busybox", "HostConfig": host})


def _spellings(key: str) -> list[str]:
    return [key, key.lower(), key.upper(), key.swapcase(),
            key.replace("s", "\u017f").replace("k", "\u212a").replace("K", "\u212a")]


def test_a_plain_create_needs_no_admin_and_points_at_nothing() -> None:
    review = _review(CREATE, {"Image": "busybox", "Cmd": ["sleep", "1"],
                              "HostConfig": {"Memory": 1 << 20, "CapDrop": ["ALL"],
                                             "PortBindings": {"80/tcp": [{"HostPort": "8080"}]},
                                             "NetworkMode": "bridge", "Privileged": False,
                                             "SecurityOpt": ["no-new-privileges"],
                                             "Tmpfs": {"/run": ""},
                                             "Binds": ["/data"]}})
    assert review.admin_only == [] and review.references == []


@pytest.mark.parametrize("key", _spellings("Privileged"))
def test_privileged_in_any_spelling(key: str) -> None:
    assert _host({key: True}).admin_only == ["privileged mode (HostConfig.Privileged)"]
    assert _host({key: False}).admin_only == []
    assert _review(CREATE, {"hostconfig": {key: True}}).admin_only


@pytest.mark.parametrize("field", ["PidMode", "IpcMode", "UTSMode", "NetworkMode",
                                   "UsernsMode", "CgroupnsMode", "Cgroup"])
@pytest.mark.parametrize("value", ["host", "HOST", " host "])
def test_host_namespaces(field: str, value: str) -> None:
    for key in _spellings(field):
        [phrase] = _host({key: value}).admin_only
        assert field in phrase and "host" in phrase


@pytest.mark.parametrize("field", ["PidMode", "IpcMode", "NetworkMode", "UTSMode"])
def test_namespaces_by_host_path_are_admin_only(field: str) -> None:
    assert _host({field: "ns:/proc/1/ns/net"}).admin_only


@pytest.mark.parametrize("field", ["PidMode", "IpcMode", "NetworkMode", "Cgroup"])
def test_container_namespaces_are_references(field: str) -> None:
    review = _host({field: "container:other"})
    assert review.admin_only == []
    assert review.references == [("container", "other")]


@pytest.mark.parametrize("mode", ["bridge", "none", "default", "private", "slirp4netns",
                                  "pasta", ""])
def test_plain_network_modes(mode: str) -> None:
    assert _host({"NetworkMode": mode}) == BodyReview(data=_host({"NetworkMode": mode}).data)


@pytest.mark.parametrize("mode", ["slirp4netns:allow_host_loopback=true",
                                  "pasta:--map-gw"])
def test_user_mode_networking_options_are_admin_only(mode: str) -> None:
    assert _host({"NetworkMode": mode}).admin_only


def test_a_named_network_mode_is_a_network_reference() -> None:
    assert _host({"NetworkMode": "teamnet"}).references == [("network", "teamnet")]


@pytest.mark.parametrize("bind", ["/:/host", "/etc:/etc:ro", "./here:/x", "~/x:/x",
                                  "../up:/x", "a/b:/x", "/var/run/docker.sock:/s", "-v:/x"])
def test_binds_of_host_paths_are_admin_only(bind: str) -> None:
    for key in _spellings("Binds"):
        [phrase] = _host({key: [bind]}).admin_only
        assert "host path" in phrase


def test_binds_of_named_volumes_are_references() -> None:
    review = _host({"Binds": ["data:/data", "cache_1.x:/c:ro", "/anon"]})
    assert review.admin_only == []
    assert review.references == [("volume", "data"), ("volume", "cache_1.x")]


@pytest.mark.parametrize("mount", [
    {"Type": "bind", "Source": "/", "Target": "/h"},
    {"type": "BIND", "source": "/tmp", "target": "/h"},
    {"Source": "/x", "Target": "/y"},
    {"Type": "npipe", "Source": "\\\\.\\pipe\\docker_engine", "Target": "/p"},
    {"Type": "volume", "Source": "/etc", "Target": "/e"},
    {"Type": "volume", "Source": "a/b", "Target": "/e"},
    {"Type": "tmpfs", "Source": "/etc", "Target": "/e"},
    {"Type": "cluster", "Source": "x", "Target": "/e"},
    {"Type": "volume", "Source": "v", "Target": "/v",
     "VolumeOptions": {"DriverConfig": {"Name": "local",
                                        "Options": {"type": "none", "o": "bind",
                                                    "device": "/"}}}},
    {"Type": "volume", "Target": "/v",
     "VolumeOptions": {"DriverConfig": {"Name": "sshfs", "Options": {}}}},
])
def test_mounts_of_the_host_are_admin_only(mount: dict[str, Any]) -> None:
    assert _host({"Mounts": [mount]}).admin_only


def test_volume_and_tmpfs_mounts_are_fine() -> None:
    review = _host({"Mounts": [{"Type": "volume", "Source": "data", "Target": "/d"},
                               {"Type": "tmpfs", "Target": "/t"},
                               {"Type": "volume", "Target": "/anon"}]})
    assert review.admin_only == []
    assert review.references == [("volume", "data")]


@pytest.mark.parametrize(("field", "value"), [
    ("Devices", [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]),
    ("DeviceRequests", [{"Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]}]),
    ("DeviceCgroupRules", ["c 1:3 mr"]),
    ("CapAdd", ["SYS_ADMIN"]),
    ("Capabilities", ["CAP_SYS_ADMIN"]),
    ("SecurityOpt", ["seccomp=unconfined"]),
    ("SecurityOpt", ["no-new-privileges", "apparmor=unconfined"]),
    ("Sysctls", {"net.ipv4.ip_forward": "1"}),
    ("Runtime", "runc"),
    ("CgroupParent", "/system.slice"),
    ("VolumesFrom", ["other:ro"]),
    ("MaskedPaths", []),
    ("ReadonlyPaths", []),
    ("VolumeDriver", "sshfs"),
    ("Annotations", {"run.oci.keep_original_groups": "1"}),
])
def test_each_dangerous_option_is_admin_only(field: str, value: Any) -> None:
    for key in _spellings(field):
        review = _host({key: value})
        assert len(review.admin_only) == 1, (key, review)
        assert field in review.admin_only[0]


@pytest.mark.parametrize(("field", "value"), [
    ("Devices", []), ("DeviceRequests", None), ("CapAdd", []), ("SecurityOpt", []),
    ("Sysctls", {}), ("Runtime", ""), ("CgroupParent", ""), ("VolumesFrom", None),
    ("VolumeDriver", "local"),
])
def test_empty_values_of_dangerous_options_are_fine(field: str, value: Any) -> None:
    assert _host({field: value}).admin_only == []


@pytest.mark.parametrize(("log", "needs_admin"), [
    ({"Type": "json-file", "Config": {"max-size": "1m"}}, False),
    ({"Type": "k8s-file", "Config": {}}, False), ({"Type": "journald"}, False),
    ({"Type": "", "Config": None}, False), ({"Type": "none"}, False),
    ({"Type": "k8s-file", "Config": {"path": "/etc/cron.d/x"}}, True),
    ({"Type": "syslog", "Config": {"syslog-address": "tcp://127.0.0.1:25"}}, True),
    ({"type": "GELF"}, True), ({"Type": "json-file", "config": {"Path": "/x"}}, True),
])
def test_log_drivers_that_write_elsewhere_are_admin_only(log: dict[str, Any],
                                                        needs_admin: bool) -> None:
    assert bool(_host({"LogConfig": log}).admin_only) is needs_admin


def test_anonymous_volume_keys_must_be_container_paths() -> None:
    assert _review(CREATE, {"Image": "b", "Volumes": {"/data": {}}}).admin_only == []
    assert _review(CREATE, {"Image": "b", "Volumes": {"/:/host": {}}}).admin_only


def test_volumes_from_and_links_are_also_references() -> None:
    review = _host({"VolumesFrom": ["db:ro"], "Links": ["/cache:c", "web"]})
    assert ("container", "db") in review.references
    assert ("container", "cache") in review.references
    assert ("container", "web") in review.references


def test_every_finding_is_listed_not_only_the_first() -> None:
    review = _host({"Privileged": True, "PidMode": "host", "Binds": ["/:/h"],
                    "CapAdd": ["ALL"]})
    assert len(review.admin_only) == 4


def test_endpoints_config_names_networks() -> None:
    review = _review(CREATE, {"Image": "b", "NetworkingConfig": {"EndpointsConfig": {
        "teamnet": {}, "bridge": {}}}})
    assert review.references == [("network", "teamnet")]
    assert _review(CREATE, {"NetworkingConfig": {"EndpointsConfig": {"host": {}}}}).admin_only


@pytest.mark.parametrize("key", [OWNER_LABEL, TEAMS_LABEL, OWNER_LABEL.upper(),
                                 "io.ghost\u017fanel.owner".replace("\u017fanel", "panel"),
                                 "io.ghostpanel.team\u017f"])
@pytest.mark.parametrize("call", [CREATE, VOLUME, NETWORK], ids=["container", "volume",
                                                                 "network"])
def test_client_set_ownership_labels_are_refused(key: str, call: EngineCall) -> None:
    for labels_key in ("Labels", "labels", "LABEL\u017f"):
        with pytest.raises(Refusal) as caught:
            _review(call, {"Name": "x", labels_key: {key: "mallory"}})
        assert caught.value.status == 403
        assert "set by the gateway" in caught.value.message


def test_other_labels_are_fine() -> None:
    assert _review(CREATE, {"Labels": {"io.ghostpanel.other": "x", "app": "web"}}
                   ).admin_only == []


@pytest.mark.parametrize("opts", [
    {"type": "none", "o": "bind", "device": "/"},
    {"o": "bind", "device": "/srv"},
    {"o": "rw,rbind", "device": "/srv"},
    {"type": "none", "device": "/etc"},
    {"TYPE": "None", "Device": "/etc"},
    {"type": "ext4", "device": "/dev/sda1"},
])
def test_volumes_over_host_paths_are_admin_only(opts: dict[str, str]) -> None:
    for driver in (None, "", "local", "LOCAL"):
        body: dict[str, Any] = {"Name": "x", "DriverOpts": opts}
        if driver is not None:
            body["Driver"] = driver
        assert _review(VOLUME, body).admin_only


def test_volume_drivers_other_than_local_are_admin_only() -> None:
    assert _review(VOLUME, {"Name": "x", "Driver": "sshfs"}).admin_only


@pytest.mark.parametrize("opts", [{}, {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"},
                                  {"type": "nfs", "o": "addr=10.0.0.1", "device": ":/x"}])
def test_ordinary_volumes_are_fine(opts: dict[str, str]) -> None:
    assert _review(VOLUME, {"Name": "x", "DriverOpts": opts}).admin_only == []


@pytest.mark.parametrize("driver", ["host", "macvlan", "ipvlan", "MacVLAN"])
def test_networks_on_host_interfaces_are_admin_only(driver: str) -> None:
    assert _review(NETWORK, {"Name": "n", "Driver": driver}).admin_only
    assert _review(NETWORK, {"Name": "n", "driver": driver}).admin_only


@pytest.mark.parametrize("option", ["com.docker.network.bridge.name", "parent"])
def test_network_options_naming_host_interfaces_are_admin_only(option: str) -> None:
    assert _review(NETWORK, {"Name": "n", "Options": {option: "eth0"}}).admin_only


def test_a_bridge_network_is_fine() -> None:
    assert _review(NETWORK, {"Name": "n", "Driver": "bridge", "Internal": True}
                   ).admin_only == []


def test_privileged_exec_is_admin_only() -> None:
    assert _review(EXEC, {"Cmd": ["id"], "privileged": True}).admin_only == [
        "a privileged exec (Privileged)"]
    assert _review(EXEC, {"Cmd": ["id"], "User": "root"}).admin_only == []


def test_update_may_not_add_devices() -> None:
    assert _review(UPDATE, {"Devices": [{"PathOnHost": "/dev/kmsg"}]}).admin_only
    assert _review(UPDATE, {"Memory": 1 << 24}).admin_only == []


@pytest.mark.parametrize("call", [CONNECT, DISCONNECT])
def test_network_connect_names_a_container(call: EngineCall) -> None:
    assert _review(call, {"Container": "web"}).references == [("container", "web")]
    assert _review(call, {"container": "db"}).references == [("container", "db")]


@pytest.mark.parametrize("body", [
    [], "x", {"HostConfig": []}, {"HostConfig": {"Binds": "/:/h"}},
    {"HostConfig": {"Mounts": {"Type": "bind"}}}, {"Labels": ["a"]},
    {"HostConfig": {"Binds": [1]}},
])
def test_wrong_json_types_are_a_400(body: Any) -> None:
    with pytest.raises(Refusal) as caught:
        review_body(CREATE, body)
    assert caught.value.status == 400


def test_bodies_of_other_calls_are_not_judged() -> None:
    start = classify("POST", b"/v1.41/containers/web/start")
    assert not judges_body(start)
    assert review_body(start, {"HostConfig": {"Privileged": True}}).admin_only == []
    assert {"/containers/create", "/volumes/create", "/networks/create"} <= JSON_BODY_TEMPLATES


@pytest.mark.parametrize(("call", "body"), [
    (CREATE, {"Image": "b", "Labels": {"app": "web"}}),
    (CREATE, {"Image": "b"}),
    (CREATE, {"Image": "b", "Labels": None}),
    (VOLUME, {"Name": "v", "labels": {"x": "1"}}),
    (NETWORK, {"Name": "n"}),
])
def test_stamp_owner_adds_the_labels_to_the_judged_data(call: EngineCall,
                                                        body: dict[str, Any]) -> None:
    stamped = json.loads(stamp_owner(call, body, ADA))
    labels_keys = [key for key in stamped if key.lower() == "labels"]
    assert len(labels_keys) == 1
    labels = stamped[labels_keys[0]]
    assert labels[OWNER_LABEL] == "ada" and labels[TEAMS_LABEL] == "blue"
    original = body.get(labels_keys[0]) or {}
    assert {k: v for k, v in labels.items() if k not in (OWNER_LABEL, TEAMS_LABEL)
            } == original
    assert {k: v for k, v in stamped.items() if k != labels_keys[0]} == {
        k: v for k, v in body.items() if k != labels_keys[0]}


def test_stamp_owner_forwards_what_was_judged_not_the_raw_bytes() -> None:
    raw = b'{"Image":"b","HostConfig":{"Binds":["v:/d"]},"Cmd":["\\ud800"]}'
    data = read_go_json(raw)
    stamped = stamp_owner(CREATE, data, ADA)
    assert stamped != raw
    # The engine reads back exactly the judged value (plus the labels).
    again = read_go_json(stamped)
    assert again["Cmd"] == ["\ufffd"] and again["HostConfig"] == {"Binds": ["v:/d"]}


def test_stamp_owner_leaves_other_bodies_unlabelled() -> None:
    assert json.loads(stamp_owner(EXEC, {"Cmd": ["id"]}, ADA)) == {"Cmd": ["id"]}
    assert json.loads(stamp_owner(CONNECT, {"Container": "w"}, ADA)) == {"Container": "w"}


def test_stamp_owner_does_not_change_the_callers_data() -> None:
    body: dict[str, Any] = {"Image": "b", "Labels": {"a": "1"}}
    stamp_owner(CREATE, body, ADA)
    assert body == {"Image": "b", "Labels": {"a": "1"}}


@pytest.mark.parametrize(("query", "needs_admin"), [
    (b"t=app:1", False), (b"networkmode=default", False), (b"networkmode=bridge", False),
    (b"networkmode=none", False), (b"networkmode=host", True), (b"networkmode=HOST", True),
    (b"networkmode=container:other", True), (b"networkmode=bridge&networkmode=host", True),
    (b"cgroupparent=/system.slice", True), (b"cgroupparent=", False),
    (b"remote=http://127.0.0.1:8081/hub/api", True),
    (b"remote=git%40github.com:x/y.git", True), (b"NetworkMode=host", True),
])
def test_build_queries(query: bytes, needs_admin: bool) -> None:
    assert bool(review_query(classify("POST", b"/v1.41/build", query))) is needs_admin


@pytest.mark.parametrize(("query", "needs_admin"), [
    (b"fromImage=busybox&tag=latest", False), (b"fromSrc=-&repo=x", False),
    (b"fromSrc=http://127.0.0.1:8000/x.tar", True), (b"fromsrc=http://x/y.tar", True),
])
def test_image_create_queries(query: bytes, needs_admin: bool) -> None:
    call = classify("POST", b"/v1.41/images/create", query)
    assert bool(review_query(call)) is needs_admin


def test_other_queries_need_no_admin() -> None:
    call = classify("GET", b"/v1.41/containers/json", b"networkmode=host&remote=x")
    assert review_query(call) == []

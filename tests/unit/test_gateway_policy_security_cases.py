"""The refusals the gateway owes an operator of team ``blue`` on ``prod`` (the security
cases in ``docs/rbac.md``), at the policy level: each request below is refused with
its status by the pure policy functions alone, before any I/O. Framing and size (how
the body is read) belong to the gateway's body reader and are tested there.

``_judge`` strings the policy together the way the gateway does: classify the path,
check the permission, read the body as Go does, review it, then check the owner of
every object named (resolved here from a fake engine's table)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ghostpanel_kernel.gateway._body_review import judges_body, review_body, stamp_owner
from ghostpanel_kernel.gateway._engine_policy import EngineCall, Refusal, classify
from ghostpanel_kernel.gateway._go_json import read_go_json
from ghostpanel_kernel.gateway._identity import Identity
from ghostpanel_kernel.gateway._ownership import may_see, owner_labels
from ghostpanel_kernel.gateway._permissions import BUILTIN_ROLES

OPERATOR = Identity("olga", groups=frozenset({"blue"}))
DEPLOYER = Identity("dan", groups=frozenset({"blue"}))
OWN_ID = "a1" * 32
OTHER_ID = "b2" * 32
# The fake engine: full id -> (name, labels).
CONTAINERS = {
    OWN_ID: ("own", owner_labels(OPERATOR)),
    OTHER_ID: ("other", owner_labels(Identity("eve", groups=frozenset({"red"})))),
}


def _resolve(ident: str) -> tuple[str, dict[str, str]]:
    """What an engine does with a container reference: full id, unique prefix, name
    (with or without its leading "/")."""
    name = ident.removeprefix("/")
    for full, (known, labels) in CONTAINERS.items():
        if ident == full or (len(ident) >= 3 and full.startswith(ident)) or name == known:
            return full, labels
    raise LookupError(ident)


def _judge(identity: Identity, role: str, method: str, path: bytes,
           body: bytes | None = None) -> tuple[EngineCall, bytes | None, str | None]:
    """The gateway's decision, or a Refusal: (call, body to forward, full target id)."""
    call = classify(method, path)
    held = BUILTIN_ROLES[role]
    if call.permission not in held:
        raise Refusal(403, f"needs {call.permission}", permission=call.permission)
    forward: bytes | None = body
    if body is not None and judges_body(call):
        data = read_go_json(body)
        review = review_body(call, data)
        if review.admin_only and "admin" not in held:
            raise Refusal(403, "; ".join(review.admin_only), permission="admin")
        for kind, ref in review.references:
            if kind == "container" and not may_see(identity, _resolve(ref)[1]):
                raise Refusal(403, f"{ref} belongs to another team")
        forward = stamp_owner(call, data, identity)
    target = None
    if call.target_kind == "container" and call.target:
        target, labels = _resolve(call.target)
        if not may_see(identity, labels):
            raise Refusal(403, f"{call.target} belongs to another team")
    return call, forward, target


def _status(identity: Identity, role: str, method: str, path: bytes,
            body: Any = None) -> int:
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    with pytest.raises(Refusal) as caught:
        _judge(identity, role, method, path, raw)
    return caught.value.status


CREATE = b"/v1.41/containers/create"


# Case 1: duplicate keys under Go's case folding.
@pytest.mark.parametrize("body", [
    b'{"Image":"busybox","HostConfig":{"Privileged":false,"privileged":true}}',
    '{"Image":"busybox","HostConfig":{"Binds":[],"Bind\u017f":["/:/host"]}}'.encode(),
])
def test_case1_case_folded_duplicates(body: bytes) -> None:
    assert _status(OPERATOR, "operator", "POST", CREATE, body) == 403
    assert _status(DEPLOYER, "deployer", "POST", CREATE, body) == 403
    # Even an admin's body is refused: no one can know which key was judged.
    with pytest.raises(Refusal):
        _judge(Identity("root", admin=True), "admin", "POST", CREATE, body)


def test_case1_a_lone_folded_key_is_judged_as_the_engine_reads_it() -> None:
    body = '{"Image":"busybox","HostConfig":{"Bind\u017f":["/:/host"]}}'.encode()
    assert _status(DEPLOYER, "deployer", "POST", CREATE, body) == 403


def test_case1_the_forwarded_body_is_the_judged_one_re_encoded() -> None:
    body = b'{"Image":"busybox","HostConfig":{"Privileged":false}}'
    _, forward, _ = _judge(DEPLOYER, "deployer", "POST", CREATE, body)
    assert forward is not None and forward != body
    data = json.loads(forward)
    assert data["HostConfig"] == {"Privileged": False}
    assert data["Labels"] == owner_labels(DEPLOYER)


# Case 2: host paths, directly or through a volume.
def test_case2_bind_mount_of_the_root() -> None:
    body = {"Image": "busybox", "HostConfig": {"Mounts": [
        {"Type": "bind", "Source": "/", "Target": "/h"}]}}
    assert _status(OPERATOR, "operator", "POST", CREATE, body) == 403
    assert _status(DEPLOYER, "deployer", "POST", CREATE, body) == 403


def test_case2_two_step_volume_over_the_root() -> None:
    body = {"Name": "x", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}}
    assert _status(OPERATOR, "operator", "POST", b"/v1.41/volumes/create", body) == 403
    assert _status(DEPLOYER, "deployer", "POST", b"/v1.41/volumes/create", body) == 403


# Case 3: other containers' namespaces, the host's network, other containers' volumes.
@pytest.mark.parametrize("host", [
    {"PidMode": "container:other"}, {"PidMode": f"container:{OTHER_ID[:12]}"},
    {"NetworkMode": "host"}, {"VolumesFrom": ["other"]}, {"IpcMode": "container:other"},
    {"NetworkMode": "container:/other"},
])
def test_case3_other_namespaces_and_volumes(host: dict[str, Any]) -> None:
    body = {"Image": "busybox", "HostConfig": host}
    assert _status(OPERATOR, "operator", "POST", CREATE, body) == 403
    assert _status(DEPLOYER, "deployer", "POST", CREATE, body) == 403


def test_case3_an_own_containers_namespace_is_fine_for_a_deployer() -> None:
    body = json.dumps({"Image": "busybox", "HostConfig": {"PidMode": "container:own"}})
    call, _, _ = _judge(DEPLOYER, "deployer", "POST", CREATE, body.encode())
    assert call.template == "/containers/create"


# Case 4: non-canonical paths.
@pytest.mark.parametrize("path", [
    b"/v1.41.0/containers/own/stop", b"/v01.41/containers/own/stop",
    b"/v1.41/containers/../images/json", b"/v1.41/containers/x%2F..%2Fjson",
    b"//v1.41/containers/json",
])
def test_case4_non_canonical_paths(path: bytes) -> None:
    method = "POST" if path.endswith(b"/stop") else "GET"
    assert _status(OPERATOR, "operator", method, path) == 400


# Case 5 (the body half): however the body arrived, a privileged one is judged.
def test_case5_a_privileged_body_is_refused() -> None:
    body = {"Image": "busybox", "HostConfig": {"Privileged": True}}
    assert _status(DEPLOYER, "deployer", "POST", CREATE, body) == 403


# Case 6: other teams' containers by id prefix, by "/name", by an encoded name.
@pytest.mark.parametrize("path", [
    f"/v1.41/containers/{OTHER_ID[:12]}/kill".encode(),
    b"/v1.41/containers/%2Fother/kill",
    b"/v1.41/containers/%6F%74%68%65%72/kill",
    f"/v1.41/containers/{OTHER_ID}/kill".encode(),
])
def test_case6_other_teams_containers_however_named(path: bytes) -> None:
    assert _status(OPERATOR, "operator", "POST", path) == 403


@pytest.mark.parametrize("path", [
    f"/v1.41/containers/{OWN_ID[:12]}/kill".encode(), b"/v1.41/containers/%2Fown/kill",
    b"/v1.41/containers/%6Fwn/kill", b"/v1.41/containers/own/kill",
])
def test_case6_own_containers_forward_by_full_id_only(path: bytes) -> None:
    call, _, target = _judge(OPERATOR, "operator", "POST", path)
    assert target == OWN_ID
    assert call.forward_path(target) == f"/v1.41/containers/{OWN_ID}/kill"


def test_an_operator_may_not_create_at_all() -> None:
    assert _status(OPERATOR, "operator", "POST", CREATE, {"Image": "busybox"}) == 403

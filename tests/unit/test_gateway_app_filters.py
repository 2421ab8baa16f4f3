"""The Engine API answers the gateway cuts down to what a caller may see, and its settings."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from ghostpanel_kernel.gateway._engine_gateway import action_name
from ghostpanel_kernel.gateway._engine_policy import classify
from ghostpanel_kernel.gateway._identity import Identity
from ghostpanel_kernel.gateway._listing_filters import (
    EventFilter,
    filter_listing,
    filtering_send,
    streaming_send,
)
from ghostpanel_kernel.gateway._ownership import may_see
from ghostpanel_kernel.gateway._resolve import ExecOwners
from ghostpanel_kernel.gateway._serve_gateway import GatewaySettings, cookie_secret

BLUE = {"io.ghostpanel.owner": "olga", "io.ghostpanel.teams": "blue"}
RED = {"io.ghostpanel.owner": "rick", "io.ghostpanel.teams": "red"}
OLGA = Identity("olga", groups=frozenset({"blue"}))


def visible(labels: Mapping[str, str]) -> bool:
    return may_see(OLGA, labels)


def test_container_and_network_lists_keep_the_teams_objects() -> None:
    body = json.dumps([{"Id": "a", "Labels": BLUE}, {"Id": "b", "Labels": RED},
                       {"Id": "c", "Labels": None}, {"Id": "d"}]).encode()
    for listing in ("containers", "networks"):
        assert [item["Id"] for item in json.loads(filter_listing(listing, body, visible))] \
            == ["a"]


def test_volume_list_keeps_its_shape() -> None:
    body = json.dumps({"Volumes": [{"Name": "v1", "Labels": RED},
                                   {"Name": "v2", "Labels": BLUE}],
                       "Warnings": ["w"]}).encode()
    assert json.loads(filter_listing("volumes", body, visible)) == {
        "Volumes": [{"Name": "v2", "Labels": BLUE}], "Warnings": ["w"]}


def test_df_is_judged_on_the_labels_looked_up_and_keeps_images() -> None:
    body = json.dumps({"Containers": [{"Id": "a", "Labels": {}}, {"Id": "b", "Labels": {}}],
                       "Volumes": [{"Name": "v1"}, {"Name": "v2"}],
                       "Images": [{"Id": "i"}], "LayersSize": 1}).encode()
    known = {"a": BLUE, "b": RED, "v1": RED, "v2": BLUE}
    filtered = json.loads(filter_listing("df", body, visible, known))
    assert [item["Id"] for item in filtered["Containers"]] == ["a"]
    assert [item["Name"] for item in filtered["Volumes"]] == ["v2"]
    assert filtered["Images"] == [{"Id": "i"}] and filtered["LayersSize"] == 1


def test_an_answer_that_is_not_the_expected_json_shows_nothing() -> None:
    assert json.loads(filter_listing("containers", b"not json", visible)) == []
    assert json.loads(filter_listing("containers", b'{"Id": "a"}', visible)) == []
    assert json.loads(filter_listing("volumes", b"[1]", visible)) == {"Volumes": []}


async def test_filtering_send_rewrites_the_length_and_passes_errors() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    out = filtering_send(send, lambda body: body[:2])
    await out({"type": "http.response.start", "status": 200,
               "headers": [(b"content-length", b"10"), (b"content-type", b"x")]})
    await out({"type": "http.response.body", "body": b"01234", "more_body": True})
    assert sent == []  # held until whole
    await out({"type": "http.response.body", "body": b"56789", "more_body": False})
    assert sent[0]["headers"] == [(b"content-type", b"x"), (b"content-length", b"2")]
    assert sent[1]["body"] == b"01"
    sent.clear()
    out = filtering_send(send, lambda body: b"")
    await out({"type": "http.response.start", "status": 500, "headers": []})
    await out({"type": "http.response.body", "body": b"engine said no"})
    assert sent[1]["body"] == b"engine said no"


def _event(kind: str, ident: str, attributes: dict[str, str] | None = None) -> bytes:
    return json.dumps({"Type": kind, "Action": "x",
                       "Actor": {"ID": ident, "Attributes": attributes or {}}}).encode()


async def test_events_pass_by_the_actors_labels_across_chunk_boundaries() -> None:
    looked_up: list[tuple[str, str]] = []

    async def lookup(kind: str, ident: str) -> Mapping[str, str] | None:
        looked_up.append((kind, ident))
        return {"vol-blue": BLUE, "net-red": RED}.get(ident)

    events = EventFilter(visible, lookup, admin=False)
    stream = b"\n".join([
        _event("container", "c1", {**BLUE, "name": "web"}),
        _event("container", "c2", RED),
        _event("image", "sha256:1"),
        _event("volume", "vol-blue"),
        _event("network", "net-red"),
        _event("volume", "vol-blue"),
        _event("pod", "p1"),
        b"not json",
    ]) + b"\n"
    out = b""
    for start in range(0, len(stream), 7):  # lines cut anywhere
        out += await events.feed(stream[start:start + 7])
    kept = [json.loads(line)["Actor"]["ID"] for line in out.splitlines()]
    assert kept == ["c1", "sha256:1", "vol-blue", "vol-blue"]
    assert looked_up.count(("volume", "vol-blue")) == 1  # remembered


async def test_an_admin_sees_the_stream_untouched_and_the_stream_is_reframed() -> None:
    async def lookup(kind: str, ident: str) -> Mapping[str, str] | None:
        raise AssertionError("an admin's stream is not judged")

    events = EventFilter(visible, lookup, admin=True)
    assert await events.feed(b"anything") == b"anything"
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    out = streaming_send(send, EventFilter(visible, lookup, admin=False))
    await out({"type": "http.response.start", "status": 200,
               "headers": [(b"content-length", b"99")]})
    await out({"type": "http.response.body", "body": _event("container", "c2", RED) + b"\n",
               "more_body": True})
    await out({"type": "http.response.body", "body": b"", "more_body": False})
    assert sent[0]["headers"] == []
    assert [message.get("body") for message in sent[1:]] == [b""]


@pytest.mark.parametrize(("method", "path", "action"), [
    ("POST", b"/v1.41/containers/create", "container.create"),
    ("DELETE", b"/v1.41/containers/web", "container.remove"),
    ("POST", b"/v1.41/containers/web/kill", "container.kill"),
    ("POST", b"/v1.41/exec/abc/start", "exec.start"),
    ("POST", b"/volumes/create", "volume.create"),
    ("POST", b"/v1.41/networks/n1/connect", "network.connect"),
    ("POST", b"/v1.41/images/create", "image.create"),
    ("POST", b"/v1.41/commit", "container.commit"),
    ("POST", b"/v1.41/containers/prune", "container.prune"),
])
def test_audit_action_names(method: str, path: bytes, action: str) -> None:
    assert action_name(classify(method, path)) == action


def test_exec_owners_are_remembered_and_bounded() -> None:
    owners = ExecOwners(capacity=2)
    owners.remember("e1", "c1")
    owners.remember("e2", "c2")
    assert owners.get("e1") == "c1"  # e1 is now the most recent
    owners.remember("e3", "c3")
    assert (owners.get("e1"), owners.get("e2"), owners.get("e3")) == ("c1", None, "c3")


def test_settings_come_from_the_hub_variables() -> None:
    settings = GatewaySettings.from_environment(None, {
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:10555",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/gp/"})
    assert (settings.bind, settings.prefix, settings.loopback) == (
        "127.0.0.1:10555", "/services/gp/", True)
    assert GatewaySettings.from_environment("0.0.0.0:9", {}).loopback is False
    assert GatewaySettings.from_environment(None, {"JUPYTERHUB_SERVICE_URL":
                                                   "http://[::1]:81"}).bind == "[::1]:81"
    with pytest.raises(ValueError, match="HOST:PORT"):
        GatewaySettings.from_environment("nowhere", {})
    with pytest.raises(ValueError, match="JUPYTERHUB_SERVICE_URL"):
        GatewaySettings.from_environment(None, {"JUPYTERHUB_SERVICE_URL": "https://h:1"})


def test_the_cookie_secret_is_kept_private(tmp_path: Any) -> None:
    first = cookie_secret(tmp_path)
    assert cookie_secret(tmp_path) == first and len(first) == 32
    assert (tmp_path / "gateway" / "cookie_secret").stat().st_mode & 0o777 == 0o600


class _CountingClient:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def get_json(self, path: str) -> Any:
        self.asked.append(path)
        return self.answers[path]


class _Env:
    def __init__(self, client: _CountingClient) -> None:
        self.client = client


async def test_a_full_container_id_is_looked_up_once_a_name_every_time() -> None:
    from ghostpanel_kernel.gateway._resolve import KnownContainers, resolve

    full = "a" * 64
    answer = {"Id": full, "Name": "/web", "Config": {"Labels": BLUE}}
    client = _CountingClient({f"/containers/{full}/json": answer,
                              "/containers/web/json": answer,
                              "/exec/e1/json": {"ID": "e1", "ContainerID": full}})
    env: Any = _Env(client)
    known = KnownContainers()
    execs = ExecOwners()
    for _ in range(3):
        resolved = await resolve(env, "container", full, known=known)
        assert (resolved.full_id, resolved.name, dict(resolved.labels)) == (full, "web", BLUE)
    assert client.asked == [f"/containers/{full}/json"]
    for _ in range(2):
        assert (await resolve(env, "container", "/web", known=known)).full_id == full
    assert client.asked.count("/containers/web/json") == 2  # names may move: asked again
    for _ in range(2):
        exec_of = await resolve(env, "exec", "e1", execs=execs, known=known)
        assert (exec_of.container_id, dict(exec_of.labels)) == (full, BLUE)
    assert client.asked.count("/exec/e1/json") == 1


@pytest.mark.parametrize(("path", "refused"), [
    (b"/v1.41/build?networkmode=bridge", False),
    (b"/v1.41/build?networkmode=host", True),
    # Go reads the first of repeated values: every one is judged.
    (b"/v1.41/build?networkmode=host&networkmode=bridge", True),
    (b"/v1.41/build?networkmode=container:web", True),
    (b"/v1.41/build?cgroupparent=/x", True),
    (b"/v1.41/build?remote=http://10.0.0.1/ctx.tar", True),
    (b"/v1.41/images/create?fromImage=busybox", False),
    (b"/v1.41/images/create?fromSrc=-", False),
    (b"/v1.41/images/create?fromSrc=http://169.254.169.254/x", True),
])
def test_query_options_only_an_admin_may_use(path: bytes, refused: bool) -> None:
    from ghostpanel_kernel.gateway._engine_gateway import _check_query
    from ghostpanel_kernel.gateway._refusal import Refusal

    call = classify("POST", path)
    if refused:
        with pytest.raises(Refusal) as caught:
            _check_query(call, "prod")
        assert (caught.value.status, caught.value.permission) == (403, "admin")
    else:
        _check_query(call, "prod")

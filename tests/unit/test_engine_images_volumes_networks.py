"""Images (pull, import, load), volumes, networks, and engine-wide calls (system, events).

Canned answers are Podman 4.3.1's own where it has one (recorded from a running
``podman system service``), and Docker's where the two differ.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.engine import (
    EngineAPIError,
    EngineConnectionError,
    Environment,
    Event,
    Image,
    ImagePullError,
    NotFound,
    PullEvent,
    Volume,
)
from tests.unit.fake_engine import (
    BOLT,
    DOCKER,
    URL,
    Body,
    EngineProfile,
    FakeEngine,
    empty,
    env_for,
    json_answer,
    json_lines,
    lines_answer,
    streamed,
)

IMAGE_ID = "sha256:9b60bbf061e92814b872b0e824d8bb38f7b8da5ca4f5f813a0a5afb05f34f574"
NET_ID = "f408f30f2d7f39c94b80c4755fd581ea84991d04d5ae8e894ea9ae3c17d3a96e"
CONTAINER_ID = "1df8c92e931a39be3686e640992d0f2ff780642770beaff3ab0642575a8941a0"

def laptop(engine: FakeEngine) -> Environment:
    return env_for(engine, name="laptop")


# -- images ------------------------------------------------------------------------------


PODMAN_IMAGES = [
    {"Id": IMAGE_ID, "ParentId": "", "RepoTags": ["localhost/busybox:latest"],
     "RepoDigests": ["localhost/busybox@sha256:9dd1f3c70af69c3a480e3b534e28ffc7e90a468617f52"],
     "Created": 1795813303, "Size": 2131027, "SharedSize": 0, "VirtualSize": 2131027,
     "Labels": None, "Containers": 2, "Names": ["localhost/busybox:latest"]},
    {"Id": "sha256:e4505b8e2153ab466a05ca642587239b71a6fe116bda2a49a4d38aaec37f717e",
     "ParentId": "", "RepoTags": ["<none>:<none>"], "Created": 1795813335, "Size": 2131538,
     "Labels": {"org.opencontainers.image.title": "scratch"}, "Containers": 0},
]
IMAGE_INSPECT = {"Id": IMAGE_ID, "RepoTags": ["localhost/busybox:latest"], "Size": 2131027,
                 "Config": {"Cmd": ["sh"], "Labels": {"maintainer": "ops"}},
                 "Architecture": "amd64", "Os": "linux"}
IMAGE_PATH = f"/images/{IMAGE_ID}"


async def test_images_list_and_model() -> None:
    engine = FakeEngine({("GET", "/images/json"): json_answer(PODMAN_IMAGES)})
    env = laptop(engine)
    tagged, untagged = await env.images.list(all=True, filters={"dangling": False})
    assert engine.calls[0][:2] == ("GET", "/images/json")
    assert engine.calls[0][2]["all"] == "true"
    assert engine.filters() == {"dangling": ["false"]}
    assert (tagged.name, tagged.tags, tagged.size, tagged.labels) == (
        "localhost/busybox:latest", ["localhost/busybox:latest"], 2131027, {})
    assert tagged.short_id == "9b60bbf061e9"  # without "sha256:"
    assert untagged.tags == []
    assert untagged.name == "e4505b8e2153"
    assert untagged.labels == {"org.opencontainers.image.title": "scratch"}
    assert untagged.environment == "laptop"
    await env.aclose()


async def test_images_get_quotes_the_reference() -> None:
    engine = FakeEngine({("GET", "/images/localhost%2Fbusybox:latest/json"):
                         json_answer(IMAGE_INSPECT)})
    env = laptop(engine)
    image = await env.images.get("localhost/busybox:latest")
    assert image.id == IMAGE_ID
    assert image.labels == {"maintainer": "ops"}
    with pytest.raises(NotFound):
        await env.images.get("localhost/nope:1")
    await env.aclose()


async def test_image_history_tag_remove() -> None:
    history = [{"Id": IMAGE_ID[7:], "Created": 1795813303, "Tags": None, "Size": 2129920,
                "CreatedBy": "/bin/sh -c #(nop) ADD file:585eb1 in /",
                "Comment": "imported from tarball"}]
    tagged = {**IMAGE_INSPECT, "RepoTags": ["localhost/busybox:latest", "localhost/other:t1"]}
    engine = FakeEngine({
        ("GET", f"{IMAGE_PATH}/history"): json_answer(history),
        ("POST", f"{IMAGE_PATH}/tag"): empty(201),
        ("GET", f"{IMAGE_PATH}/json"): json_answer(tagged),
        ("DELETE", IMAGE_PATH): json_answer([{"Untagged": "localhost/other:t1"}]),
        ("DELETE", "/images/localhost%2Fother:t1"): json_answer([{"Deleted": IMAGE_ID}]),
    })
    env = laptop(engine)
    image = Image(env.client, PODMAN_IMAGES[0])
    assert await image.history() == history
    await image.tag("localhost/other", "t1")
    assert image.tags == ["localhost/busybox:latest", "localhost/other:t1"]
    await image.remove(force=True)
    await env.images.remove("localhost/other:t1", force=True)
    assert engine.calls == [
        ("GET", f"{IMAGE_PATH}/history", {}),
        ("POST", f"{IMAGE_PATH}/tag", {"repo": "localhost/other", "tag": "t1"}),
        ("GET", f"{IMAGE_PATH}/json", {}),
        ("DELETE", IMAGE_PATH, {"force": "true", "noprune": "false"}),
        ("DELETE", "/images/localhost%2Fother:t1", {"force": "true"}),
    ]
    await env.aclose()


async def test_image_prune_defaults_to_dangling_only() -> None:
    engine = FakeEngine({("POST", "/images/prune"): json_answer(
        {"ImagesDeleted": [{"Deleted": IMAGE_ID}], "SpaceReclaimed": 2131027})})
    env = laptop(engine)
    result = await env.images.prune()
    assert result["SpaceReclaimed"] == 2131027
    assert engine.filters() == {"dangling": ["true"]}
    await env.images.prune(dangling_only=False, filters={"until": "24h"})
    assert engine.filters() == {"until": ["24h"], "dangling": ["false"]}
    await env.images.prune(filters={"dangling": False, "label": ["a=b"]})  # explicit wins
    assert engine.filters() == {"dangling": ["false"], "label": ["a=b"]}
    await env.aclose()


async def test_image_export_streams_to_a_file(tmp_path: Path) -> None:
    # By name when the image has one: an export by id would load back untagged.
    tarball = streamed([b"tar-part-1|", b"tar-part-2"], "application/x-tar")
    untagged_id = PODMAN_IMAGES[1]["Id"]
    engine = FakeEngine({("GET", "/images/localhost%2Fbusybox:latest/get"): tarball,
                         ("GET", f"/images/{untagged_id}/get"): tarball})
    env = laptop(engine)
    path = await Image(env.client, PODMAN_IMAGES[0]).export(tmp_path / "busybox.tar")
    assert path.read_bytes() == b"tar-part-1|tar-part-2"
    await Image(env.client, PODMAN_IMAGES[1]).export(tmp_path / "untagged.tar")
    assert [c[1] for c in engine.calls] == ["/images/localhost%2Fbusybox:latest/get",
                                            f"/images/{untagged_id}/get"]
    await env.aclose()


# Docker 24 pulling busybox:1.36, and Podman 4.3's compat pull (which reports the image
# id last), line by line.
DOCKER_PULL = [
    {"status": "Pulling from library/busybox", "id": "1.36"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "a1b2c3d4e5f6"},
    {"status": "Downloading", "progressDetail": {"current": 65536, "total": 2152262},
     "progress": "[=>                     ]  65.54kB/2.152MB", "id": "a1b2c3d4e5f6"},
    {"status": "Download complete", "progressDetail": {}, "id": "a1b2c3d4e5f6"},
    {"status": "Pull complete", "progressDetail": {}, "id": "a1b2c3d4e5f6"},
    {"status": "Digest: sha256:5eef5ed34e1e1ff0a4ae850395cbf665c4de6b4b83a32a0bc7bcb998e24e7bbb"},
    {"status": "Status: Downloaded newer image for busybox:1.36"},
]
PODMAN_PULL = [
    {"status": "Trying to pull localhost:5000/app:1...", "progressDetail": {}},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "a1b2c3d4e5f6"},
    {"status": "Download complete", "progressDetail": {}, "id": "a1b2c3d4e5f6"},
    {"status": "Download complete", "progressDetail": {}, "id": IMAGE_ID[7:]},
]
PODMAN_PULL_ERROR = {
    "progressDetail": {},
    "errorDetail": {"message": "initializing source docker://example.invalid/nope:1: pinging "
                               "container registry example.invalid: no such host"},
    "error": "initializing source docker://example.invalid/nope:1: pinging container "
             "registry example.invalid: no such host",
}


async def test_pull_is_an_async_iterator_of_events() -> None:
    engine = FakeEngine({("POST", "/images/create"): lines_answer(DOCKER_PULL)})
    env = laptop(engine)
    events = [event async for event in env.images.pull("busybox:1.36")]
    assert engine.calls == [("POST", "/images/create",
                             {"fromImage": "busybox", "tag": "1.36"})]
    assert all(isinstance(e, PullEvent) for e in events)
    assert [e.status for e in events] == [line["status"] for line in DOCKER_PULL]
    downloading = events[2]
    assert (downloading.layer, downloading.current, downloading.total) == (
        "a1b2c3d4e5f6", 65536, 2152262)
    assert downloading.attrs == DOCKER_PULL[2]
    assert (events[0].layer, events[0].current, events[0].total) == ("1.36", None, None)
    assert events[-1].layer == ""
    await env.aclose()


@pytest.mark.parametrize(
    ("reference", "params"),
    [("busybox", {"fromImage": "busybox", "tag": "latest"}),
     ("localhost:5000/app:1", {"fromImage": "localhost:5000/app", "tag": "1"}),
     ("localhost:5000/app", {"fromImage": "localhost:5000/app", "tag": "latest"}),
     ("busybox@sha256:5eef5ed3", {"fromImage": "busybox@sha256:5eef5ed3"})],
)
async def test_pull_splits_the_reference(reference: str, params: dict[str, str]) -> None:
    engine = FakeEngine({("POST", "/images/create"): lines_answer([])})
    env = laptop(engine)
    assert [e async for e in env.images.pull(reference)] == []
    assert engine.calls[0][2] == params
    await env.aclose()


async def test_awaiting_a_pull_returns_the_image() -> None:
    engine = FakeEngine({
        ("POST", "/images/create"): lines_answer(PODMAN_PULL),
        ("GET", "/images/localhost:5000%2Fapp:1/json"): json_answer(
            {**IMAGE_INSPECT, "RepoTags": ["localhost:5000/app:1"]}),
    })
    env = laptop(engine)
    image = await env.images.pull("localhost:5000/app:1")
    assert isinstance(image, Image)
    assert image.name == "localhost:5000/app:1"
    assert [c[:2] for c in engine.calls] == [
        ("POST", "/images/create"), ("GET", "/images/localhost:5000%2Fapp:1/json")]
    await env.aclose()


async def test_an_error_line_in_the_pull_stream_raises() -> None:
    engine = FakeEngine({("POST", "/images/create"): lines_answer(
        [PODMAN_PULL[0], PODMAN_PULL_ERROR])})
    env = laptop(engine)
    seen = []
    with pytest.raises(ImagePullError) as caught:
        async for event in env.images.pull("example.invalid/nope:1"):
            seen.append(event.status)
    assert seen == ["Trying to pull localhost:5000/app:1..."]
    error = caught.value
    assert isinstance(error, EngineAPIError)
    assert (error.status_code, error.method, error.path) == (200, "POST",
                                                             "/v1.41/images/create")
    assert error.message == PODMAN_PULL_ERROR["error"]
    assert str(error) == f"pull failed: {PODMAN_PULL_ERROR['error']} (POST /v1.41/images/create)"
    with pytest.raises(ImagePullError):
        await env.images.pull("example.invalid/nope:1")
    assert [c[:2] for c in engine.calls][-1] == ("POST", "/images/create")  # no get
    await env.aclose()


async def test_pull_error_detail_only() -> None:
    engine = FakeEngine({("POST", "/images/create"): lines_answer(
        [{"errorDetail": {"message": "manifest unknown"}}])})
    env = laptop(engine)
    with pytest.raises(ImagePullError, match="manifest unknown"):
        await env.images.pull("busybox:nope")
    await env.aclose()


def test_pull_needs_a_reference() -> None:
    env = Environment(URL, transport=httpx.MockTransport(FakeEngine()))
    with pytest.raises(ValueError):
        env.images.pull("")


def rootfs_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("bin/hello")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return buffer.getvalue()


@pytest.mark.parametrize("as_path", [False, True])
async def test_import_rootfs(tmp_path: Path, as_path: bool) -> None:
    archive = rootfs_tar()
    source: bytes | Path = archive
    if as_path:
        source = tmp_path / "rootfs.tar"
        source.write_bytes(archive)
    engine = FakeEngine({
        ("POST", "/images/create"): json_answer({
            "status": "sha256:e4505b8e2153ab466a05ca642587239b71a6fe116bda2a49a4d38aaec37f717e",
            "progress": "", "progressDetail": {},
            "id": "sha256:e4505b8e2153ab466a05ca642587239b71a6fe116bda2a49a4d38aaec37f717e"}),
        ("GET", "/images/localhost%2Fimp:2/json"): json_answer(
            {**IMAGE_INSPECT, "RepoTags": ["localhost/imp:2"]}),
    })
    env = laptop(engine)
    image = await env.images.import_rootfs(source, "localhost/imp:2")
    assert image.name == "localhost/imp:2"
    assert engine.calls[0] == ("POST", "/images/create",
                               {"fromSrc": "-", "repo": "localhost/imp:2"})  # Podman drops tag
    request = engine.requests[0]
    assert request.content == archive
    assert request.headers["Content-Type"] == "application/x-tar"
    await env.aclose()


async def test_import_rootfs_error_line() -> None:
    engine = FakeEngine({("POST", "/images/create"): json_answer(
        {"error": "archive/tar: invalid tar header", "errorDetail": {}})})
    env = laptop(engine)
    with pytest.raises(ImagePullError, match="invalid tar header"):
        await env.images.import_rootfs(b"not a tar", "localhost/imp:2")
    await env.aclose()


@pytest.mark.parametrize(
    ("answer", "names"),
    [(b'{"stream":"Loaded image: localhost/busybox:latest"}', ["localhost/busybox:latest"]),
     (b'{"stream":"Loaded image: busybox:latest\\n"}\n'
      b'{"stream":"Loaded image ID: sha256:9b60bbf061e9\\n"}\n',
      ["busybox:latest", "sha256:9b60bbf061e9"]),
     (b'{"stream":"Loaded image(s): localhost/a:1,localhost/b:2\\n"}',
      ["localhost/a:1", "localhost/b:2"]),
     (b'{"status":"Loading layer","progressDetail":{"current":32768,"total":2137088}}\n'
      b'{"stream":"Loaded image: busybox:1.36\\n"}\n', ["busybox:1.36"])],
    ids=["podman", "docker", "podman-several", "docker-progress"],
)
async def test_load_parses_loaded_image_lines(answer: bytes, names: list[str]) -> None:
    engine = FakeEngine({("POST", "/images/load"): lambda r: httpx.Response(
        200, content=answer)})
    env = laptop(engine)
    assert await env.images.load(b"docker-save-tar") == names
    assert engine.requests[0].content == b"docker-save-tar"
    assert engine.requests[0].headers["Content-Type"] == "application/x-tar"
    await env.aclose()


# -- volumes -----------------------------------------------------------------------------


PODMAN_VOLUME = {"CreatedAt": "2026-11-27T21:02:12Z", "Driver": "local", "Labels": {"a": "b"},
                 "Mountpoint": "/var/lib/containers/storage/volumes/data/_data",
                 "Name": "data", "Options": {}, "Scope": "local"}


async def test_volumes_list_and_model() -> None:
    engine = FakeEngine({("GET", "/volumes"): json_answer(
        {"Volumes": [PODMAN_VOLUME], "Warnings": []})})
    env = laptop(engine)
    [volume] = await env.volumes.list(filters={"label": "a=b", "dangling": True})
    assert engine.filters() == {"label": ["a=b"], "dangling": ["true"]}
    assert (volume.id, volume.name, volume.short_id, volume.driver, volume.mountpoint,
            volume.labels) == ("data", "data", "data", "local",
                               "/var/lib/containers/storage/volumes/data/_data", {"a": "b"})
    assert repr(volume) == "<Volume: data @laptop>"
    await env.aclose()


async def test_volumes_list_when_docker_says_null() -> None:
    engine = FakeEngine({("GET", "/volumes"): json_answer({"Volumes": None, "Warnings": None})})
    env = laptop(engine)
    assert await env.volumes.list() == []
    await env.aclose()


async def test_volume_create_get_reload_remove_prune() -> None:
    engine = FakeEngine({
        ("POST", "/volumes/create"): json_answer(PODMAN_VOLUME, status=201),
        ("GET", "/volumes/data"): json_answer(PODMAN_VOLUME),
        ("DELETE", "/volumes/data"): empty(),
        ("POST", "/volumes/prune"): json_answer({"VolumesDeleted": ["data"],
                                                 "SpaceReclaimed": 0}),
    })
    env = laptop(engine)
    volume = await env.volumes.create("data", labels={"a": "b"}, driver_opts={"o": "size=1g"})
    assert isinstance(volume, Volume) and volume.name == "data"
    assert json.loads(engine.requests[0].content) == {
        "Name": "data", "Driver": "local", "DriverOpts": {"o": "size=1g"}, "Labels": {"a": "b"}}
    assert (await env.volumes.get("data")).mountpoint.endswith("/data/_data")
    await volume.reload()
    await volume.remove(force=True)
    assert await env.volumes.prune(filters={"label": "a=b"}) == {
        "VolumesDeleted": ["data"], "SpaceReclaimed": 0}
    assert engine.calls[1:] == [
        ("GET", "/volumes/data", {}), ("GET", "/volumes/data", {}),
        ("DELETE", "/volumes/data", {"force": "true"}),
        ("POST", "/volumes/prune", {"filters": '{"label": ["a=b"]}'})]
    await env.aclose()


async def test_volume_create_without_a_name_lets_the_engine_pick() -> None:
    engine = FakeEngine({("POST", "/volumes/create"): json_answer(
        {**PODMAN_VOLUME, "Name": "8c1b2a"}, status=201)})
    env = laptop(engine)
    assert (await env.volumes.create()).name == "8c1b2a"
    assert json.loads(engine.requests[0].content) == {"Driver": "local", "DriverOpts": {},
                                                       "Labels": {}}
    await env.aclose()


# -- networks ----------------------------------------------------------------------------


PODMAN_NETWORK = {
    "Name": "appnet", "Id": NET_ID, "Created": "2026-11-27T21:02:12.020737096Z",
    "Scope": "local", "Driver": "bridge", "EnableIPv6": False,
    "IPAM": {"Driver": "default", "Options": {"driver": "host-local"},
             "Config": [{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"}]},
    "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
    "ConfigOnly": False, "Options": {}, "Labels": {"surge.project": "shop"},
    "Containers": {CONTAINER_ID: {"Name": "web", "IPv4Address": "10.99.0.2/24"}},
}
NET_PATH = f"/networks/{NET_ID}"


async def test_networks_list_and_model() -> None:
    bare = {"Name": "podman", "Id": "2f259bab93aa" + "0" * 52, "Driver": "bridge",
            "IPAM": {"Config": [{"Gateway": "10.88.0.1"}]}}
    engine = FakeEngine({("GET", "/networks"): json_answer([PODMAN_NETWORK, bare])})
    env = laptop(engine)
    appnet, podman = await env.networks.list(filters={"label": "surge.project=shop"})
    assert engine.filters() == {"label": ["surge.project=shop"]}
    assert (appnet.name, appnet.driver, appnet.subnets, appnet.labels) == (
        "appnet", "bridge", ["10.99.0.0/24"], {"surge.project": "shop"})
    assert list(appnet.containers) == [CONTAINER_ID]
    assert (podman.subnets, podman.labels, podman.containers) == ([], {}, {})
    await env.aclose()


async def test_network_create_with_subnet_builds_ipam() -> None:
    engine = FakeEngine({
        ("POST", "/networks/create"): json_answer({"Id": NET_ID, "Warning": ""}, status=201),
        ("GET", NET_PATH): json_answer(PODMAN_NETWORK),
    })
    env = laptop(engine)
    network = await env.networks.create("appnet", subnet="10.99.0.0/24", gateway="10.99.0.1",
                                        labels={"surge.project": "shop"}, internal=True,
                                        options={"mtu": "1400"})
    assert network.id == NET_ID
    assert json.loads(engine.requests[0].content) == {
        "Name": "appnet", "Driver": "bridge", "Internal": True,
        "Labels": {"surge.project": "shop"}, "Options": {"mtu": "1400"},
        "CheckDuplicate": True,
        "IPAM": {"Driver": "default",
                 "Config": [{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"}]}}
    assert engine.calls[1] == ("GET", NET_PATH, {})
    await env.aclose()


async def test_network_create_without_subnet_has_no_ipam() -> None:
    engine = FakeEngine({
        ("POST", "/networks/create"): json_answer({"Id": NET_ID, "Warning": ""}, status=201),
        ("GET", NET_PATH): json_answer(PODMAN_NETWORK),
    })
    env = laptop(engine)
    await env.networks.create("appnet", subnet=None)
    assert "IPAM" not in json.loads(engine.requests[0].content)
    await env.networks.create("appnet", subnet="10.99.0.0/24")
    assert json.loads(engine.requests[2].content)["IPAM"]["Config"] == [
        {"Subnet": "10.99.0.0/24"}]
    await env.aclose()


# Podman 4.3.1 answers connect/disconnect with 200 "OK" as text/plain; Docker with an
# empty 200.
CONNECT_ANSWERS = {
    "podman": lambda r: httpx.Response(200, text="OK",
                                       headers={"Content-Type": "text/plain; charset=us-ascii"}),
    "docker": lambda r: httpx.Response(200),
}


@pytest.mark.parametrize("engine_kind", sorted(CONNECT_ANSWERS))
async def test_network_connect_and_disconnect(engine_kind: str) -> None:
    answer = CONNECT_ANSWERS[engine_kind]
    engine = FakeEngine({("GET", "/networks/appnet"): json_answer(PODMAN_NETWORK),
                         ("POST", f"{NET_PATH}/connect"): answer,
                         ("POST", f"{NET_PATH}/disconnect"): answer})
    env = laptop(engine)
    network = await env.networks.get("appnet")
    assert await network.connect("web", aliases=["w", "www"]) is None
    assert await network.disconnect("web", force=True) is None
    await network.connect(CONTAINER_ID)
    bodies = [json.loads(r.content) for r in engine.requests[1:]]
    assert bodies == [{"Container": "web", "EndpointConfig": {"Aliases": ["w", "www"]}},
                      {"Container": "web", "Force": True},
                      {"Container": CONTAINER_ID, "EndpointConfig": {}}]
    assert [c[1] for c in engine.calls[1:]] == [f"{NET_PATH}/connect",
                                                f"{NET_PATH}/disconnect",
                                                f"{NET_PATH}/connect"]
    await env.aclose()


async def test_network_remove_and_prune() -> None:
    engine = FakeEngine({("DELETE", NET_PATH): empty(),
                         ("POST", "/networks/prune"): json_answer(
                             {"NetworksDeleted": ["appnet"]})})
    env = laptop(engine)
    from ghostpanel_kernel.engine import Network

    await Network(env.client, PODMAN_NETWORK).remove()
    assert await env.networks.prune(filters={"until": "1h"}) == {"NetworksDeleted": ["appnet"]}
    assert engine.calls == [("DELETE", NET_PATH, {}),
                            ("POST", "/networks/prune", {"filters": '{"until": ["1h"]}'})]
    await env.aclose()


async def test_collections_remove_by_name_in_one_request() -> None:
    engine = FakeEngine({("DELETE", "/volumes/data"): empty(),
                         ("DELETE", NET_PATH): empty()})
    env = laptop(engine)
    await env.volumes.remove("data", force=True)
    await env.networks.remove(NET_PATH.rsplit("/", 1)[1])
    assert engine.calls == [("DELETE", "/volumes/data", {"force": "true"}),
                            ("DELETE", NET_PATH, {})]
    await env.aclose()


# -- system ------------------------------------------------------------------------------


async def test_ping_is_unversioned() -> None:
    engine = FakeEngine()  # Podman 4.3.1's own /_ping answer
    env = laptop(engine)
    assert await env.ping() is True
    assert await env.system.ping() is True
    assert engine.paths == ["/_ping"] * 2  # no negotiation, no /version, to ping
    engine.routes[("GET", "/_ping")] = lambda r: httpx.Response(200, text="starting")
    assert await env.ping() is False
    await env.aclose()


async def test_ping_of_an_absent_engine_raises() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("engine socket /run/podman/podman.sock does not exist")

    env = Environment(URL, transport=httpx.MockTransport(handler))
    with pytest.raises(EngineConnectionError, match="does not exist"):
        await env.ping()
    await env.aclose()


async def test_info_df_version() -> None:
    info = {"ID": "238d31d4-4af2-4907-b204-09bfe2a2f841", "Containers": 2,
            "ContainersRunning": 1, "Images": 2, "Driver": "overlay"}
    df = {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}
    engine = FakeEngine({("GET", "/info"): json_answer(info),
                         ("GET", "/system/df"): json_answer(df)})
    env = laptop(engine)
    assert await env.system.info() == info
    assert await env.system.df() == df
    version = await env.system.version()
    assert (version.kind, version.version, version.api_version) == ("podman", "4.3.1", "1.41")
    assert [c[1] for c in engine.calls] == ["/info", "/system/df"]
    await env.aclose()


# -- events ------------------------------------------------------------------------------


# Podman 4.3.1's /events lines (the time fields are the recorded ones).
PODMAN_EVENTS = [
    {"status": "create", "id": CONTAINER_ID, "from": "localhost/busybox:latest",
     "Type": "container", "Action": "create",
     "Actor": {"ID": CONTAINER_ID, "Attributes": {"image": "localhost/busybox:latest",
                                                   "name": "web", "app": "web"}},
     "scope": "local", "time": 1795813307, "timeNano": 1795813307358999564},
    {"status": "died", "id": CONTAINER_ID, "from": "localhost/busybox:latest",
     "Type": "container", "Action": "died",
     "Actor": {"ID": CONTAINER_ID, "Attributes": {"containerExitCode": "137",
                                                   "image": "localhost/busybox:latest",
                                                   "name": "web"}},
     "scope": "local", "time": 1795813360, "timeNano": 1795813360000000001},
    {"status": "refresh", "Type": "system", "Action": "refresh",
     "Actor": {"ID": "", "Attributes": {"containerExitCode": "0", "image": "", "name": "",
                                        "podId": ""}},
     "scope": "local", "time": 1795813303, "timeNano": 1795813303255885769},
]


async def test_events_are_parsed() -> None:
    engine = FakeEngine({("GET", "/events"): lines_answer(PODMAN_EVENTS, cuts=29)})
    env = laptop(engine)
    events = [event async for event in env.events()]
    assert all(isinstance(e, Event) for e in events)
    create, died, refresh = events
    assert (create.type, create.action, create.actor_id, create.name) == (
        "container", "create", CONTAINER_ID, "web")
    assert create.attributes == {"image": "localhost/busybox:latest", "name": "web",
                                 "app": "web"}
    assert create.time == pytest.approx(1795813307.358999564, abs=1e-6)
    assert died.attributes["containerExitCode"] == "137"
    assert died.time == pytest.approx(1795813360.0, abs=1e-6)
    assert (refresh.type, refresh.action, refresh.name) == ("system", "refresh", "")
    assert create.environment == "laptop"
    assert create.attrs == PODMAN_EVENTS[0]
    assert engine.calls == [("GET", "/events", {})]
    await env.aclose()


def test_old_style_event_without_type_and_time_nano() -> None:
    event = Event.from_attrs({"status": "start", "id": "abc", "from": "busybox",
                              "time": 1714557600})
    assert (event.type, event.action, event.actor_id, event.time, event.name) == (
        "", "start", "abc", 1714557600.0, "abc")


@pytest.mark.parametrize("profile", [DOCKER, BOLT], ids=["docker", "bolt"])
@pytest.mark.parametrize("offset", [-3600, 3600], ids=["past", "future"])
async def test_events_until_is_sent_as_is_to_docker(profile: EngineProfile,
                                                    offset: int) -> None:
    until = int(time.time()) + offset
    sent = [container_event("start", until - 10), container_event("die", until - 5)]
    engine = FakeEngine({("GET", "/events"): lines_answer(sent)}, profile=profile)
    env = laptop(engine)
    since = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    stream = env.system.events(filters={"type": "container", "event": ["start", "die"]},
                               since=since, until=until)
    async with asyncio.timeout(5):
        assert [e.attrs async for e in stream] == sent  # the engine keeps the window
    params = engine.calls[0][2]
    assert json.loads(params.pop("filters")) == {"type": ["container"],
                                                 "event": ["start", "die"]}
    assert params == {"since": "1714557600.000000000", "until": f"{until}.000000000"}
    await env.aclose()


def container_event(action: str, when: float) -> dict[str, Any]:
    """An /events line as Podman 4.3.1 writes it, at ``when`` (seconds)."""
    return {"status": action, "id": CONTAINER_ID, "from": "localhost/busybox:latest",
            "Type": "container", "Action": action,
            "Actor": {"ID": CONTAINER_ID, "Attributes": {"name": "web"}},
            "scope": "local", "time": int(when), "timeNano": int(when * 1e9)}


def _until_as(kind: str, seconds: int) -> int | datetime | str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return {"seconds": seconds, "datetime": moment,
            "rfc3339": moment.isoformat().replace("+00:00", "Z")}[kind]


@pytest.mark.parametrize("until_kind", ["seconds", "datetime", "rfc3339"])
async def test_podman_past_window_reads_without_until_and_drops_later_events(
        until_kind: str) -> None:
    # Podman 4.3 answers a past `until` with no events at all: ask for everything since
    # `since`, not streaming, and end the window here.
    until = int(time.time()) - 60
    inside = [container_event("create", until - 30), container_event("start", until - 0.5),
              {**container_event("die", until), "timeNano": None}]  # exactly at `until`
    later = [container_event("stop", until + 0.5), container_event("remove", until + 30)]
    bodies: list[Body] = []
    engine = FakeEngine({("GET", "/events"): streamed(
        [json_lines(*inside, *later)], "application/json", bodies)})
    env = laptop(engine)
    stream = env.system.events(
        since=until - 600, until=_until_as(until_kind, until))
    async with asyncio.timeout(5):
        events = [event async for event in stream]
    assert [e.attrs for e in events] == inside
    assert all(e.time <= until for e in events)
    assert engine.calls == [("GET", "/events", {"since": f"{until - 600}.000000000",
                                                "stream": "false"})]
    assert bodies[0].closed
    await env.aclose()


async def test_podman_future_window_streams_live_and_ends_at_until() -> None:
    now = time.time()
    first = container_event("start", now)
    bodies: list[Body] = []
    engine = FakeEngine({("GET", "/events"): streamed(
        [json_lines(first)], "application/json", bodies, then_wait=True)})
    env = laptop(engine)
    await env.client.api_version()  # negotiated before the clock starts
    started = time.monotonic()
    async with asyncio.timeout(5):
        events = [event async for event in env.system.events(until=now + 0.2)]
    elapsed = time.monotonic() - started
    assert [e.attrs for e in events] == [first]
    assert 0.1 <= elapsed < 2.0  # ended by the deadline, not by the engine
    assert engine.calls == [("GET", "/events", {})]  # live: neither until nor stream
    assert bodies[0].closed
    await env.aclose()


async def test_podman_future_window_ends_at_the_first_later_event() -> None:
    now = time.time()
    until = now + 30
    sent = [container_event("start", now), container_event("die", until + 1),
            container_event("remove", now)]
    bodies: list[Body] = []
    engine = FakeEngine({("GET", "/events"): streamed(
        [json_lines(*sent)], "application/json", bodies, then_wait=True)})
    env = laptop(engine)
    async with asyncio.timeout(5):  # far less than the 30 s window
        events = [event async for event in env.system.events(until=until)]
    assert [e.attrs for e in events] == sent[:1]
    assert engine.calls == [("GET", "/events", {})]
    assert bodies[0].closed
    await env.aclose()


async def test_events_stream_is_live_until_broken_off() -> None:
    engine = FakeEngine({("GET", "/events"): lines_answer(PODMAN_EVENTS * 50)})
    env = laptop(engine)
    actions = []
    async for event in env.events(since="10m"):
        actions.append(event.action)
        if len(actions) == 4:
            break
    assert actions == ["create", "died", "refresh", "create"]
    # A duration means that long ago, sent as the time it names (Docker's daemon reads
    # only seconds.nanoseconds: its CLI converts durations as GhostPanel now does).
    assert float(engine.calls[0][2]["since"]) == pytest.approx(time.time() - 600, abs=30)
    await env.aclose()

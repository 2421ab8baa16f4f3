"""Images, volumes, networks, system calls and events on a real Podman engine."""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import tarfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from ghostpanel_kernel.engine import (
    EngineAPIError,
    Environment,
    Event,
    ImagePullError,
    NotFound,
)

pytestmark = pytest.mark.integration

BUSYBOX = "localhost/busybox:latest"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _rootfs_tar(marker: str) -> bytes:
    """A root filesystem with only ``/bin/busybox`` (the host's static one) and a marker.

    The marker file makes each image's layer, hence its id, unique.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("bin", "etc"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        binary = Path("/bin/busybox")
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = binary.stat().st_size, 0o755
        with binary.open("rb") as source:
            tar.addfile(info, source)
        data = marker.encode()
        info = tarfile.TarInfo("etc/gp-marker")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# -- images ----------------------------------------------------------------------------


async def test_images_list_get_and_history(env: Environment) -> None:
    listed = await env.images.list()
    busybox = next(image for image in listed if BUSYBOX in image.tags)
    assert busybox.environment == "a"
    assert busybox.size > 1_000_000  # the static busybox binary alone is ~1-2 MB
    by_name = await env.images.get(BUSYBOX)
    by_id = await env.images.get(busybox.id)
    by_short = await env.images.get(busybox.short_id)
    assert by_name == by_id == by_short == busybox
    assert by_name.name == BUSYBOX
    assert by_name.attrs["Config"]["Cmd"] == ["sh"]
    history = await by_name.history()
    assert history and all("Created" in layer for layer in history)
    assert history[0]["Id"] in busybox.id
    filtered = await env.images.list(filters={"reference": BUSYBOX})
    assert [image.id for image in filtered] == [busybox.id]


async def test_tag_then_remove_the_tag(env: Environment,
                                       track_image: Callable[[str], None]) -> None:
    repository = f"localhost/{_unique('gp-tag')}"
    reference = f"{repository}:v1"
    track_image(reference)
    busybox = await env.images.get(BUSYBOX)
    await busybox.tag(repository, "v1")
    assert reference in busybox.tags and BUSYBOX in busybox.tags  # attrs refreshed
    assert (await env.images.get(reference)).id == busybox.id
    await env.images.remove(reference)
    with pytest.raises(NotFound):
        await env.images.get(reference)
    # Only the tag went: the image and its own name are still there.
    still = await env.images.get(BUSYBOX)
    assert still.id == busybox.id and reference not in still.tags


async def test_import_rootfs_makes_a_runnable_image(env: Environment, make_container,
                                                    track_image: Callable[[str], None],
                                                    tmp_path: Path) -> None:
    reference = f"localhost/{_unique('gp-import')}:latest"
    track_image(reference)
    image = await env.images.import_rootfs(_rootfs_tar(reference), reference)
    assert image.tags == [reference]
    assert (await env.images.get(reference)).id == image.id
    container = await make_container(image=reference,
                                     command=["/bin/busybox", "echo", "from the import"])
    await container.start()
    assert await container.wait(timeout=20) == 0
    assert [line.text for line in await container.logs()] == ["from the import"]
    marker = await container.read_file("/etc/gp-marker")
    assert marker == reference.encode()

    # A tarball on disk works as well as bytes.
    second = f"localhost/{_unique('gp-import-file')}:v2"
    track_image(second)
    track_image(second.replace(":v2", ":latest"))  # where Podman puts it, tag ignored
    archive = tmp_path / "rootfs.tar"
    archive.write_bytes(_rootfs_tar(second))
    from_file = await env.images.import_rootfs(archive, second)
    assert from_file.tags == [second] and from_file.id != image.id


async def test_export_then_load_into_the_other_engine(
        env: Environment, env_b: Environment, created_b,
        track_image: Callable[[str], None], tmp_path: Path) -> None:
    reference = f"localhost/{_unique('gp-export')}:latest"
    track_image(reference)
    image = await env.images.import_rootfs(_rootfs_tar(reference), reference)
    created_b.images.append(reference)
    created_b.images.append(image.id)
    with pytest.raises(NotFound):  # two engines, two image stores
        await env_b.images.get(image.id)

    path = await image.export(tmp_path / "exported.tar")
    assert path == tmp_path / "exported.tar"
    with tarfile.open(path) as tar:
        assert "manifest.json" in tar.getnames()

    loaded = await env_b.images.load(path)
    assert loaded, "the engine reported nothing loaded"
    assert (await env_b.images.get(image.id)).id == image.id
    # The image keeps its name across the trip, as `docker save NAME | docker load` does.
    assert reference in loaded, loaded
    assert (await env_b.images.get(reference)).id == image.id


async def test_prune_removes_dangling_images(env: Environment,
                                             track_image: Callable[[str], None]) -> None:
    reference = f"localhost/{_unique('gp-prune')}:latest"
    track_image(reference)
    first = await env.images.import_rootfs(_rootfs_tar("first"), reference)
    track_image(first.id)  # should prune spare it
    second = await env.images.import_rootfs(_rootfs_tar("second"), reference)
    assert first.id != second.id
    dangling = await env.images.get(first.id)
    assert dangling.tags == []  # the name moved to the second import
    result = await env.images.prune()
    deleted = {entry.get("Deleted") for entry in result["ImagesDeleted"] or []}
    assert first.id.removeprefix("sha256:") in {d.removeprefix("sha256:") for d in deleted
                                                if d}
    with pytest.raises(NotFound):
        await env.images.get(first.id)
    assert (await env.images.get(reference)).id == second.id  # tagged: kept
    assert (await env.images.get(BUSYBOX)).tags  # and the shared image too


async def test_pull_without_a_reachable_registry(env: Environment) -> None:
    # Loopback port 1 refuses connections: the pull fails fast and says why.
    async def iterate() -> None:
        async with contextlib.aclosing(
                env.images.pull("localhost:1/nope:latest").events()) as events:
            async for _ in events:
                pass

    # Awaited or iterated, the pull fails the same way (Podman retries for ~3 s: both
    # run at once).
    awaited, iterated = await asyncio.gather(env.images.pull("localhost:1/nope:latest"),
                                             iterate(), return_exceptions=True)
    for error in (awaited, iterated):
        assert isinstance(error, ImagePullError), repr(error)
        assert isinstance(error, EngineAPIError)
        assert "localhost:1" in error.message
        assert "connection refused" in error.message
        assert str(error).startswith("pull failed: ")
    with pytest.raises(NotFound):
        await env.images.get("localhost:1/nope:latest")


# -- volumes ---------------------------------------------------------------------------


async def test_volume_lifecycle(env: Environment, make_volume) -> None:
    tag = uuid.uuid4().hex[:8]
    volume = await make_volume(labels={"gp.test.volume": tag, "tier": "cache"})
    other = await make_volume(labels={"gp.test.volume": "someone-else"})
    assert volume.driver == "local"
    assert volume.labels == {"gp.test.volume": tag, "tier": "cache"}
    assert volume.mountpoint.startswith("/")
    listed = await env.volumes.list(filters={"label": f"gp.test.volume={tag}"})
    assert [v.name for v in listed] == [volume.name]
    assert other.name not in [v.name for v in listed]
    got = await env.volumes.get(volume.name)
    assert got == volume and got.mountpoint == volume.mountpoint
    assert got.environment == "a"
    await got.remove()
    with pytest.raises(NotFound):
        await env.volumes.get(volume.name)


async def test_volume_prune_spares_volumes_in_use(env: Environment, make_volume,
                                                  make_container) -> None:
    tag = uuid.uuid4().hex[:8]
    unused = await make_volume(labels={"gp.test.vprune": tag})
    used = await make_volume(labels={"gp.test.vprune": tag})
    await make_container(volumes=[f"{used.name}:/data"])
    result = await env.volumes.prune(filters={"label": f"gp.test.vprune={tag}"})
    assert result["VolumesDeleted"] == [unused.name]
    with pytest.raises(NotFound):
        await env.volumes.get(unused.name)
    assert (await env.volumes.get(used.name)).name == used.name


# -- networks --------------------------------------------------------------------------


def _random_subnet() -> str:
    return f"10.{random.randint(150, 250)}.{random.randint(0, 255)}.0/24"


async def test_network_lifecycle(env: Environment, make_network, make_container) -> None:
    subnet = _random_subnet()
    network = await make_network(subnet=subnet, labels={"gp.test": "network"})
    assert network.subnets == [subnet]
    assert network.driver == "bridge"
    assert network.labels == {"gp.test": "network"}
    assert (await env.networks.get(network.name)).id == network.id
    assert (await env.networks.get(network.id)).name == network.name
    listed = await env.networks.list(filters={"name": network.name})
    assert [n.id for n in listed] == [network.id]

    container = await make_container()
    await container.start()
    await network.connect(container.id, aliases=["gp-alias"])
    await network.reload()
    assert container.id in network.containers
    await container.reload()
    assert network.name in container.attrs["NetworkSettings"]["Networks"]
    await network.disconnect(container.id)
    await network.reload()
    assert container.id not in network.containers
    await container.reload()
    assert network.name not in container.attrs["NetworkSettings"]["Networks"]

    await network.remove()
    with pytest.raises(NotFound):
        await env.networks.get(network.name)


async def test_container_joins_a_network_at_creation(env: Environment, make_network,
                                                     make_container) -> None:
    network = await make_network(subnet=_random_subnet())
    container = await make_container(network=network.name, network_aliases=["db"])
    await container.start()
    await network.reload()
    assert container.id in network.containers
    address = network.containers[container.id]["IPv4Address"]
    prefix = network.subnets[0].rsplit(".", 1)[0]
    assert address.startswith(prefix + "."), address


async def test_network_prune(env: Environment, make_network) -> None:
    tag = uuid.uuid4().hex[:8]
    network = await make_network(labels={"gp.test.nprune": tag})
    kept = await make_network(labels={"gp.test.nprune": "other"})
    result = await env.networks.prune(filters={"label": f"gp.test.nprune={tag}"})
    assert result["NetworksDeleted"] == [network.name]
    with pytest.raises(NotFound):
        await env.networks.get(network.name)
    assert (await env.networks.get(kept.name)).id == kept.id


# -- system ----------------------------------------------------------------------------


async def test_ping_version_info_df(env: Environment) -> None:
    assert await env.ping() is True
    version = await env.version()
    assert version.kind == "podman"
    assert version.api_version == "1.41"
    assert version.version.startswith("4.")
    assert version.os == "linux"
    assert await env.system.version() is version  # negotiated once
    info = await env.system.info()
    assert info["ServerVersion"] == version.version
    assert info["Images"] >= 1
    assert info["NCPU"] >= 1
    df = await env.system.df()
    busybox = await env.images.get(BUSYBOX)
    assert busybox.id.removeprefix("sha256:") in {
        image["Id"].removeprefix("sha256:") for image in df["Images"]}
    assert isinstance(df["Containers"], list) and isinstance(df["Volumes"], list)


# -- events ----------------------------------------------------------------------------


async def test_events_follow_a_container_as_it_lives(env: Environment,
                                                     make_container) -> None:
    name = _unique("gp-events")
    seen: list[Event] = []
    died = asyncio.Event()

    async def follow() -> None:
        # `since` replays the last second too, so nothing is lost between sending the
        # request and the engine subscribing it; the stream then goes on live.
        async with contextlib.aclosing(env.events(filters={"type": "container"},
                                                  since=int(time.time()) - 1)) as events:
            async for event in events:
                if event.name == name:
                    seen.append(event)
                    if event.action in ("died", "die"):
                        died.set()

    follower = asyncio.create_task(follow())
    try:
        container = await make_container(name=name)
        await container.start()
        await container.stop(timeout=0)
        async with asyncio.timeout(15):
            await died.wait()
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    actions = [event.action for event in seen]
    assert actions.index("create") < actions.index("start")
    assert actions.index("start") < max(actions.index(a) for a in ("died", "die")
                                        if a in actions)
    for event in seen:
        assert event.type == "container"
        assert event.actor_id == container.id
        assert event.environment == "a"
        assert event.attributes["image"] in (BUSYBOX, "busybox:latest")


async def test_events_window_returns_past_events_then_ends(env: Environment,
                                                           make_container) -> None:
    since = time.time()
    container = await make_container(command=["true"])
    await container.start()
    assert await container.wait(timeout=20) == 0
    await container.remove()
    until = time.time()
    async with asyncio.timeout(10):  # a window in the past is not a live stream
        window = [event async for event in env.events(since=since, until=until,
                                                      filters={"type": "container"})]
    actions = [event.action for event in window if event.actor_id == container.id]
    for expected in ("create", "start", "remove"):
        assert expected in actions, (expected, actions)
    assert all(since - 1 <= event.time <= until + 1 for event in window)

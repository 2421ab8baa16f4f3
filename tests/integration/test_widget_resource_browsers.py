"""``ImageBrowser``, ``VolumeBrowser`` and ``NetworkBrowser`` (the resource grids) on a
real Podman engine.

Driven through their controls (``click()``, the filter box, the ticks, then the
confirmation's Confirm) as a user would. Whatever a test makes is recorded in
``created`` before it exists, and removed after the test even when the widget under
test failed to remove it.
"""

from __future__ import annotations

import io
import math
import random
import tarfile
import time
import uuid

import pytest
from ghostpanel_widgets._image_browser import ImageBrowser
from ghostpanel_widgets._network_browser import NetworkBrowser
from ghostpanel_widgets._resource_grid import RemoveReport
from ghostpanel_widgets._volume_browser import VolumeBrowser

from ghostpanel_kernel.engine import Environment, Image, NotFound
from tests.podman_service import BUSYBOX_REFERENCE

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _tiny_rootfs(marker: str) -> bytes:
    """A root filesystem of one marker file: an image of its own id (never run)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = marker.encode()
        info = tarfile.TarInfo("marker")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def _confirm(widget: ImageBrowser | VolumeBrowser | NetworkBrowser,
                   question: str) -> None:
    """Answer the confirmation the last click asked, and wait for the action."""
    assert widget.confirmation.question == question
    widget.confirmation.confirm_button.click()
    assert widget.confirmation.question == ""
    assert widget.task is not None
    await widget.task


# -- images ----------------------------------------------------------------------------


async def _tagged_and_dangling(env: Environment, track_image) -> tuple[str, Image, Image]:
    """``reference`` imported twice: the second image holds the tag, the first is left
    dangling (untagged)."""
    reference = f"localhost/{unique('gp-img')}:v1"
    track_image(reference)
    first = await env.images.import_rootfs(_tiny_rootfs("one"), reference)
    track_image(first.id)
    second = await env.images.import_rootfs(_tiny_rootfs("two"), reference)
    assert first.id != second.id
    return reference, first, second


async def test_image_grid_counts_users_and_filters_dangling_and_unused(
        env: Environment, track_image, make_container, shown) -> None:
    reference, dangling, tagged = await _tagged_and_dangling(env, track_image)
    for _ in range(2):
        await make_container(image=reference)
    browser = await shown(ImageBrowser(env))

    assert browser.status.level == "info" and browser.status.message == ""
    row = browser.row(reference)
    assert (row["tag"], row["id"], row["size"]) == (reference, tagged.short_id, tagged.size)
    assert row["containers"] == 2 and not row["dangling"]
    assert row["created"].endswith(" UTC")
    loose = browser.row(dangling.id)
    assert (loose["tag"], loose["containers"], loose["dangling"]) == ("<none>", 0, True)
    assert BUSYBOX_REFERENCE in browser.row_keys

    browser.show_field.value = "dangling"
    assert dangling.id in browser.row_keys and reference not in browser.row_keys
    assert all(browser.row(key)["dangling"] for key in browser.row_keys)
    browser.show = "unused"
    assert dangling.id in browser.row_keys and reference not in browser.row_keys
    browser.show = "all"
    browser.filter_field.value = reference.split("/")[1].split(":")[0].upper()
    assert browser.row_keys == [reference]
    assert browser.count_label.value.startswith("1 of ")


async def test_image_bulk_remove_goes_on_past_a_refusal(env: Environment, track_image,
                                                        make_container, shown) -> None:
    busybox = await env.images.get(BUSYBOX_REFERENCE)
    spare, kept = (f"localhost/{unique('gp-img')}:v1" for _ in range(2))
    for reference in (spare, kept):
        track_image(reference)
        await busybox.tag(*reference.rsplit(":", 1))
    used, _, _ = await _tagged_and_dangling(env, track_image)
    await make_container(image=used)
    browser = await shown(ImageBrowser(env))

    browser.select([spare, used])
    assert sorted(browser.selected) == sorted([spare, used])
    assert browser.count_label.value.endswith(", 2 ticked")
    browser.remove_button.click()
    order = [key for key in browser.row_keys if key in (spare, used)]
    await _confirm(browser, f"Remove 2 images: {', '.join(order)}?")

    assert browser.status.level == "warning"
    message = browser.status.message
    assert message.startswith(f"Removed 1 image: {spare}. The engine refused {used}: [409] ")
    with pytest.raises(NotFound):
        await env.images.get(spare)
    await env.images.get(used)  # refused: a container uses it
    await env.images.get(kept)  # not ticked
    await env.images.get(BUSYBOX_REFERENCE)  # only the tag went
    assert spare not in browser.row_keys and {used, kept} <= set(browser.row_keys)


async def test_pulling_an_unreachable_reference_shows_the_error_and_resets_the_bar(
        env: Environment, shown) -> None:
    browser = await shown(ImageBrowser(env))
    keys = browser.row_keys
    browser.reference.value = "localhost:1/nope:latest"
    started = time.monotonic()
    browser.pull_button.click()
    assert browser.busy and browser.progress_text.value == ""
    await browser.task

    assert browser.status.level == "error"
    message = browser.status.message
    assert message.startswith("Pull localhost:1/nope:latest failed: pull failed: ")
    assert "localhost:1" in message and "connection refused" in message
    assert (browser.progress.value, browser.progress.max) == (0, 1)
    assert browser.progress.bar_style == "" and browser.progress_text.value == ""
    assert browser.row_keys == keys
    assert not browser.busy and not browser.pull_button.disabled
    assert time.monotonic() - started < 30


# -- volumes ---------------------------------------------------------------------------


async def test_volume_grid_shows_users_and_sizes_and_bulk_removes(
        env: Environment, make_volume, make_container, shown) -> None:
    used, spare, kept = [await make_volume() for _ in range(3)]
    user = await make_container(volumes=[f"{used.name}:/data"])
    browser = await shown(VolumeBrowser(env))

    row = browser.row(used.name)
    assert (row["driver"], row["mountpoint"]) == ("local", used.mountpoint)
    assert row["containers"] == user.name
    assert browser.row(spare.name)["containers"] == ""
    usage = {entry["Name"]: entry["UsageData"]["Size"]
             for entry in (await env.system.df())["Volumes"]}
    size = browser.row(used.name)["size"]
    assert size == usage[used.name] if usage[used.name] >= 0 else math.isnan(size)

    browser.filter_field.value = user.name  # the filter reads the users too
    assert browser.row_keys == [used.name]
    browser.filter_field.value = ""
    browser.select([used.name, spare.name])
    browser.remove_button.click()
    order = [key for key in browser.row_keys if key in (used.name, spare.name)]
    await _confirm(browser, f"Remove 2 volumes: {', '.join(order)}?")

    assert browser.status.level == "warning"
    assert browser.status.message.startswith(
        f"Removed 1 volume: {spare.name}. The engine refused {used.name}: [409] ")
    with pytest.raises(NotFound):
        await env.volumes.get(spare.name)
    await env.volumes.get(used.name)
    await env.volumes.get(kept.name)


async def test_volume_browser_creates_a_volume_and_keeps_bad_labels(env: Environment,
                                                                    created, shown) -> None:
    name = unique("gp-vol")
    created.volumes.append(name)
    browser = await shown(VolumeBrowser(env))

    browser.labels_field.value = "no-equals-sign"
    browser.create_button.click()
    await browser.task
    assert browser.status.message == ("Create volume failed: label 'no-equals-sign' is not "
                                      "KEY=VALUE (e.g. region=us-east)")
    assert browser.labels_field.value == "no-equals-sign"  # kept, to fix

    browser.name_field.value = name
    browser.labels_field.value = "team=ghostpanel, tier = test"
    browser.create_button.click()
    await browser.task
    assert browser.status.message == f"Created volume {name}."
    assert browser.selected == [name]
    assert browser.row(name)["labels"] == "team=ghostpanel, tier=test"
    assert (await env.volumes.get(name)).labels == {"team": "ghostpanel", "tier": "test"}
    assert browser.name_field.value == browser.labels_field.value == ""

    browser.select([])
    browser.remove_button.click()
    assert browser.status.message == "Tick the volumes to remove first."
    assert browser.confirmation.question == ""
    assert await browser.remove([]) is None
    assert browser.status.message == "Remove volumes failed: tick the volumes to remove first"


async def test_volume_prune_removes_unused_volumes_only(env: Environment, make_volume,
                                                        make_container, shown) -> None:
    unused = await make_volume()
    used = await make_volume()
    await make_container(volumes=[f"{used.name}:/data"])
    browser = await shown(VolumeBrowser(env))
    assert {unused.name, used.name} <= set(browser.row_keys)

    browser.prune_button.click()
    await _confirm(browser, "Prune: remove every volume no container uses, with its data?")
    assert browser.status.level == "success"
    assert browser.status.message.startswith("Pruned ")
    assert unused.name not in browser.row_keys
    assert used.name in browser.row_keys
    with pytest.raises(NotFound):
        await env.volumes.get(unused.name)


# -- networks --------------------------------------------------------------------------


async def test_network_grid_connects_and_shows_subnet_gateway_and_containers(
        env: Environment, created, make_container, shown) -> None:
    container = await make_container()
    await container.start()
    name = unique("gp-net")
    third = random.randrange(100, 250)
    subnet = f"10.89.{third}.0/24"
    created.networks.append(name)
    browser = await shown(NetworkBrowser(env))
    assert container.name in browser.container_field.options

    browser.name_field.value = name
    browser.subnet_field.value = subnet
    browser.create_button.click()
    await browser.task
    assert browser.status.message == f"Created network {name} (bridge, {subnet})."
    network = await env.networks.get(name)
    assert browser.selected == [network.id]
    row = browser.row(network.id)
    assert (row["name"], row["id"], row["driver"], row["subnets"], row["gateways"],
            row["containers"]) == (name, network.short_id, "bridge", subnet,
                                   f"10.89.{third}.1", "")

    browser.container_field.value = container.name
    browser.connect_button.click()
    await browser.task
    assert browser.status.message == f"Connected {container.name} to {name}."
    await network.reload()
    assert list(network.containers) == [container.id]
    assert browser.row(network.id)["containers"] == container.name

    browser.disconnect_button.click()
    await browser.task
    assert browser.status.message == f"Disconnected {container.name} from {name}."
    await network.reload()
    assert network.containers == {}
    assert browser.row(network.id)["containers"] == ""

    browser.select([])
    browser.connect_button.click()
    await browser.task
    assert browser.status.message == "Connect failed: tick one network first"


async def test_network_bulk_remove_reports_the_default_network_refused(
        env: Environment, make_network, shown) -> None:
    spare, kept = await make_network(), await make_network()
    browser = await shown(NetworkBrowser(env))
    default = next(n for n in browser.networks if n.name in ("podman", "bridge"))

    report = await browser.remove([spare.id, default.id])
    assert isinstance(report, RemoveReport)
    assert report.removed == [spare.id] and list(report.refused) == [default.id]
    assert browser.status.level == "warning"
    assert browser.status.message.startswith(
        f"Removed 1 network: {spare.name}. The engine refused {default.name}: ")
    with pytest.raises(NotFound):
        await env.networks.get(spare.name)
    await env.networks.get(default.name)
    await env.networks.get(kept.name)

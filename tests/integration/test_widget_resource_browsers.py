"""``ImageBrowser``, ``VolumeBrowser`` and ``NetworkBrowser`` on a real Podman engine.

Driven through their buttons (``click()``, then the confirmation's Confirm) as a user
would. Whatever a test makes is recorded in ``created`` before it exists, and removed
after the test even when the widget under test failed to remove it.
"""

from __future__ import annotations

import random
import re
import time
import uuid

import pytest
from ghostpanel_widgets._format import format_size
from ghostpanel_widgets._image_browser import ImageBrowser
from ghostpanel_widgets._network_browser import NetworkBrowser
from ghostpanel_widgets._volume_browser import VolumeBrowser

from ghostpanel_kernel.engine import Environment, NotFound
from tests.podman_service import BUSYBOX_REFERENCE

pytestmark = pytest.mark.integration



def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"




async def _confirm(widget: ImageBrowser | VolumeBrowser | NetworkBrowser, question: str) -> None:
    """Answer the confirmation the last click asked, and wait for the action."""
    assert widget.confirmation.question == question
    widget.confirmation.confirm_button.click()
    assert widget.confirmation.question == ""
    assert widget.task is not None
    await widget.task


# -- images ----------------------------------------------------------------------------


async def test_image_browser_lists_tags_and_removes_one_after_confirming(
        env: Environment, track_image, shown) -> None:
    reference = f"localhost/{unique('gp-img')}:v1"
    track_image(reference)
    busybox = await env.images.get(BUSYBOX_REFERENCE)
    await busybox.tag(reference.rsplit(":", 1)[0], "v1")
    browser = await shown(ImageBrowser(env))

    assert browser.status.level == "info" and browser.status.message == ""
    row = browser.listing.rows[browser.listing.row_keys.index(reference)]
    # The host's busybox decides the size; its text is the widgets' one byte format.
    assert row[:3] == [reference, busybox.short_id, format_size(busybox.size)]
    assert re.fullmatch(r"\d+(\.\d+)? MiB", row[2]), row[2]
    assert row[3].endswith(" UTC")
    assert BUSYBOX_REFERENCE in browser.listing.row_keys

    browser.listing.value = reference
    browser.remove_button.click()
    assert reference in [i for image in await env.images.list() for i in image.tags]
    await _confirm(browser, f"Remove image {reference}?")

    assert browser.status.message == f"Removed {reference}."
    assert reference not in browser.listing.row_keys
    with pytest.raises(NotFound):
        await env.images.get(reference)
    await env.images.get(BUSYBOX_REFERENCE)  # only the tag went


async def test_pulling_an_unreachable_reference_shows_the_error_and_resets_the_bar(
        env: Environment, shown) -> None:
    browser = await shown(ImageBrowser(env))
    rows = browser.listing.rows
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
    assert browser.listing.rows == rows
    assert not browser.busy and not browser.pull_button.disabled
    assert time.monotonic() - started < 30


# -- volumes ---------------------------------------------------------------------------


async def test_volume_browser_creates_and_removes_a_volume(env: Environment, created,
                                                           shown) -> None:
    name = unique("gp-vol")
    created.volumes.append(name)
    browser = await shown(VolumeBrowser(env))

    browser.name_field.value = name
    browser.labels_field.value = "team=ghostpanel, tier = test"
    browser.create_button.click()
    await browser.task
    assert browser.status.message == f"Created volume {name}."
    assert browser.listing.value == name
    row = browser.listing.rows[browser.listing.row_keys.index(name)]
    assert row[:3] == [name, "local", "team=ghostpanel, tier=test"]
    assert (await env.volumes.get(name)).labels == {"team": "ghostpanel", "tier": "test"}
    assert browser.name_field.value == browser.labels_field.value == ""

    browser.remove_button.click()
    await _confirm(browser, f"Remove volume {name} and its data?")
    assert browser.status.message == f"Removed volume {name}."
    assert name not in browser.listing.row_keys
    with pytest.raises(NotFound):
        await env.volumes.get(name)


async def test_volume_browser_errors_stay_in_the_widget(env: Environment, make_volume,
                                                        make_container, shown) -> None:
    used = await make_volume()
    await make_container(volumes=[f"{used.name}:/data"])
    browser = await shown(VolumeBrowser(env))

    browser.labels_field.value = "no-equals-sign"
    browser.create_button.click()
    await browser.task
    assert browser.status.message == ("Create volume failed: label 'no-equals-sign' is not "
                                      "KEY=VALUE (e.g. region=us-east)")
    assert browser.labels_field.value == "no-equals-sign"  # kept, to fix

    assert await browser.remove(used.name) is False
    assert browser.status.level == "error"
    assert browser.status.message.startswith(f"Remove volume {used.name} failed: [409] ")
    await env.volumes.get(used.name)

    browser.listing.value = None
    browser.remove_button.click()
    assert browser.status.message == "Select a volume to remove first."
    assert browser.confirmation.question == ""


async def test_volume_prune_removes_unused_volumes_only(env: Environment, make_volume,
                                                        make_container, shown) -> None:
    unused = await make_volume()
    used = await make_volume()
    await make_container(volumes=[f"{used.name}:/data"])
    browser = await shown(VolumeBrowser(env))
    assert {unused.name, used.name} <= set(browser.listing.row_keys)

    browser.prune_button.click()
    await _confirm(browser, "Prune: remove every volume no container uses, with its data?")
    assert browser.status.level == "success"
    assert browser.status.message.startswith("Pruned ")
    assert unused.name not in browser.listing.row_keys
    assert used.name in browser.listing.row_keys
    with pytest.raises(NotFound):
        await env.volumes.get(unused.name)


# -- networks --------------------------------------------------------------------------


async def test_network_browser_creates_connects_disconnects_and_removes(
        env: Environment, created, make_container, shown) -> None:
    container = await make_container()
    await container.start()
    name = unique("gp-net")
    subnet = f"10.89.{random.randrange(100, 250)}.0/24"
    created.networks.append(name)
    browser = await shown(NetworkBrowser(env))
    assert container.name in browser.container_field.options

    browser.name_field.value = name
    browser.subnet_field.value = subnet
    browser.create_button.click()
    await browser.task
    assert browser.status.message == f"Created network {name} (bridge, {subnet})."
    network = await env.networks.get(name)
    assert browser.listing.value == network.id
    assert browser.listing.rows[browser.listing.row_keys.index(network.id)] == [
        name, network.short_id, "bridge", subnet, "0"]
    assert "no containers attached" in browser.details.value

    browser.container_field.value = container.name
    browser.connect_button.click()
    await browser.task
    assert browser.status.message == f"Connected {container.name} to {name}."
    await network.reload()
    assert list(network.containers) == [container.id]
    assert browser.listing.rows[browser.listing.row_keys.index(network.id)][4] == "1"
    assert container.name in browser.details.value

    browser.disconnect_button.click()
    await browser.task
    assert browser.status.message == f"Disconnected {container.name} from {name}."
    await network.reload()
    assert network.containers == {}

    browser.remove_button.click()
    await _confirm(browser, f"Remove network {name}?")
    assert browser.status.message == f"Removed network {name}."
    assert network.id not in browser.listing.row_keys
    with pytest.raises(NotFound):
        await env.networks.get(name)


async def test_network_browser_errors_stay_in_the_widget(env: Environment, created,
                                                         make_network, shown) -> None:
    network = await make_network()
    browser = await shown(NetworkBrowser(env))

    refused = unique("gp-net")
    created.networks.append(refused)
    assert await browser.create(refused, subnet="not-a-subnet") is None
    assert browser.status.level == "error"
    assert browser.status.message.startswith("Create network gp-net-")

    assert await browser.connect(network.name, "gp-test-no-such-container") is False
    assert browser.status.message.startswith("Connect failed: [404] ")

    browser.listing.value = None
    browser.connect_button.click()
    await browser.task
    assert browser.status.message == "Connect failed: select a network first"

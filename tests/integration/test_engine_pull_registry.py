"""Pulls that succeed: the session engine pulls from the private loopback registry.

``registry_images`` (tests/conftest.py) pushed two images into ``image_registry``:
the demo busybox image, whose layer the engine already holds, and a payload image of
3 MiB of random bytes that it does not. Through the registry's slow door (about
1 MiB/s) the payload takes seconds to download, long enough for Podman to report the
layer's bytes as they arrive; it sends a ``Downloading`` report once a second, none for
a layer that takes less.

Every image a test pulls is removed by name afterwards (``track_image``), which leaves
the shared ``localhost/busybox:latest`` in place.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.engine import Environment, ImagePullError, NotFound, PullEvent
from tests.image_registry import RegistryImages
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration


async def _events(env: Environment, reference: str) -> list[PullEvent]:
    return [event async for event in env.images.pull(reference)]


def _of_layer(events: list[PullEvent], layer: str) -> list[str]:
    return [event.status for event in events if event.layer == layer]


async def test_pull_reports_the_bytes_of_a_layer_as_they_arrive(
        env: Environment, registry_images: RegistryImages,
        track_image: Callable[[str], None]) -> None:
    reference = registry_images.reference(registry_images.payload, slow=True)
    track_image(reference)
    with pytest.raises(NotFound):  # nothing of it on the engine yet
        await env.images.get(reference)

    started = time.monotonic()
    events = await _events(env, reference)
    elapsed = time.monotonic() - started

    image = await env.images.get(reference)
    downloading = [event for event in events if event.status == "Downloading"]
    assert downloading, [event.attrs for event in events]
    layer = downloading[0].layer
    # One layer, announced, reported while it downloads, then complete.
    assert _of_layer(events, layer)[0] == "Pulling fs layer"
    assert _of_layer(events, layer)[-1] == "Download complete"
    assert {event.layer for event in downloading} == {layer}
    # The bytes grow towards the layer's size, the compressed size of the random bytes
    # (which do not compress: a little more than the payload, with the tar headers).
    sizes = {event.total for event in downloading}
    assert len(sizes) == 1
    total = sizes.pop()
    assert total is not None
    assert registry_images.payload_bytes < total < registry_images.payload_bytes * 1.05
    done = [event.current for event in downloading]
    assert all(current is not None and 0 < current <= total for current in done), done
    assert done == sorted(done)
    # At about 1 MiB/s a report comes every second or so: as many as the seconds it took.
    assert elapsed > total / (2 * 1024 * 1024)
    assert len(downloading) <= elapsed + 1
    # Podman's last report names the image it pulled.
    assert events[-1].status == "Download complete"
    assert image.id.removeprefix("sha256:").startswith(events[-1].layer)
    # The events are the engine's JSON lines, read as they are.
    assert downloading[0].attrs["progressDetail"] == {"current": done[0], "total": total}

    listed = {tag for found in await env.images.list() for tag in found.tags}
    assert reference in listed
    assert image.tags == [reference]


async def test_pull_of_the_demo_image_reuses_the_layer_the_engine_holds(
        env: Environment, registry_images: RegistryImages,
        track_image: Callable[[str], None]) -> None:
    reference = registry_images.reference(registry_images.busybox)
    track_image(reference)

    events = await _events(env, reference)
    image = await env.images.pull(reference)  # awaited: runs again, gives the image

    local = await env.images.get(BUSYBOX_REFERENCE)
    # The same image (the same config) under a second name, its layer not downloaded.
    assert image.id == local.id
    assert sorted(image.tags) == sorted([BUSYBOX_REFERENCE, reference])
    assert "Already exists" in {event.status for event in events}
    assert "Downloading" not in {event.status for event in events}
    assert image.id.removeprefix("sha256:").startswith(events[-1].layer)


async def test_pull_of_a_tag_the_registry_lacks_names_the_reference(
        env: Environment, registry_images: RegistryImages) -> None:
    repository = registry_images.busybox.rpartition(":")[0]
    reference = registry_images.reference(f"{repository}:no-such-tag")

    with pytest.raises(ImagePullError) as raised:
        await env.images.pull(reference)

    assert reference in raised.value.message
    assert "manifest unknown" in raised.value.message
    assert str(raised.value).startswith("pull failed: ")
    with pytest.raises(NotFound):
        await env.images.get(reference)


def test_podman_engine_trusts_both_doors_of_the_registry(
        podman_engine: PodmanService, registry_images: RegistryImages) -> None:
    registry = registry_images.registry
    assert podman_engine.insecure_registries == (registry.address, registry.slow_address)
    assert podman_engine.registries_conf is not None
    text = podman_engine.registries_conf.read_text()
    for location in podman_engine.insecure_registries:
        assert f'location = "{location}"\ninsecure = true' in text


@pytest.mark.parametrize("location", ["http://127.0.0.1:5000", "127.0.0.1:5000/path",
                                      "", 'a" insecure = false'])
def test_an_insecure_registry_must_be_a_host_and_port(tmp_path: Path, location: str) -> None:
    with pytest.raises(ValueError, match="is not a host"):
        PodmanService(tmp_path / "engine", insecure_registries=[location])
    assert not (tmp_path / "engine").exists()


# -- the command line -----------------------------------------------------------------


def _in_a_terminal(arguments: list[str], environment: dict[str, str], *,
                   timeout: float = 120) -> tuple[int, str, str]:
    """Run a command with its stderr on a pseudo-terminal; (status, stdout, terminal)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=terminal, env=environment)
    os.close(terminal)
    shown = bytearray()
    deadline = time.monotonic() + timeout
    try:
        # Read as it comes: a full terminal buffer would block the command.
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                try:
                    piece = os.read(controller, 4096)
                except OSError:  # EIO: the command closed its end
                    break
                if not piece:
                    break
                shown += piece
            elif process.poll() is not None:
                break
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        status = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        os.close(controller)
    return status, stdout, shown.decode(errors="replace")


def test_cli_pull_draws_its_progress_bar_on_a_terminal(
        podman_engine: PodmanService, registry_images: RegistryImages, tmp_path: Path,
        track_image: Callable[[str], None]) -> None:
    reference = registry_images.reference(registry_images.payload, slow=True)
    track_image(reference)
    home = tmp_path / "home"
    added = CliRunner().invoke(cli, ["env", "add", "a", podman_engine.url],
                               env={"GHOSTPANEL_HOME": str(home),
                                    "GHOSTPANEL_DATABASE_URL": None},
                               catch_exceptions=False)
    assert added.exit_code == 0, added.output
    environment = {**os.environ, "GHOSTPANEL_HOME": str(home), "COLUMNS": "120"}
    environment.pop("GHOSTPANEL_DATABASE_URL", None)

    status, stdout, shown = _in_a_terminal(
        [sys.executable, "-m", "ghostpanel_kernel.cli", "pull", "--env", "a", reference],
        environment)

    assert status == 0, shown
    # The bar is redrawn in place as the bytes arrive: several fillings, up to 100%.
    percents = [int(p) for p in re.findall(r"Pulling \S+\s+\[[#\-]*\]\s+(\d+)%", shown)]
    assert percents, shown
    assert percents[-1] == 100
    assert any(0 < percent < 100 for percent in percents), percents
    assert percents == sorted(percents)
    # stdout carries only the id of the image pulled.
    pulled = podman_engine.podman("image", "inspect", "--format", "{{.Id}}", reference)
    assert stdout.strip().removeprefix("sha256:") == pulled.stdout.strip()

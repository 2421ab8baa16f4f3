"""A container created with a GPU reservation on the real (private) Podman engine.

This machine's engine is Podman 4.3, which has no GPU and no CDI spec. What it does,
checked here, is what ghostpanel_kernel.gpus relies on:

- compat ``DeviceRequests`` (the form Docker and Podman >= 5.4 honour) are accepted and
  dropped without a word (podman#22645): GhostPanel sees the request missing from the
  inspect and removes the container rather than let it start without its GPU;
- libpod ``devices`` with a CDI name are kept, and the start fails loudly with
  "unresolvable CDI devices" on a host without NVIDIA's CDI spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ghostpanel_kernel.engine import EngineAPIError, Environment, NotFound
from ghostpanel_kernel.gpus import (
    GpuAllocator,
    GpuRequest,
    GpuSpecError,
    create_with_gpus,
    engine_spec,
    load_simulation,
    read_inventory,
)
from ghostpanel_kernel.gpus._spec import LABEL_GPU_DEVICES
from ghostpanel_kernel.store import open_database
from tests.integration.conftest import BUSYBOX, unique
from tests.nvml_data import MIXED

pytestmark = pytest.mark.integration



@pytest.fixture
def database(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'gpus.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def allocator(database: Engine) -> GpuAllocator:
    inventory = read_inventory(load_simulation(MIXED), source=str(MIXED), host="lab")
    return GpuAllocator(inventory, engine=database)


async def test_podman_4_gets_libpod_cdi_devices_and_a_loud_start_failure(
        env: Environment, allocator: GpuAllocator,
        track_container: Callable[[str], None]) -> None:
    version = await env.version()
    assert (version.kind, version.version.split(".")[0]) == ("podman", "4")
    allocator.allocate("gpu-job", GpuRequest(policy="mig", gpus=("2",)))
    name = unique("gp-gpu")
    track_container(name)
    container = await create_with_gpus(env, allocator, "gpu-job", image=BUSYBOX, name=name,
                                       command=["true"], labels={"team": "ml"})
    labels = container.attrs["Config"]["Labels"]
    assert labels[LABEL_GPU_DEVICES] == "nvidia.com/gpu=2:0"
    assert labels["team"] == "ml"
    (held,) = allocator.allocations("gpu-job")
    assert held.container_id == container.id
    # No CDI spec here: Podman refuses to start it, rather than start it without a GPU.
    with pytest.raises(EngineAPIError, match=r"unresolvable CDI devices nvidia\.com/gpu=2:0"):
        await container.start()
    # Removing the container releases the reservation.
    await container.remove(force=True)
    ids = [c.id for c in await env.containers.list(all=True)]
    assert [a.workload for a in allocator.reconcile(ids)] == ["gpu-job"]
    assert allocator.allocations() == []


async def test_compat_device_requests_are_dropped_by_podman_4_and_refused(
        env: Environment, allocator: GpuAllocator,
        track_container: Callable[[str], None]) -> None:
    from ghostpanel_kernel.engine._container_spec import build_create_body

    held = allocator.allocate("steam", GpuRequest(gpus=("0",)))
    # The body Podman 5.4 would honour, sent to this Podman 4.3.
    spec = engine_spec(held, kind="podman", version="5.4.0")
    body = spec.apply(build_create_body(image=BUSYBOX, command=["true"]))
    name = unique("gp-gpu")
    track_container(name)
    created = await env.client.post_json("/containers/create", params={"name": name},
                                         body=body)  # accepted: 201
    attrs = await env.client.get_json(f"/containers/{created['Id']}/json")
    assert not attrs["HostConfig"].get("DeviceRequests")  # ... and dropped
    with pytest.raises(GpuSpecError, match=r"dropped the GPU request for nvidia\.com/gpu=0"):
        spec.check_inspect(attrs)


async def test_create_without_a_reservation_or_with_unsupported_options_is_refused(
        env: Environment, allocator: GpuAllocator) -> None:
    from ghostpanel_kernel.gpus import GpuRequestError

    with pytest.raises(GpuRequestError, match="nobody holds no GPU"):
        await create_with_gpus(env, allocator, "nobody", image=BUSYBOX)
    allocator.allocate("web", GpuRequest(gpus=("1",)))
    name = unique("gp-gpu")
    with pytest.raises(GpuSpecError, match="does not yet translate read_only"):
        await create_with_gpus(env, allocator, "web", image=BUSYBOX, name=name,
                               read_only=True)
    with pytest.raises(NotFound):
        await env.containers.get(name)  # nothing was created


async def test_create_with_gpus_removes_a_container_the_engine_made_without_its_gpu(
        env: Environment, allocator: GpuAllocator, monkeypatch: pytest.MonkeyPatch,
        track_container: Callable[[str], None]) -> None:
    # Told it is Podman 5.4 (which honours DeviceRequests), the real 4.3 drops them:
    # the container must not be left behind to start without its GPU.
    import dataclasses

    real = await env.version()
    newer = dataclasses.replace(real, version="5.4.0")

    async def version() -> object:
        return newer

    monkeypatch.setattr(env, "version", version)
    allocator.allocate("steam", GpuRequest(gpus=("0",)))
    name = unique("gp-gpu")
    track_container(name)
    with pytest.raises(GpuSpecError, match="without its GPU"):
        await create_with_gpus(env, allocator, "steam", image=BUSYBOX, name=name,
                               command=["true"])
    with pytest.raises(NotFound):
        await env.containers.get(name)
    assert allocator.allocations("steam")[0].container_id is None  # not bound


async def test_the_engine_s_removal_event_releases_the_reservation(
        env: Environment, allocator: GpuAllocator,
        track_container: Callable[[str], None]) -> None:
    import time

    since = time.time() - 1
    allocator.allocate("evented", GpuRequest(gpus=("1",)))
    name = unique("gp-gpu")
    track_container(name)
    container = await create_with_gpus(env, allocator, "evented", image=BUSYBOX, name=name,
                                       command=["true"])
    await container.remove(force=True)
    released = []
    async for event in env.system.events(since=since, until=time.time() + 0.5,
                                         filters={"type": ["container"]}):
        released += allocator.release_for_event(event)
    # Podman names the removal "remove" (Docker "destroy"); either releases it.
    assert [a.workload for a in released] == ["evented"]
    assert allocator.allocations() == []

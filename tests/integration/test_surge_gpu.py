"""Surge deploys a service with ``[gaming.gpu]`` on real Podman, on the simulated NVML.

This machine's engine is Podman 4.3 with no GPU and no CDI spec (and Podman 4.3 reads
CDI specs only from /etc/cdi and /var/run/cdi, which a test must not write). What
really happens there, checked here:

- the plan shows each replica's GPUs, and a request the host cannot meet fails the plan
  before anything is created, naming the GPUs and who holds them;
- an apply reserves the GPU, creates the container through libpod with the CDI device
  ``nvidia.com/gpu=0`` (compat ``DeviceRequests`` would be dropped, podman#22645) and
  the service's network, ports, volumes and limits; starting it fails loudly
  ("unresolvable CDI devices"), and the rollback leaves no container and no reservation;
- the container Surge creates carries everything the service asks for (inspected), and
  ``surge destroy`` removes it and releases its GPU, as does scaling the service to 0
  (an apply that removes a GPU container releases it once it commits).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.engine import Container, Environment
from ghostpanel_kernel.gpus import (
    GpuAllocator,
    GpuRequest,
    create_with_gpus,
    load_simulation,
    read_inventory,
)
from ghostpanel_kernel.gpus._spec import LABEL_GPU_DEVICES, LABEL_GPU_WORKLOAD
from ghostpanel_kernel.store import open_database
from ghostpanel_kernel.surge import (
    LABEL_PROJECT,
    SurgeProgress,
    apply_surge,
    destroy_surge,
    plan_surge,
    scale_surge,
)
from ghostpanel_kernel.surge._desired import desired_state
from tests.integration import surge_project
from tests.integration.surge_project import BUSYBOX, FAST, SLEEPER, Project, free_port
from tests.nvml_data import L4_0, L4_1, MIXED
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration

east = surge_project.east
west = surge_project.west
project = surge_project.project

SWITCHES = """enabled = true
gpu_passthrough = true
nvidia_runtime = true
amd_runtime = false
audio_passthrough = false
real_time_priority = false"""


def _gpu_service(devices: str = '["gpu:0"]', level: str = "exclusive",
                 extra: str = "") -> str:
    return f"""
[services.steam]
image = "{BUSYBOX}"
command = {SLEEPER}
regions = ["us-east"]
{extra}
[services.steam.gaming]
{SWITCHES}
[services.steam.gaming.gpu]
isolation_level = "{level}"
[services.steam.gaming.gpu.nvbind]
devices = {devices}
"""


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[dict[str, Engine]]:
    """One GPU store per environment: east and west are two hosts."""
    made = {name: open_database(f"sqlite:///{tmp_path / f'{name}-gpus.db'}")
            for name in ("east", "west")}
    yield made
    for engine in made.values():
        engine.dispose()


@pytest.fixture
def allocators(stores: dict[str, Engine]) -> Callable[[Environment], GpuAllocator]:
    inventory = read_inventory(load_simulation(MIXED), source=str(MIXED), host="lab")

    def factory(environment: Environment) -> GpuAllocator:
        return GpuAllocator(inventory, engine=stores[environment.name])

    return factory


def _held(allocators: Callable[[Environment], GpuAllocator],
          env: Environment) -> list[tuple[str, str, str | None]]:
    allocator = allocators(env)
    return [(a.workload, a.unit, a.container_id) for a in allocator.allocations()]


async def test_the_plan_shows_the_gpus_and_an_impossible_request_creates_nothing(
        project: Project, allocators: Callable[[Environment], GpuAllocator]) -> None:
    p = project.name
    bf = project.boltfile(_gpu_service())
    plan = await plan_surge(bf, project.envs, gpu_allocators=allocators)
    assert plan.ok
    (steam,) = [a for a in plan.for_environment("east").actions if a.service == "steam"]
    assert (steam.kind, steam.container, steam.gpus) == ("create", f"{p}_steam",
                                                         "GPU 0, exclusive")
    assert steam.to_dict()["gpus"] == "GPU 0, exclusive"
    assert _held(allocators, project.east) == []  # a plan reserves nothing

    # GPU 0 is another workload's: the plan and the apply say who holds it.
    allocators(project.east).allocate("quake", GpuRequest(gpus=("0",)))
    plan = await plan_surge(bf, project.envs, gpu_allocators=allocators)
    error = str(plan.for_environment("east").error)
    assert "no GPU free for " + f"{p}_steam" in error
    assert "GPU 0 (NVIDIA L4) held by quake (exclusive)" in error
    result = await apply_surge(bf, project.envs, gpu_allocators=allocators, **FAST)
    assert not result.ok and "held by quake" in str(result.errors["east"])
    # A GPU the host does not have.
    missing = project.boltfile(_gpu_service('["gpu:7"]'))
    result = await apply_surge(missing, project.envs, gpu_allocators=allocators, **FAST)
    assert not result.ok
    assert "lab has no GPU '7'" in str(result.errors["east"])
    for env in project.envs:  # nothing was created: no container, no network
        assert await project.containers(env) == {}
        assert await env.networks.list(filters={"label": [f"{LABEL_PROJECT}={p}"]}) == []
    assert _held(allocators, project.east) == [("quake", L4_0, None)]


async def test_an_apply_on_podman_4_gives_the_cdi_device_and_fails_loudly_at_start(
        project: Project, allocators: Callable[[Environment], GpuAllocator]) -> None:
    p = project.name
    bf = project.boltfile(_gpu_service())
    seen: list[tuple[str, list[tuple[str, str, str | None]]]] = []

    def progress(event: SurgeProgress) -> None:  # what the store holds at each step
        seen.append((event.message, _held(allocators, project.east)))

    since = time.time() - 1
    result = await apply_surge(bf, project.envs, gpu_allocators=allocators,
                               progress=progress, **FAST)
    assert not result.ok
    assert "unresolvable CDI devices nvidia.com/gpu=0" in str(result.errors["east"])
    assert "undo: reserve GPUs (" + f"{p}_steam: GPU 0)" in [m for m, _ in seen]
    reserved = [held for message, held in seen if message.startswith("reserved GPUs")]
    assert reserved == [[(f"{p}_steam", L4_0, None)]]
    # What reached the engine: the container was made with GhostPanel's GPU labels (the
    # CDI device itself Podman 4.3 shows nowhere before it starts), then rolled back.
    created = [event async for event in project.east.system.events(
        since=since, until=time.time() + 0.5,
        filters={"type": ["container"], "event": ["create"]})
        if event.attributes.get("name") == f"{p}_steam"]
    assert [e.attributes.get(LABEL_GPU_DEVICES) for e in created] == ["nvidia.com/gpu=0"]
    assert await project.containers(project.east) == {}
    assert _held(allocators, project.east) == []  # the rollback gave the GPU back


async def test_the_container_surge_makes_holds_the_service_and_destroy_releases_it(
        project: Project, allocators: Callable[[Environment], GpuAllocator]) -> None:
    p = project.name
    port = free_port()
    (project.tmp_path / "site").mkdir()
    bf = project.boltfile(_gpu_service(level="shared", extra=f"""
ports = ["{port}:8080"]
volumes = ["saves:/saves", "./site:/site:ro"]
memory_limit = "64m"
cpu_limit = "0.5"
restart = "on-failure:3"
env = {{ MODE = "lan" }}
"""))
    spec = desired_state(bf).services["steam"]
    name = spec.container_name(p, 1)
    env = project.east
    labels = {LABEL_PROJECT: p}
    await env.networks.create(f"{p}_default", labels=labels)
    await env.volumes.create(f"{p}_saves", labels=labels)
    allocator = allocators(env)
    assert spec.gpu is not None
    allocator.reserve_all([(name, spec.gpu)])
    # The call Surge's apply makes for a GPU replica (surge/_apply.py).
    options = {k: v for k, v in spec.create.items() if k != "image"}
    container = await create_with_gpus(env, allocator, name, image=spec.image, name=name,
                                       **{**options, "labels": spec.labels(p, 1)})
    attrs = container.attrs
    config, host = attrs["Config"], attrs["HostConfig"]
    assert config["Labels"][LABEL_GPU_DEVICES] == "nvidia.com/gpu=0"
    assert config["Labels"][LABEL_GPU_WORKLOAD] == name
    assert "MODE=lan" in config["Env"]
    assert host["PortBindings"]["8080/tcp"][0]["HostPort"] == str(port)
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/saves"]["Name"] == f"{p}_saves"
    assert mounts["/site"]["Source"] == str(project.tmp_path / "site")
    assert mounts["/site"]["RW"] is False
    network = attrs["NetworkSettings"]["Networks"][f"{p}_default"]
    assert "steam" in network["Aliases"]
    assert _held(allocators, env) == [(name, L4_0, container.id)]

    result = await destroy_surge(bf, project.envs, volumes=True, stop_timeout=0,
                                 gpu_allocators=allocators)
    assert result.ok and result.summary()[0].startswith("east: ")
    assert await project.containers(env) == {}
    assert _held(allocators, env) == []


async def _surge_made(project: Project, allocators: Callable[[Environment], GpuAllocator],
                      body: str) -> tuple[Container, str]:
    """The east container Surge would have made for ``steam`` (it cannot start here)."""
    p = project.name
    spec = desired_state(project.boltfile(body)).services["steam"]
    name = spec.container_name(p, 1)
    await project.east.networks.create(f"{p}_default", labels={LABEL_PROJECT: p})
    allocator = allocators(project.east)
    assert spec.gpu is not None
    allocator.reserve_all([(name, spec.gpu)])
    options = {k: v for k, v in spec.create.items() if k != "image"}
    container = await create_with_gpus(project.east, allocator, name, image=spec.image,
                                       name=name, **{**options, "labels": spec.labels(p, 1)})
    return container, name


async def test_scaling_a_gpu_service_to_zero_releases_its_gpu_when_the_apply_commits(
        project: Project, allocators: Callable[[Environment], GpuAllocator]) -> None:
    container, name = await _surge_made(project, allocators, _gpu_service())
    assert _held(allocators, project.east) == [(name, L4_0, container.id)]
    assert project.last is not None
    result = await scale_surge(project.last, project.envs, service="steam", replicas=0,
                               gpu_allocators=allocators, **FAST)
    assert result.ok, result.summary()
    assert result.summary()[0] == "east: 1 removed"
    assert await project.containers(project.east) == {}
    assert _held(allocators, project.east) == []


def test_surge_plan_on_the_command_line_prints_the_gpus_and_the_holders(
        tmp_path: Path, podman_engine: PodmanService) -> None:
    environment = {"GHOSTPANEL_HOME": str(tmp_path / "home"), "GHOSTPANEL_DATABASE_URL": None,
                   "GHOSTPANEL_GPU_SIMULATE": str(MIXED)}

    def ghostpanel(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=environment)

    assert ghostpanel("env", "add", "a", podman_engine.url).exit_code == 0
    boltfile = tmp_path / "Boltfile.toml"
    boltfile.write_text('project = "tgpucli"\n' + _gpu_service().replace(
        'regions = ["us-east"]\n', ""), encoding="utf-8")
    plan = ghostpanel("surge", "plan", "-f", str(boltfile), "--env", "a")
    assert plan.exit_code == 0, plan.output
    assert "tgpucli_steam" in plan.output and "(GPUs: GPU 0, exclusive)" in plan.output
    assert ghostpanel("gpu", "allocate", "quake", "--gpu", "0").exit_code == 0
    held = ghostpanel("surge", "plan", "-f", str(boltfile), "--env", "a")
    assert held.exit_code == 1
    assert "GPU 0 (NVIDIA L4) held by quake" in held.output


async def test_a_gpu_change_recreates_and_a_failed_recreate_gives_the_old_gpu_back(
        project: Project, allocators: Callable[[Environment], GpuAllocator]) -> None:
    old, name = await _surge_made(project, allocators, _gpu_service())
    moved = project.boltfile(_gpu_service('["gpu:1"]'))
    plan = await plan_surge(moved, project.envs, gpu_allocators=allocators)
    (steam,) = [a for a in plan.for_environment("east").actions if a.service == "steam"]
    assert (steam.kind, steam.gpus) == ("recreate", "GPU 1, exclusive")
    assert steam.reason.startswith("configuration changed")
    seen: list[tuple[str, list[tuple[str, str, str | None]]]] = []
    result = await apply_surge(moved, project.envs, gpu_allocators=allocators,
                               progress=lambda e: seen.append(
                                   (e.message, _held(allocators, project.east))),
                               **FAST)
    # The new container got GPU 1 (its predecessor's GPU 0 given up in the same step),
    # then could not start here; the rollback brought the old container and its GPU back.
    assert [held for message, held in seen if message.startswith("reserved GPUs")] == [
        [(name, L4_1, None)]]
    assert not result.ok and "unresolvable CDI devices nvidia.com/gpu=1" in str(
        result.errors["east"])
    assert {c.id for c in (await project.containers(project.east)).values()} == {old.id}
    assert _held(allocators, project.east) == [(name, L4_0, old.id)]

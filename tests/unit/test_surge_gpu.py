"""Surge and GPUs without an engine: a service's ``[gaming]`` table read into a GPU
request (or refused by key), the config hash, and the allocator's batch reservation
that a Surge apply makes (all or nothing, replacing, undoable)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.gpus import (
    GpuAllocator,
    GpuRequest,
    GpuUnavailable,
)
from ghostpanel_kernel.surge import SurgeError
from ghostpanel_kernel.surge._desired import config_hash, desired_state
from ghostpanel_kernel.surge._gaming import describe_request, gpu_wanted
from tests.nvml_data import L4_0, L4_1
from tests.unit.gpu_fixtures import (  # noqa: F401 (fixtures)
    allocator_fixture,
    database_fixture,
    inventory_fixture,
)

CORPUS = Path(__file__).parent.parent / "data" / "bolt-corpus"
SWITCHES = {"enabled": True, "gpu_passthrough": True, "nvidia_runtime": True,
            "amd_runtime": False, "audio_passthrough": False, "real_time_priority": False}


def _boltfile(gaming: str, *, extra: str = "") -> Boltfile:
    switches = "\n".join(f"{k} = {str(v).lower()}" for k, v in SWITCHES.items())
    return Boltfile.loads(f'project = "arcade"\n[services.steam]\nimage = "busybox"\n'
                          f"{extra}\n[services.steam.gaming]\n{switches}\n{gaming}")


def _gaming(**changes: Any) -> dict[str, Any]:
    table = {**SWITCHES, **changes}
    return {"image": "busybox", "gaming": {k: v for k, v in table.items() if v is not None}}


# -- the gaming table ---------------------------------------------------------------------


def test_a_gpu_table_becomes_the_service_s_request_and_its_plan_words() -> None:
    state = desired_state(_boltfile('[services.steam.gaming.gpu]\nisolation_level = "shared"\n'
                                    '[services.steam.gaming.gpu.nvbind]\n'
                                    'devices = ["gpu:0", "gpu:1"]\ndriver = "auto"\n'))
    request = state.services["steam"].gpu
    assert request == GpuRequest(gpus=("0", "1"), policy="shared")
    assert describe_request(request) == "GPUs 0, 1, shared"
    # nvidia.device and MIG, the other ways Bolt names a GPU and a policy.
    assert gpu_wanted("ml", _gaming(gpu={"nvidia": {"device": 1, "cuda": True},
                                         "aiml": {"mig_enabled": True}})) == \
        GpuRequest(gpus=("1",), policy="mig")
    assert describe_request(GpuRequest(all_gpus=True, policy="time-sliced")) == \
        "every GPU, time-sliced"


def test_gpu_passthrough_alone_asks_for_one_exclusive_gpu_and_off_asks_for_none() -> None:
    assert gpu_wanted("steam", _gaming()) == GpuRequest()
    assert gpu_wanted("steam", _gaming(gpu_passthrough=False)) is None
    # A gaming table that is off asks for nothing, whatever it holds (as in Bolt).
    assert gpu_wanted("steam", _gaming(enabled=False, audio_passthrough=True)) is None
    with pytest.raises(SurgeError, match=r"gpu_passthrough = false, but .* asks for "
                                         r"GPU 0, exclusive"):
        gpu_wanted("steam", _gaming(gpu_passthrough=False,
                                    gpu={"nvbind": {"devices": ["gpu:0"]}}))


@pytest.mark.parametrize(("changes", "named"), [
    ({"audio_passthrough": True}, "services.steam.gaming.audio_passthrough"),
    ({"real_time_priority": True}, "services.steam.gaming.real_time_priority"),
    ({"amd_runtime": True}, "services.steam.gaming.amd_runtime"),
    ({"proton_version": "8.0"}, "services.steam.gaming.proton_version"),
    ({"wine": {"version": "9"}}, "services.steam.gaming.wine"),
    ({"performance": {"nice_level": -10}}, "services.steam.gaming.performance"),
    ({"gpu": {"memory_limit": "8GB"}}, "services.steam.gaming.gpu.memory_limit"),
    ({"gpu": {"nvidia": {"device": 0, "power_limit": 100}}},
     "services.steam.gaming.gpu.nvidia.power_limit"),
    ({"gpu": {"nvbind": {"devices": ["gpu:0"], "wsl2_optimized": True}}},
     "services.steam.gaming.gpu.nvbind.wsl2_optimized"),
    ({"gpu": {"aiml": {"mig_enabled": True, "tensor_cores_enabled": True}}},
     "services.steam.gaming.gpu.aiml.tensor_cores_enabled"),
    ({"gpu": {"gaming": {"dlss_enabled": True}}}, "services.steam.gaming.gpu.gaming"),
    ({"gpu": {"runtime": "amd"}}, 'services.steam.gaming.gpu.runtime = "amd"'),
])
def test_a_setting_the_engine_cannot_express_is_refused_by_name(
        changes: dict[str, Any], named: str) -> None:
    with pytest.raises(SurgeError) as refused:
        gpu_wanted("steam", _gaming(**changes))
    assert named in str(refused.value)
    assert "refuses the service rather than deploy it without" in str(refused.value)


def test_switches_that_are_off_are_accepted() -> None:
    quiet = _gaming(dxvk_enabled=False, vsync=False,
                    gpu={"nvbind": {"devices": ["gpu:1"], "wsl2_optimized": False,
                                    "driver": "auto"},
                         "nvidia": {"dlss": False}})
    assert gpu_wanted("steam", quiet) == GpuRequest(gpus=("1",))


def test_devices_the_allocator_cannot_place_and_contradictions_are_refused() -> None:
    with pytest.raises(SurgeError, match=r"'gpu:\*' is not \"gpu:<index>\""):
        gpu_wanted("steam", _gaming(gpu={"nvbind": {"devices": ["gpu:*"]}}))
    with pytest.raises(SurgeError, match="passthrough = true gives the whole GPU"):
        gpu_wanted("steam", _gaming(gpu={"passthrough": True, "isolation_level": "shared"}))


def test_the_corpus_gaming_services_are_refused_naming_every_key_that_would_be_lost() -> None:
    steam = tomllib.loads((CORPUS / "bolt__examples_steam_gaming_profile.toml").read_text())
    with pytest.raises(SurgeError) as refused:
        gpu_wanted("steam", steam["services"]["steam"])
    message = str(refused.value)
    for key in ("gpu.nvidia.dlss", "gpu.nvidia.reflex", "gpu.nvidia.raytracing",
                "gpu.nvidia.power_limit", "gpu.nvidia.memory_clock_offset",
                "gpu.nvidia.core_clock_offset", "gaming.audio", "gaming.performance"):
        assert f"services.steam.gaming.{key.removeprefix('gaming.')}" in message
    panel = tomllib.loads((CORPUS / "ghostpanel__Boltfile.toml").read_text())
    with pytest.raises(SurgeError) as refused:
        gpu_wanted("gpanel-gpu", panel["services"]["gpanel-gpu"])
    assert "gpu.nvbind.performance_mode" in str(refused.value)
    assert "gpu.nvbind.wsl2_optimized" in str(refused.value)


# -- the config hash ----------------------------------------------------------------------


def test_the_hash_of_a_service_without_gpus_is_unchanged_and_gpu_changes_are_drift() -> None:
    plain = desired_state(Boltfile.loads('project = "arcade"\n[services.web]\n'
                                         'image = "busybox"\n')).services["web"]
    assert plain.gpu is None
    assert plain.config_hash == config_hash(plain.create, plain.networks)

    def hash_of(devices: str, level: str = "exclusive") -> str:
        return desired_state(_boltfile(
            f'[services.steam.gaming.gpu]\nisolation_level = "{level}"\n'
            f'[services.steam.gaming.gpu.nvbind]\ndevices = {devices}\n'
        )).services["steam"].config_hash

    first = hash_of('["gpu:0"]')
    assert first == hash_of('["gpu:0"]')  # stable
    assert len({first, hash_of('["gpu:1"]'), hash_of('["gpu:0"]', "shared"),
                hash_of('["gpu:all"]')}) == 4
    without = desired_state(_boltfile("", extra="")).services["steam"]
    bare = desired_state(Boltfile.loads('project = "arcade"\n[services.steam]\n'
                                        'image = "busybox"\n')).services["steam"]
    assert without.config_hash != bare.config_hash  # adding a GPU recreates


# -- the allocator's batch reservation --------------------------------------------------


def test_reserve_all_is_all_or_nothing_and_a_check_changes_nothing(
        allocator: GpuAllocator) -> None:
    allocator.allocate("other", GpuRequest(gpus=("1",)))
    wanted = [("arcade_steam_1", GpuRequest()), ("arcade_steam_2", GpuRequest())]
    with pytest.raises(GpuUnavailable, match=r"no GPU free for arcade_steam_2 .* GPU 0 "
                                             r"\(NVIDIA L4\) held by arcade_steam_1.*GPU 1 "
                                             r"\(NVIDIA L4\) held by other"):
        allocator.reserve_all(wanted)
    assert [a.workload for a in allocator.allocations()] == ["other"]
    made, replaced = allocator.reserve_all(wanted[:1], keep=False)
    assert [(a.workload, a.unit) for a in made] == [("arcade_steam_1", L4_0)]
    assert replaced == []
    assert [a.workload for a in allocator.allocations()] == ["other"]  # only checked


def test_reserve_all_replaces_a_workload_s_units_and_restore_undoes_it(
        allocator: GpuAllocator) -> None:
    (old,) = allocator.allocate("arcade_steam", GpuRequest(gpus=("0",)))
    allocator.bind("arcade_steam", "a" * 64)
    # A recreate that moves to GPU 1; the old unit is free again at once.
    made, replaced = allocator.reserve_all([("arcade_steam", GpuRequest(gpus=("1",)))])
    assert [a.unit for a in made] == [L4_1]
    assert [(a.unit, a.container_id) for a in replaced] == [(L4_0, "a" * 64)]
    assert [a.unit for a in allocator.allocations("arcade_steam")] == [L4_1]
    assert allocator.allocate("web", GpuRequest(gpus=("0",)))  # GPU 0 is free
    allocator.release("web")
    allocator.discard(made)
    allocator.restore(replaced)
    (back,) = allocator.allocations("arcade_steam")
    assert (back.unit, back.slot, back.container_id) == (old.unit, old.slot, "a" * 64)


def test_release_container_releases_only_what_is_bound_to_it(allocator: GpuAllocator) -> None:
    allocator.allocate("arcade_steam", GpuRequest(gpus=("0",)))
    allocator.allocate("arcade_web", GpuRequest(gpus=("1",)))
    allocator.bind("arcade_steam", "b" * 64)
    assert allocator.release_container("b" * 11) == []  # too short to be sure
    released = allocator.release_container("b" * 12)
    assert [a.workload for a in released] == ["arcade_steam"]
    assert [a.workload for a in allocator.allocations()] == ["arcade_web"]


async def test_the_default_allocator_refuses_an_engine_on_another_host() -> None:
    from ghostpanel_kernel import connect
    from ghostpanel_kernel.surge._gpus import local_allocator

    far = connect("tcp://gpu-box.example:2375", name="far")
    try:
        with pytest.raises(SurgeError, match=r"'far' \(tcp://gpu-box.example:2375\) is an "
                                             "engine on another host"):
            local_allocator(far)
    finally:
        await far.aclose()

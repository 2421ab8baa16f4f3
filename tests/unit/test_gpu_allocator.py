"""The GPU allocator on the simulated inventory: policies, overcommit, persistence, MIG,
release on container removal, the engine specs and the Boltfile mapping."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.gpus import (
    GpuAllocator,
    GpuError,
    GpuRequest,
    GpuRequestError,
    GpuSpecError,
    GpuUnavailable,
    Inventory,
    engine_spec,
    read_inventory,
    request_from_gpu_table,
    request_from_service,
)
from ghostpanel_kernel.store import open_database
from tests.nvml_data import L4_0, L4_1, MIXED
from tests.unit.gpu_fixtures import (  # noqa: F401 (fixtures)
    allocator_fixture,
    database_fixture,
    inventory_fixture,
)

DATA = Path(__file__).parent.parent / "data"


def test_exclusive_takes_a_whole_gpu_and_refuses_a_second_holder(
        allocator: GpuAllocator) -> None:
    (first,) = allocator.allocate("steam", GpuRequest(gpus=("0",)))
    assert (first.unit, first.policy, first.slot, first.simulated) == (L4_0, "exclusive", 0,
                                                                        True)
    for policy in ("exclusive", "shared", "time-sliced"):
        with pytest.raises(GpuUnavailable, match=r"GPU 0 \(NVIDIA L4\) held by steam "
                                                 r"\(exclusive\)") as refused:
            allocator.allocate(f"other-{policy}", GpuRequest(gpus=(L4_0,), policy=policy))
        assert refused.value.holders == {"GPU 0 (NVIDIA L4)": ["steam"]}


def test_count_spreads_over_free_gpus_and_never_overcommits(allocator: GpuAllocator) -> None:
    assert [a.gpu_index for a in allocator.allocate("a", GpuRequest(count=2))] == [0, 1]
    with pytest.raises(GpuUnavailable, match=r"no GPU free for b .exclusive, 1 needed.: "
                                             r"GPU 0 .NVIDIA L4. held by a"):
        allocator.allocate("b")
    with pytest.raises(GpuRequestError, match="asks for 3 GPUs but lab has 2"):
        allocator.allocate("c", GpuRequest(count=3))


def test_shared_takes_n_tenants_then_refuses_naming_them(allocator: GpuAllocator) -> None:
    request = GpuRequest(gpus=("1",), policy="shared", tenants=2)
    allocator.allocate("web", request)
    allocator.allocate("api", request)
    with pytest.raises(GpuUnavailable, match=r"held by api, web \(shared, 2/2 tenants\)"):
        allocator.allocate("batch", request)
    # A new tenant's looser limit does not raise the limit the holders agreed on.
    with pytest.raises(GpuUnavailable):
        allocator.allocate("batch", GpuRequest(gpus=("1",), policy="shared", tenants=8))
    assert sorted(a.slot for a in allocator.allocations()) == [0, 1]


def test_shared_and_time_sliced_never_mix_on_one_gpu(allocator: GpuAllocator) -> None:
    allocator.allocate("web", GpuRequest(gpus=("1",), policy="shared"))
    with pytest.raises(GpuUnavailable, match="shared"):
        allocator.allocate("nb", GpuRequest(gpus=("1",), policy="time-sliced"))
    with pytest.raises(GpuUnavailable, match="web"):
        allocator.allocate("game", GpuRequest(gpus=("1",), policy="exclusive"))


def test_time_sliced_default_is_eight_tenants(allocator: GpuAllocator) -> None:
    for number in range(8):
        allocator.allocate(f"nb{number}", GpuRequest(gpus=("0",), policy="time-sliced"))
    with pytest.raises(GpuUnavailable, match="8/8 tenants"):
        allocator.allocate("nb8", GpuRequest(gpus=("0",), policy="time-sliced"))


def test_shared_spreads_tenants_to_the_least_held_gpu(allocator: GpuAllocator) -> None:
    placed = [allocator.allocate(n, GpuRequest(policy="shared"))[0].gpu_index
              for n in ("a", "b", "c")]
    assert placed == [0, 1, 0]


def test_mig_one_instance_per_tenant(allocator: GpuAllocator) -> None:
    first = allocator.allocate("ml1", GpuRequest(policy="mig"))[0]
    assert (first.gpu_index, first.mig_index, first.cdi_name) == (2, 0, "nvidia.com/gpu=2:0")
    second = allocator.allocate("ml2", GpuRequest(policy="mig", gpus=("2",)))[0]
    assert second.mig_index == 1
    named = allocator.allocate("ml3", GpuRequest(
        policy="mig", gpus=("MIG-a100a100-0000-4000-8000-000000000c02",)))[0]
    assert named.mig_index == 2
    with pytest.raises(GpuUnavailable, match=r"no MIG device free for ml4.*GPU 2 MIG 0 held "
                                             r"by ml1 .mig."):
        allocator.allocate("ml4", GpuRequest(policy="mig"))


def test_mig_policy_needs_mig_mode_and_mig_gpus_need_the_mig_policy(
        allocator: GpuAllocator) -> None:
    with pytest.raises(GpuRequestError, match=r"GPU 0 \(NVIDIA L4\) is not in MIG mode"):
        allocator.allocate("ml", GpuRequest(policy="mig", gpus=("0",)))
    with pytest.raises(GpuRequestError, match=r"GPU 2 .* is in MIG mode"):
        allocator.allocate("game", GpuRequest(gpus=("2",)))


def test_mig_instances_that_disappear_are_no_longer_offered(database: Engine) -> None:
    import json

    data = json.loads(MIXED.read_text())
    data["gpus"][2]["mig_instances"] = data["gpus"][2]["mig_instances"][:1]  # re-partitioned
    from ghostpanel_kernel.gpus import SimulatedNvml

    smaller = read_inventory(SimulatedNvml(data), source="x", host="lab")
    allocator = GpuAllocator(smaller, engine=database)
    allocator.allocate("ml1", GpuRequest(policy="mig"))
    with pytest.raises(GpuUnavailable):
        allocator.allocate("ml2", GpuRequest(policy="mig"))


def test_unknown_gpu_names_the_known_ones(allocator: GpuAllocator) -> None:
    with pytest.raises(GpuRequestError, match=f"lab has no GPU '7'; its GPUs are 0 .{L4_0}."):
        allocator.allocate("x", GpuRequest(gpus=("7",)))


def test_allocations_survive_a_fresh_allocator_on_the_same_store(
        inventory: Inventory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    with GpuAllocator(inventory, database_url=url) as before:
        before.allocate("steam", GpuRequest(gpus=("0",)))
    with GpuAllocator(inventory, database_url=url) as after:  # the agent restarted
        assert [(a.workload, a.unit) for a in after.allocations()] == [("steam", L4_0)]
        with pytest.raises(GpuUnavailable, match="steam"):
            after.allocate("other", GpuRequest(gpus=("0",)))
        assert [a.workload for a in after.release("steam")] == ["steam"]
        assert after.allocations() == []


def test_same_request_again_is_idempotent_another_policy_is_refused(
        allocator: GpuAllocator) -> None:
    made = allocator.allocate("svc", GpuRequest(policy="shared"))
    assert allocator.allocate("svc", GpuRequest(policy="shared")) == made
    with pytest.raises(GpuRequestError, match=r"svc already holds GPU 0 .shared.; release"):
        allocator.allocate("svc", GpuRequest(policy="exclusive"))


def test_release_frees_for_the_next_and_unknown_release_is_empty(
        allocator: GpuAllocator) -> None:
    allocator.allocate("a", GpuRequest(gpus=("0",)))
    assert allocator.release("nobody") == []
    allocator.release("a")
    assert allocator.allocate("b", GpuRequest(gpus=("0",)))[0].workload == "b"


def test_no_driver_refuses_allocation_with_the_reason(database: Engine) -> None:
    empty = Inventory(state="no-driver", host="h", message="no NVIDIA driver on h (x)")
    with pytest.raises(GpuError, match="cannot allocate a GPU for a: no NVIDIA driver on h"):
        GpuAllocator(empty, engine=database).allocate("a")


def test_simulated_and_real_reservations_never_mix(inventory: Inventory,
                                                    database: Engine) -> None:
    GpuAllocator(inventory, engine=database).allocate("sim", GpuRequest(gpus=("0",)))
    real = Inventory(state="ok", host="lab", gpus=inventory.gpus)  # same GPUs, not simulated
    assert GpuAllocator(real, engine=database).allocations() == []


def test_reconcile_releases_only_bound_reservations_of_removed_containers(
        allocator: GpuAllocator) -> None:
    allocator.allocate("kept", GpuRequest(gpus=("0",)))
    allocator.allocate("gone", GpuRequest(gpus=("1",)))
    allocator.allocate("pending", GpuRequest(policy="mig"))  # not created yet
    allocator.bind("kept", "a" * 64)
    allocator.bind("gone", "b" * 64)
    released = allocator.reconcile(["a" * 12, "c" * 64])
    assert [a.workload for a in released] == ["gone"]
    assert sorted(a.workload for a in allocator.allocations()) == ["kept", "pending"]


def test_removal_event_releases_the_container_s_gpus(allocator: GpuAllocator) -> None:
    allocator.allocate("steam", GpuRequest(gpus=("0",)))
    allocator.bind("steam", "d" * 64)
    start = SimpleNamespace(type="container", action="start", actor_id="d" * 64)
    assert allocator.release_for_event(start) == []
    remove = SimpleNamespace(type="container", action="remove", actor_id="d" * 64)
    assert [a.workload for a in allocator.release_for_event(remove)] == ["steam"]
    assert allocator.allocations() == []


# -- engine specs ----------------------------------------------------------------------


def test_docker_spec_uses_the_nvidia_driver_and_uuids(allocator: GpuAllocator) -> None:
    held = allocator.allocate("steam", GpuRequest(count=2))
    spec = engine_spec(held, kind="docker", version="27.3.1")
    assert spec.device_requests() == [{"Driver": "nvidia", "DeviceIDs": [L4_0, L4_1],
                                       "Capabilities": [["gpu"]]}]
    body = spec.apply({"Image": "x", "HostConfig": {}})
    assert body["HostConfig"]["DeviceRequests"][0]["Driver"] == "nvidia"
    assert body["Labels"]["io.ghostpanel.gpu.workload"] == "steam"


def test_podman_5_4_spec_uses_cdi_names(allocator: GpuAllocator) -> None:
    held = allocator.allocate("ml", GpuRequest(policy="mig", gpus=("2",)))
    spec = engine_spec(held, kind="podman", version="5.4.0")
    assert spec.device_requests() == [{"Driver": "cdi", "DeviceIDs": ["nvidia.com/gpu=2:0"]}]


@pytest.mark.parametrize("version", ["4.3.1", "4.9.4", "5.3.2"])
def test_older_podman_gets_libpod_devices_and_refuses_a_compat_body(
        allocator: GpuAllocator, version: str) -> None:
    spec = engine_spec(allocator.allocate("g", GpuRequest(gpus=("1",))), kind="podman",
                       version=version)
    assert spec.mode == "libpod-devices"
    assert spec.libpod_devices() == [{"path": "nvidia.com/gpu=1"}]
    with pytest.raises(GpuSpecError, match=r"ignores DeviceRequests .podman#22645."):
        spec.apply({"Image": "x"})


@pytest.mark.parametrize("kind", ["bolt", "unknown"])
def test_other_engines_are_refused(allocator: GpuAllocator, kind: str) -> None:
    with pytest.raises(GpuSpecError, match="refusing rather than starting g without its GPU"):
        engine_spec(allocator.allocate("g"), kind=kind, version="1.0")


def test_inspect_without_the_device_request_is_refused(allocator: GpuAllocator) -> None:
    spec = engine_spec(allocator.allocate("g"), kind="podman", version="5.4.0")
    attrs = {"Config": {"Labels": spec.labels()}, "HostConfig": {"DeviceRequests": None}}
    with pytest.raises(GpuSpecError, match=r"dropped the GPU request for nvidia.com/gpu=0"):
        spec.check_inspect(attrs)
    attrs["HostConfig"]["DeviceRequests"] = spec.device_requests()
    spec.check_inspect(attrs)


# -- the Boltfile's gaming.gpu ----------------------------------------------------------


@pytest.mark.parametrize(("table", "expected"), [
    ({"nvbind": {"devices": ["gpu:0"]}}, GpuRequest(gpus=("0",))),
    ({"isolation_level": "shared", "nvbind": {"devices": ["gpu:0", "gpu:1"]}},
     GpuRequest(gpus=("0", "1"), policy="shared")),
    ({"isolation_level": "virtual"}, GpuRequest(policy="time-sliced")),
    ({"nvbind": {"devices": ["gpu:all"]}, "passthrough": True}, GpuRequest(all_gpus=True)),
    ({"aiml": {"mig_enabled": True}, "isolation_level": "exclusive"}, GpuRequest(policy="mig")),
    ({"nvidia": {"device": 1}}, GpuRequest(gpus=("1",))),
    ({"runtime": "amd", "amd": {"device": 0}}, None),
])
def test_gpu_table_maps_onto_requests(table: dict[str, object],
                                      expected: GpuRequest | None) -> None:
    assert request_from_gpu_table(table) == expected


def test_unplaceable_nvbind_device_is_refused_naming_the_key() -> None:
    with pytest.raises(GpuRequestError, match=r"services.mon.gaming.gpu.nvbind.devices: "
                                              r"'gpu:\*'"):
        request_from_gpu_table({"nvbind": {"devices": ["gpu:*"]}}, service="mon")


def test_corpus_boltfile_service_maps_and_allocates(allocator: GpuAllocator) -> None:
    boltfile = Boltfile.load(DATA / "bolt-corpus" / "ghostpanel__Boltfile.toml")
    services = boltfile.to_dict()["services"]
    # gpanel-gpu asks for "gpu:*", which Bolt's validator already warns about.
    with pytest.raises(GpuRequestError, match="gpu:\\*"):
        request_from_service(services["gpanel-gpu"], name="gpanel-gpu")
    assert request_from_service(services["redis"], name="redis") is None
    request = request_from_service({"gaming": {"enabled": True, "gpu": {
        "isolation_level": "shared", "nvbind": {"devices": ["gpu:all"]}}}})
    assert request is not None
    assert [a.gpu_index for a in allocator.allocate("render", request)] == [0, 1]


def test_a_store_made_before_gpu_allocations_gains_the_table(
        inventory: Inventory, tmp_path: Path) -> None:
    from sqlalchemy import inspect, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = open_database(url)
    older = ("environments", "settings", "environment_health", "agent_tokens")
    with engine.begin() as connection:  # as a database of the previous version
        for table in inspect(connection).get_table_names():
            if table not in older:  # gpu_allocations, and what migrations added later
                connection.execute(text(f"DROP TABLE {table}"))
    engine.dispose()
    with GpuAllocator(inventory, database_url=url) as allocator:
        assert allocator.allocate("steam")[0].gpu_index == 0
    reopened = open_database(url)
    assert "gpu_allocations" in inspect(reopened).get_table_names()
    reopened.dispose()


def test_a_slot_taken_between_read_and_insert_is_read_again(
        inventory: Inventory, database: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostpanel_kernel.gpus import _allocator

    first = GpuAllocator(inventory, engine=database)
    other = GpuAllocator(inventory, engine=database)
    real_accepts = _allocator._accepts
    raced: list[bool] = []

    def accepts_after_a_race(holders: object, request: GpuRequest) -> bool:
        if not raced:  # another process takes GPU 0 right after our read
            raced.append(True)
            other.allocate("quicker", GpuRequest(gpus=("0",)))
        return real_accepts(holders, request)  # type: ignore[arg-type]

    monkeypatch.setattr(_allocator, "_accepts", accepts_after_a_race)
    with pytest.raises(GpuUnavailable, match=r"held by quicker \(exclusive\)"):
        first.allocate("slower", GpuRequest(gpus=("0",)))
    assert [a.workload for a in first.allocations()] == ["quicker"]


def test_one_gpu_named_twice_is_refused(allocator: GpuAllocator) -> None:
    with pytest.raises(GpuRequestError, match="name one GPU twice"):
        allocator.allocate("x", GpuRequest(gpus=("0", L4_0)))
    assert allocator.allocations() == []

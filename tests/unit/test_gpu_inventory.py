"""The GPU inventory on the simulated NVML and on an NVML double for the error paths.

The double is a :class:`SimulatedNvml` whose functions raise ``pynvml``'s own
``NVMLError`` codes where a real driver does: no driver, a GPU that falls off the bus
in the middle of the listing, MIG devices destroyed while they are read.
"""

from __future__ import annotations

import ctypes.util
import json
from pathlib import Path
from typing import Any

import pynvml
import pytest

from ghostpanel_kernel.gpus import (
    SIMULATE_VARIABLE,
    SimulatedNvml,
    SimulationError,
    load_simulation,
    read_inventory,
)
from ghostpanel_kernel.gpus._cgroup import container_id_from_cgroup, container_of_pid
from tests.nvml_data import MIXED, NVML_DATA

MINIMAL = NVML_DATA / "minimal.json"


def simulated(path: Path = MIXED) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


class NvmlDouble(SimulatedNvml):
    """NVML that fails as told: ``function name = (code name, calls to let pass[, how
    many calls fail then; default all])``."""

    def __init__(self, data: dict[str, Any], **failures: tuple[Any, ...]) -> None:
        super().__init__(data)
        self.failures = failures
        self.calls: dict[str, int] = {}
        self.shutdowns = 0

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if not name.startswith("nvml"):
            return value
        failures = super().__getattribute__("failures")
        calls = super().__getattribute__("calls")

        def call(*args: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            if name in failures:
                code, passes, *times = failures[name]
                if passes < calls[name] <= passes + (times[0] if times else 1 << 30):
                    raise pynvml.NVMLError(getattr(pynvml, code))
            return value(*args)
        return call


def test_simulation_of_the_issue_reads_as_one_l4_labelled_simulated() -> None:
    inventory = read_inventory(load_simulation(MINIMAL), source=str(MINIMAL), host="lab")
    assert inventory.state == "ok" and inventory.simulated and inventory.label == "simulated"
    (gpu,) = inventory.gpus
    assert (gpu.index, gpu.name, gpu.memory_total_mib) == (0, "NVIDIA L4", 23034)
    # Readings the file leaves out answer "Not Supported", as on a real card: no
    # value and no problem line.
    assert gpu.temperature_c is None and gpu.power_w is None and gpu.problems == ()
    assert inventory.to_dict()["label"] == "simulated"


def test_simulation_reports_every_reading_processes_and_mig_instances() -> None:
    inventory = read_inventory(load_simulation(MIXED), source=str(MIXED), host="lab")
    l4, _, a100 = inventory.gpus
    assert (l4.memory_used_mib, l4.utilization_gpu_percent, l4.temperature_c,
            l4.power_w, l4.power_limit_w) == (1210, 37, 51, 34.5, 72.0)
    assert l4.processes[0].pid == 4242 and l4.processes[0].container_id.startswith("3f5c9e")
    assert a100.mig_enabled and [m.index for m in a100.mig_instances] == [0, 1, 2]
    assert a100.mig_instances[1].uuid.endswith("c01")
    assert a100.mig_instances[2].gpu_instance_id == 13
    assert inventory.driver_version == "550.90.07"
    assert inventory.find("GPU-A100A100-0000-4000-8000-00000000000C") is a100
    assert inventory.find(1) is inventory.gpus[1]


def test_environment_variable_switches_to_the_simulation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIMULATE_VARIABLE, str(MIXED))
    inventory = read_inventory(host="lab")
    assert inventory.simulated and inventory.source == str(MIXED) and len(inventory.gpus) == 3


def test_broken_simulation_is_an_error_state_naming_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SimulationError, match=r"broken.json: gpus\[0\] has no 'uuid'"):
        load_simulation(NVML_DATA / "broken.json")
    monkeypatch.setenv(SIMULATE_VARIABLE, str(NVML_DATA / "broken.json"))
    inventory = read_inventory(host="lab")
    assert inventory.state == "error" and "has no 'uuid'" in inventory.message


@pytest.mark.parametrize("code", ["NVML_ERROR_LIBRARY_NOT_FOUND",
                                  "NVML_ERROR_DRIVER_NOT_LOADED"])
def test_no_driver_is_a_clear_state_not_an_exception(code: str) -> None:
    nvml = NvmlDouble(simulated(), nvmlInit=(code, 0))
    inventory = read_inventory(nvml, host="gpu-7")
    assert inventory.state == "no-driver" and inventory.gpus == ()
    assert inventory.message.startswith("no NVIDIA driver on gpu-7 (")


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None,
                    reason="this machine has an NVIDIA driver")
def test_real_nvml_on_this_machine_reports_no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machines the tests run on have no NVIDIA driver: the real pynvml path.
    monkeypatch.delenv(SIMULATE_VARIABLE, raising=False)
    inventory = read_inventory(host="here")
    assert inventory.state == "no-driver" and not inventory.simulated
    assert "no NVIDIA driver on here" in inventory.message


def test_other_init_failure_is_an_error_state_with_nvml_reason() -> None:
    nvml = NvmlDouble(simulated(), nvmlInit=("NVML_ERROR_NO_PERMISSION", 0))
    inventory = read_inventory(nvml, host="h")
    assert inventory.state == "error"
    assert "Insufficient Permissions" in inventory.message
    assert "NVML_ERROR_NO_PERMISSION" in inventory.message


def test_gpu_lost_mid_listing_keeps_the_others_and_says_which() -> None:
    # GPU 0's UUID reads, GPU 1's does not: it fell off the bus in between.
    nvml = NvmlDouble(simulated(), nvmlDeviceGetUUID=("NVML_ERROR_GPU_IS_LOST", 1))
    inventory = read_inventory(nvml, host="h")
    assert inventory.state == "ok"
    assert [g.index for g in inventory.gpus] == [0]
    assert any("GPU 1 was lost" in p for p in inventory.problems)
    assert nvml.calls["nvmlShutdown"] == 1  # the session is closed all the same


def test_gpu_lost_while_its_readings_are_taken() -> None:
    nvml = NvmlDouble(simulated(), nvmlDeviceGetTemperature=("NVML_ERROR_GPU_IS_LOST", 1, 1))
    inventory = read_inventory(nvml, host="h")
    assert [g.index for g in inventory.gpus] == [0, 2]  # GPU 1 lost at its temperature
    assert any("GPU 1 was lost while its temperature" in p for p in inventory.problems)


def test_every_gpu_lost_is_an_error_state() -> None:
    nvml = NvmlDouble(simulated(), nvmlDeviceGetHandleByIndex=("NVML_ERROR_GPU_IS_LOST", 0))
    inventory = read_inventory(nvml, host="h")
    assert inventory.state == "error" and "no GPU of h could be read" in inventory.message


def test_a_failing_reading_is_a_problem_of_that_gpu_only() -> None:
    nvml = NvmlDouble(simulated(), nvmlDeviceGetPowerUsage=("NVML_ERROR_UNKNOWN", 0))
    inventory = read_inventory(nvml, host="h")
    assert all(g.power_w is None for g in inventory.gpus)
    assert "power: Unknown Error" in inventory.gpus[0].problems


def test_mig_device_destroyed_while_listing_is_left_out() -> None:
    # Three MIG slots counted; the second is gone by the time it is read (NOT_FOUND).
    class MigChanges(NvmlDouble):
        def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: int) -> Any:
            if index == 1:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
            return super().nvmlDeviceGetMigDeviceHandleByIndex(handle, index)

    inventory = read_inventory(MigChanges(simulated()), host="h")
    a100 = inventory.gpus[2]
    assert [m.index for m in a100.mig_instances] == [0, 2] and a100.problems == ()


def test_mig_mode_change_pending_is_reported() -> None:
    data = simulated()
    data["gpus"][1]["mig_pending"] = True  # enabled, takes effect after a GPU reset
    gpu = read_inventory(SimulatedNvml(data), host="h").gpus[1]
    assert not gpu.mig_enabled and gpu.mig_pending is True and gpu.mig_instances == ()


def test_no_gpu_is_its_own_state() -> None:
    inventory = read_inventory(SimulatedNvml({"gpus": []}), host="h")
    assert inventory.state == "no-gpu" and inventory.message == "no NVIDIA GPU on h"


def test_unavailable_process_memory_is_none() -> None:
    class NoMemory(SimulatedNvml):
        def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:
            entries = super().nvmlDeviceGetComputeRunningProcesses(handle)
            for entry in entries:
                entry.usedGpuMemory = (1 << 64) - 1  # NVML_VALUE_NOT_AVAILABLE
            return entries

    gpu = read_inventory(NoMemory(simulated()), host="h").gpus[0]
    assert gpu.processes[0].used_memory_mib is None


@pytest.mark.parametrize(("text", "expected"), [
    ("0::/machine.slice/libpod-" + "ab" * 32 + ".scope", "ab" * 32),
    ("0::/machine.slice/libpod-conmon-" + "ab" * 32 + ".scope", None),
    ("12:memory:/docker/" + "cd" * 32, "cd" * 32),
    ("0::/system.slice/docker-" + "ef" * 32 + ".scope/init", "ef" * 32),
    ("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-"
     + "12" * 32 + ".scope/container", "12" * 32),
    ("0::/user.slice/user-1000.slice/session-3.scope", None),
])
def test_container_id_from_cgroup(text: str, expected: str | None) -> None:
    assert container_id_from_cgroup(text) == expected


def test_container_of_pid_reads_proc(tmp_path: Path) -> None:
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "cgroup").write_text("0::/machine.slice/libpod-" + "9a" * 32 + ".scope\n")
    assert container_of_pid(77, proc=str(tmp_path)) == "9a" * 32
    assert container_of_pid(78, proc=str(tmp_path)) is None

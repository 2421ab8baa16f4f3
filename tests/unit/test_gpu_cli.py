"""``ghostpanel gpu`` through the real ``ghostpanel`` process, on the simulated NVML and
a temporary GHOSTPANEL_HOME (and once on this machine's real NVML, which has no driver)."""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.agent_process import ghostpanel_command
from tests.nvml_data import MIXED, NVML_DATA


def gpu_cli(home: Path, *args: str, simulate: Path | None = MIXED
            ) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment.pop("GHOSTPANEL_DATABASE_URL", None)
    environment.pop("GHOSTPANEL_GPU_SIMULATE", None)
    if simulate is not None:
        environment["GHOSTPANEL_GPU_SIMULATE"] = str(simulate)
    return subprocess.run(ghostpanel_command(home, "gpu", *args), capture_output=True,
                          text=True, env=environment, timeout=60, check=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_ls_shows_every_gpu_and_mig_device_labelled_simulated(home: Path) -> None:
    result = gpu_cli(home, "ls")
    assert result.returncode == 0, result.stderr
    first, *rows = result.stdout.splitlines()
    assert "simulated" in first and "driver 550.90.07" in first
    assert any(r.startswith("0 ") and "NVIDIA L4" in r and "free" in r for r in rows)
    assert any(r.startswith("2:1 ") and "2g.10gb" in r for r in rows)
    assert "GPU 0: PID 4242 in 3f5c9e0d1b2a" in result.stdout


def test_ls_json_is_labelled_and_lists_allocations(home: Path) -> None:
    assert gpu_cli(home, "allocate", "steam", "--gpu", "1").returncode == 0
    data = json.loads(gpu_cli(home, "ls", "--json").stdout)
    assert data["simulated"] is True and data["label"] == "simulated"
    assert [g["index"] for g in data["gpus"]] == [0, 1, 2]
    assert [(a["workload"], a["gpu_index"]) for a in data["allocations"]] == [("steam", 1)]


def test_allocate_until_none_is_free_then_exit_1_naming_holders(home: Path) -> None:
    made = gpu_cli(home, "allocate", "steam", "--count", "2", "--json")
    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)
    assert data["simulated"] is True
    assert [a["gpu_index"] for a in data["allocations"]] == [0, 1]
    refused = gpu_cli(home, "allocate", "quake")
    assert refused.returncode == 1
    assert "no GPU free for quake" in refused.stderr
    assert "GPU 0 (NVIDIA L4) held by steam (exclusive)" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_shared_and_mig_then_release(home: Path) -> None:
    shared = gpu_cli(home, "allocate", "web", "--policy", "shared", "--tenants", "1",
                     "--gpu", "0")
    assert shared.returncode == 0 and "reserved GPU 0" in shared.stdout
    assert "simulated" in shared.stdout
    mig = gpu_cli(home, "allocate", "ml", "--policy", "mig")
    assert mig.returncode == 0 and "GPU 2 MIG 0" in mig.stdout
    full = gpu_cli(home, "allocate", "api", "--policy", "shared", "--gpu", "0")
    assert full.returncode == 1 and "held by web (shared, 1/1 tenants)" in full.stderr
    released = gpu_cli(home, "release", "web", "--json")
    assert json.loads(released.stdout)["released"][0]["workload"] == "web"
    assert gpu_cli(home, "allocate", "api", "--policy", "shared", "--gpu", "0").returncode == 0
    again = gpu_cli(home, "release", "web")
    assert again.returncode == 0 and "web held no GPU" in again.stdout


def test_impossible_requests_exit_2(home: Path) -> None:
    unknown = gpu_cli(home, "allocate", "x", "--gpu", "9")
    assert unknown.returncode == 2 and "has no GPU '9'" in unknown.stderr
    not_mig = gpu_cli(home, "allocate", "x", "--policy", "mig", "--gpu", "0")
    assert not_mig.returncode == 2 and "not in MIG mode" in not_mig.stderr
    both = gpu_cli(home, "allocate", "x", "--gpu", "0", "--count", "1")
    assert both.returncode == 2
    broken = gpu_cli(home, "ls", simulate=NVML_DATA / "broken.json")
    assert broken.returncode == 2 and "has no 'uuid'" in broken.stderr


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None,
                    reason="this machine has an NVIDIA driver")
def test_without_a_driver_ls_says_so_and_allocate_refuses(home: Path) -> None:
    listing = gpu_cli(home, "ls", simulate=None)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("no NVIDIA driver on ")
    assert "simulated" not in listing.stdout
    data = json.loads(gpu_cli(home, "ls", "--json", simulate=None).stdout)
    assert data["state"] == "no-driver" and data["simulated"] is False
    refused = gpu_cli(home, "allocate", "steam", simulate=None)
    assert refused.returncode == 1 and "no NVIDIA driver" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_reservations_persist_across_processes_in_the_same_home(home: Path) -> None:
    assert gpu_cli(home, "allocate", "steam", "--gpu", "0").returncode == 0
    other = gpu_cli(home, "allocate", "quake", "--gpu", "0")
    assert other.returncode == 1 and "held by steam" in other.stderr
    fresh = gpu_cli(home.parent / "other-home", "allocate", "quake", "--gpu", "0")
    assert fresh.returncode == 0


def test_processes_racing_for_one_gpu_never_overcommit_it(home: Path) -> None:
    # Six `ghostpanel gpu allocate` at the same moment on one store: exactly one wins
    # the exclusive GPU 0, and every other names it as the holder.
    environment = dict(os.environ, GHOSTPANEL_GPU_SIMULATE=str(MIXED))
    environment.pop("GHOSTPANEL_DATABASE_URL", None)
    assert gpu_cli(home, "ls").returncode == 0  # the store exists before the race
    racers = [subprocess.Popen(ghostpanel_command(home, "gpu", "allocate", f"w{n}",
                                                  "--gpu", "0"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment) for n in range(6)]
    outcomes = [(racer.wait(timeout=90), *racer.communicate()) for racer in racers]
    winners = [out for code, out, _ in outcomes if code == 0]
    assert len(winners) == 1, outcomes
    winner = winners[0].split(" for ")[1].split()[0]
    for code, _, err in outcomes:
        if code != 0:
            assert code == 1 and f"held by {winner} (exclusive)" in err, err

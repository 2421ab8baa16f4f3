"""bench/gpu_device_check.py, the script for a lent GPU machine, runs here on a
simulation: every check passes, fast, and the output says it was simulated."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def test_device_check_script_passes_on_the_simulation_in_seconds() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_device_check.py"), "--simulate",
         str(ROOT / "tests" / "data" / "nvml" / "two-l4-one-a100-mig.json")],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SIMULATION (not a real GPU)" in result.stdout
    assert "15/15 checks passed" in result.stdout
    assert "one MIG device per tenant: nvidia.com/gpu=2:0" in result.stdout
    assert time.monotonic() - started < 60


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None,
                    reason="this machine has an NVIDIA driver")
def test_device_check_script_fails_clearly_without_a_driver() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_device_check.py")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "FAIL  inventory read through the real NVML: state no-driver" in result.stdout
    assert "Traceback" not in result.stderr

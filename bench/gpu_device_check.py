"""Check the GPU kernel against a real NVIDIA GPU (run on a machine that has one).

    python bench/gpu_device_check.py [--simulate FILE]

``--simulate FILE`` runs the same checks on a simulation (tests/data/nvml/), to try the
script where there is no GPU; its output then says "simulated" and proves nothing
about a real GPU.

What it checks, each with PASS/FAIL on its own line:

1. the inventory reads through the real NVML (nvidia-ml-py), not a simulation: state
   ``ok``, every GPU with a name, a ``GPU-`` UUID, memory total/used, and what NVML
   gives of utilisation, temperature, power, processes and MIG mode/devices;
2. the allocator, on a throwaway store in a temporary directory, against those GPUs:
   an exclusive reservation of GPU 0, a second one refused naming its holder, release,
   two shared tenants on GPU 0 (``--tenants 2``) and a third refused, and, on a GPU in
   MIG mode, one MIG device per tenant;
3. the engine specs made from a real reservation (Docker: nvidia + the GPU's real UUID;
   Podman 5.4: CDI ``nvidia.com/gpu=0``; Podman 4.x: libpod ``devices``).

It creates no container and needs no engine. It finishes in a few seconds (NVML calls
take milliseconds; the whole script is bounded by a 60 s alarm). Exit status 0 when
every check passed, 1 otherwise. Paste its output into bench/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# (imported after the path above, so that it runs from a checkout without installing)
from ghostpanel_kernel.gpus import (
    GpuAllocator,
    GpuRequest,
    GpuUnavailable,
    engine_spec,
    load_simulation,
    read_inventory,
)

_results: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    _results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""),
          flush=True)
    return ok


def run(simulate: str | None) -> dict[str, Any]:
    os.environ.pop("GHOSTPANEL_GPU_SIMULATE", None)  # the real NVML unless --simulate
    started = time.monotonic()
    inventory = (read_inventory() if simulate is None
                 else read_inventory(load_simulation(simulate), source=simulate))
    took = time.monotonic() - started
    print(json.dumps(inventory.to_dict(), indent=1), flush=True)
    source = "a SIMULATION (not a real GPU)" if inventory.simulated else "the real NVML"
    check(f"inventory read through {source}", inventory.state == "ok",
          f"state {inventory.state} {inventory.message}".strip())
    check("inventory time under 5 s", took < 5, f"{took:.3f} s")
    if inventory.state != "ok":
        return {"inventory": inventory.to_dict()}
    for gpu in inventory.gpus:
        check(f"GPU {gpu.index} identity", gpu.uuid.startswith("GPU-") and bool(gpu.name),
              f"{gpu.name} {gpu.uuid}")
        check(f"GPU {gpu.index} memory", bool(gpu.memory_total_mib),
              f"{gpu.memory_used_mib}/{gpu.memory_total_mib} MiB")
        print(f"      util {gpu.utilization_gpu_percent}% temp {gpu.temperature_c}C "
              f"power {gpu.power_w}/{gpu.power_limit_w} W mig {gpu.mig_enabled} "
              f"({len(gpu.mig_instances)} devices) processes {len(gpu.processes)} "
              f"problems {list(gpu.problems)}", flush=True)
    with tempfile.TemporaryDirectory() as home, GpuAllocator(
            inventory, database_url=f"sqlite:///{home}/gpus.db") as allocator:
        whole = [g for g in inventory.gpus if not g.mig_enabled]
        if whole:
            target = str(whole[0].index)
            held = allocator.allocate("check-exclusive", GpuRequest(gpus=(target,)))
            check("exclusive allocate", held[0].unit == whole[0].uuid, held[0].unit)
            try:
                allocator.allocate("check-second", GpuRequest(gpus=(target,)))
                check("second holder refused", False, "was given the GPU")
            except GpuUnavailable as error:
                check("second holder refused", "check-exclusive" in str(error), str(error))
            for kind, version in (("docker", "27.3.1"), ("podman", "5.4.0"),
                                  ("podman", "4.3.1")):
                spec = engine_spec(held, kind=kind, version=version)
                print(f"      {kind} {version}: {json.dumps(spec.to_dict())}", flush=True)
            check("docker spec names the real UUID", engine_spec(
                held, kind="docker", version="27").device_ids == (whole[0].uuid,))
            check("release", len(allocator.release("check-exclusive")) == 1)
            shared = GpuRequest(gpus=(target,), policy="shared", tenants=2)
            allocator.allocate("check-a", shared)
            allocator.allocate("check-b", shared)
            try:
                allocator.allocate("check-c", shared)
                check("third shared tenant refused", False)
            except GpuUnavailable as error:
                check("third shared tenant refused", True, str(error))
        mig = [g for g in inventory.gpus if g.mig_instances]
        if mig:
            gpu = mig[0]
            units = [allocator.allocate(f"check-mig-{n}", GpuRequest(
                policy="mig", gpus=(str(gpu.index),)))[0] for n in range(len(gpu.mig_instances))]
            check("one MIG device per tenant", len({u.unit for u in units}) == len(units),
                  ", ".join(u.cdi_name for u in units))
        else:
            print("      (no GPU in MIG mode: MIG allocation not checked)", flush=True)
        check("store holds what was allocated", bool(allocator.allocations()) or not whole)
    return {"inventory": inventory.to_dict()}


def main() -> int:
    signal.alarm(60)  # the script must never hold a lent machine longer than this
    started = time.monotonic()
    simulate = sys.argv[2] if sys.argv[1:2] == ["--simulate"] and len(sys.argv) > 2 else None
    try:
        run(simulate)
    except Exception as error:  # a report, not a traceback, is what the operator needs
        check("no unexpected error", False, f"{type(error).__name__}: {error}")
    failed = [name for name, ok, _ in _results if not ok]
    print(f"{len(_results) - len(failed)}/{len(_results)} checks passed in "
          f"{time.monotonic() - started:.2f} s" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

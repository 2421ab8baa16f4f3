"""The recorded/simulated NVML inputs under ``tests/data/nvml`` that GPU tests share.

``MIXED`` (two L4s and an A100 in MIG mode) is the simulation most GPU tests run on;
``L4_0`` and ``L4_1`` are the UUIDs of its two L4s. See ``tests/data/nvml/README.md``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["L4_0", "L4_1", "MIXED", "NVML_DATA"]

NVML_DATA = Path(__file__).parent / "data" / "nvml"
MIXED = NVML_DATA / "two-l4-one-a100-mig.json"
L4_0 = "GPU-4a0b2c1e-0000-4000-8000-00000000000a"
L4_1 = "GPU-4a0b2c1e-0000-4000-8000-00000000000b"

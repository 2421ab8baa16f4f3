"""A Boltfile service's ``[gaming.gpu]`` table as an allocation request.

What Bolt's keys mean for the allocator (docs/gpus.md has the table):

- ``nvbind.devices``: ``["gpu:0", "gpu:1"]`` are those GPUs, ``["gpu:all"]`` every GPU;
  anything else (``"gpu:*"``) cannot be placed and is refused, as the validator warns.
- ``nvidia.device = N``: GPU N, when ``nvbind.devices`` is absent.
- The policy: ``aiml.mig_enabled = true`` → ``mig``; else ``isolation_level``
  ``"exclusive"`` → exclusive, ``"shared"`` → shared, ``"virtual"`` → time-sliced;
  ``passthrough = true`` → exclusive. Without any of them: exclusive, the safe default
  for a game server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._errors import GpuRequestError
from ._request import GpuRequest, Policy

__all__ = ["request_from_gpu_table", "request_from_service"]

_ISOLATION: dict[str, Policy] = {"exclusive": "exclusive", "shared": "shared",
                                 "virtual": "time-sliced"}


def request_from_gpu_table(gpu: Mapping[str, Any], *, service: str = "service"
                           ) -> GpuRequest | None:
    """The request a ``[services.NAME.gaming.gpu]`` table makes; None when it asks for
    no NVIDIA GPU (``runtime = "amd"``, or an empty table).

    Raises
    ------
    GpuRequestError
        A device or isolation level the allocator cannot place, naming the key.

    Examples
    --------
    >>> request_from_gpu_table({"isolation_level": "shared",
    ...                         "nvbind": {"devices": ["gpu:0"]}})
    GpuRequest(count=None, gpus=('0',), policy='shared', tenants=None, all_gpus=False)
    """
    if str(gpu.get("runtime", "")).lower() == "amd" or not gpu:
        return None
    where = f"services.{service}.gaming.gpu"
    nvbind = gpu.get("nvbind") or {}
    devices = nvbind.get("devices")
    gpus: tuple[str, ...] = ()
    all_gpus = False
    if devices is not None:
        for device in devices:
            match = re.fullmatch(r"gpu:([0-9]+|all)", str(device).strip())
            if match is None:
                raise GpuRequestError(f"{where}.nvbind.devices: {device!r} is not "
                                      '"gpu:<index>" or "gpu:all"; the allocator cannot '
                                      "place it")
            if match.group(1) == "all":
                all_gpus = True
            else:
                gpus += (match.group(1),)
        if all_gpus and gpus:
            raise GpuRequestError(f'{where}.nvbind.devices mixes "gpu:all" with single GPUs')
    elif (gpu.get("nvidia") or {}).get("device") is not None:
        gpus = (str(gpu["nvidia"]["device"]),)
    return GpuRequest(gpus=tuple(dict.fromkeys(gpus)), policy=_policy(gpu, where),
                      all_gpus=all_gpus)


def _policy(gpu: Mapping[str, Any], where: str) -> Policy:
    if (gpu.get("aiml") or {}).get("mig_enabled"):
        return "mig"
    level = gpu.get("isolation_level")
    if level is not None:
        policy = _ISOLATION.get(str(level).lower())
        if policy is None:
            raise GpuRequestError(f"{where}.isolation_level {level!r} is not one of "
                                  f"{', '.join(_ISOLATION)}")
        return policy
    return "exclusive"


def request_from_service(service: Mapping[str, Any], *, name: str = "service"
                         ) -> GpuRequest | None:
    """The request of a whole ``[services.NAME]`` table: its ``gaming.gpu`` table's,
    or None when it has none (or gaming is off)."""
    gaming = service.get("gaming") or {}
    if not gaming or gaming.get("enabled") is False or "gpu" not in gaming:
        return None
    return request_from_gpu_table(gaming["gpu"], service=name)

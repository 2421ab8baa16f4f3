"""How each engine is given the GPUs a workload holds.

What the engines do with a create request, checked against each (docs/gpus.md):

- Docker: ``HostConfig.DeviceRequests`` with ``Driver: "nvidia"`` and the units'
  UUIDs as ``DeviceIDs`` (the NVIDIA container toolkit's hook; UUIDs, since indices
  can change order between boots).
- Podman 5.4 and later: ``DeviceRequests`` with ``Driver: "cdi"`` and CDI names
  (``nvidia.com/gpu=0``, MIG ``nvidia.com/gpu=0:1``).
- Podman before 5.4 accepts ``DeviceRequests`` and drops them without a word
  (podman#22645; Podman 4.3 answers 201 and its inspect shows no request), so the
  container would start without its GPU. There GhostPanel creates through libpod's
  own API with ``devices: [{"path": "nvidia.com/gpu=0"}]``, which Podman resolves
  against the host's CDI specs when the container starts: a host without them fails
  the start with "unresolvable CDI devices", loudly.
- Any other engine (Bolt's compat server, an unknown one): refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._allocation import Allocation
from ._errors import GpuSpecError

__all__ = ["LABEL_GPU_DEVICES", "LABEL_GPU_WORKLOAD", "GpuEngineSpec", "engine_spec",
           "podman_takes_device_requests"]

#: Labels on a container created with a reservation: who it was made for, what it got.
LABEL_GPU_WORKLOAD = "io.ghostpanel.gpu.workload"
LABEL_GPU_DEVICES = "io.ghostpanel.gpu.devices"

#: The first Podman whose compat API passes CDI ``DeviceRequests`` on.
PODMAN_DEVICE_REQUESTS = (5, 4)

Mode = Literal["device-requests", "libpod-devices"]


def _version_tuple(text: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", text.split("-")[0])
    return tuple(int(n) for n in numbers[:3])


def podman_takes_device_requests(version: str) -> bool:
    """Whether Podman ``version`` honours compat ``DeviceRequests`` (5.4 and later).

    Examples
    --------
    >>> podman_takes_device_requests("4.3.1"), podman_takes_device_requests("5.4.0-dev")
    (False, True)
    """
    return _version_tuple(version)[:2] >= PODMAN_DEVICE_REQUESTS


@dataclass(frozen=True)
class GpuEngineSpec:
    """The GPU part of a container's create request for one engine.

    Attributes
    ----------
    engine
        ``"docker 27.1.1"``, ``"podman 4.3.1"``: what it was made for.
    mode
        ``device-requests`` (patch the compat body's ``HostConfig``) or
        ``libpod-devices`` (create through libpod with ``devices``).
    driver
        ``"nvidia"`` or ``"cdi"`` in device-requests mode.
    device_ids
        UUIDs (Docker) or CDI names (Podman).
    """

    engine: str
    mode: Mode
    device_ids: tuple[str, ...]
    driver: str | None = None
    workload: str = ""

    def device_requests(self) -> list[dict[str, Any]]:
        """``HostConfig.DeviceRequests`` (device-requests mode)."""
        request: dict[str, Any] = {"Driver": self.driver, "DeviceIDs": list(self.device_ids)}
        if self.driver == "nvidia":
            # Docker's nvidia hook acts only on requests with the "gpu" capability.
            request["Capabilities"] = [["gpu"]]
        return [request]

    def libpod_devices(self) -> list[dict[str, str]]:
        """libpod's ``devices`` (libpod-devices mode)."""
        return [{"path": name} for name in self.device_ids]

    def labels(self) -> dict[str, str]:
        """The labels that record the reservation on the container."""
        return {LABEL_GPU_WORKLOAD: self.workload, LABEL_GPU_DEVICES: ",".join(self.device_ids)}

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add the GPUs to a compat ``POST /containers/create`` body (in place; returned).

        Raises
        ------
        GpuSpecError
            In libpod-devices mode: a compat body would lose the GPUs there.
        """
        if self.mode != "device-requests":
            raise GpuSpecError(f"{self.engine} ignores DeviceRequests (podman#22645): the "
                               "GPUs must be given through libpod's devices")
        host = body.setdefault("HostConfig", {})
        host["DeviceRequests"] = [*(host.get("DeviceRequests") or []), *self.device_requests()]
        body["Labels"] = {**(body.get("Labels") or {}), **self.labels()}
        return body

    def check_inspect(self, attrs: dict[str, Any]) -> None:
        """Check that a created container really holds the GPUs.

        Raises
        ------
        GpuSpecError
            Its ``HostConfig.DeviceRequests`` lack the devices (device-requests mode),
            or its labels do not record them.
        """
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        if labels.get(LABEL_GPU_DEVICES) != ",".join(self.device_ids):
            raise GpuSpecError(f"{self.engine} created the container without GhostPanel's "
                               "GPU labels")
        if self.mode == "device-requests":
            given = [i for r in (attrs.get("HostConfig") or {}).get("DeviceRequests") or []
                     for i in r.get("DeviceIDs") or []]
            missing = [i for i in self.device_ids if i not in given]
            if missing:
                raise GpuSpecError(f"{self.engine} dropped the GPU request for "
                                   f"{', '.join(missing)}: the container would run "
                                   "without its GPU")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        data: dict[str, Any] = {"engine": self.engine, "mode": self.mode,
                                "device_ids": list(self.device_ids)}
        if self.mode == "device-requests":
            data["DeviceRequests"] = self.device_requests()
        else:
            data["devices"] = self.libpod_devices()
        return data


def engine_spec(allocations: Sequence[Allocation], *, kind: str,
                version: str) -> GpuEngineSpec:
    """The spec that gives ``allocations`` to an engine of ``kind`` and ``version``.

    Parameters
    ----------
    allocations
        One workload's reservations.
    kind, version
        As :class:`~ghostpanel_kernel.engine.EngineVersion` tells them
        (``"podman"``, ``"4.3.1"``).

    Raises
    ------
    GpuSpecError
        No allocations, or an engine GhostPanel cannot give GPUs to with a check.

    Examples
    --------
    >>> from ghostpanel_kernel.gpus import Allocation
    >>> held = [Allocation("steam", "GPU-a", 0, 0, "GPU-a", None, "exclusive", 1)]
    >>> engine_spec(held, kind="podman", version="5.4.2").device_requests()
    [{'Driver': 'cdi', 'DeviceIDs': ['nvidia.com/gpu=0']}]
    """
    if not allocations:
        raise GpuSpecError("the workload holds no GPU: allocate one first")
    workloads = {a.workload for a in allocations}
    if len(workloads) != 1:
        raise GpuSpecError(f"allocations of several workloads given: {sorted(workloads)}")
    workload = workloads.pop()
    engine = f"{kind} {version}"
    names = tuple(dict.fromkeys(a.cdi_name for a in allocations))
    if kind == "docker":
        uuids = tuple(dict.fromkeys(a.unit for a in allocations))
        return GpuEngineSpec(engine, "device-requests", uuids, "nvidia", workload)
    if kind == "podman":
        if podman_takes_device_requests(version):
            return GpuEngineSpec(engine, "device-requests", names, "cdi", workload)
        return GpuEngineSpec(engine, "libpod-devices", names, None, workload)
    raise GpuSpecError(f"GhostPanel cannot give GPUs to a {kind} engine ({engine}) in a "
                       f"way it can check; refusing rather than starting {workload} "
                       "without its GPU")

"""A service's ``[services.NAME.gaming]`` table: the GPUs it asks for, or a refusal.

Surge gives the engine what a gaming table asks for only where the engine can express
it: the NVIDIA GPUs of ``[gaming.gpu]`` (``nvbind.devices``, ``nvidia.device``,
``isolation_level``, ``passthrough``, ``aiml.mig_enabled``; see
:func:`~ghostpanel_kernel.gpus.request_from_gpu_table`), reserved through the GPU
allocator and handed to the engine as it honours them. Every other setting Bolt reads
there (Wine/Proton, audio, real-time scheduling, clock offsets, DLSS, an AMD GPU...)
needs a host-side runtime the engine has no field for, so a service that turns one on
is refused with its dotted key named, rather than deployed without it. A switch that is
off (``false``) or a setting that asks for nothing (``driver = "auto"``) is accepted:
it asks for nothing to be done. ``enabled = false`` turns the whole table off, as in Bolt.

The GPU kernel (and SQLAlchemy under it) is imported only for a service that has a
GPU table, so reading any other Boltfile stays cheap. See docs/gpus.md ("Surge services with GPUs").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ._errors import SurgeError

if TYPE_CHECKING:
    from ..gpus import GpuRequest

__all__ = ["describe_request", "gpu_wanted", "request_data"]

#: Switches of ``[gaming]`` and ``[gaming.gpu]`` that Surge reads itself.
_GAMING_USED: Final = frozenset({"enabled", "gpu", "gpu_passthrough", "nvidia_runtime"})
_GPU_USED: Final = frozenset({"runtime", "nvidia", "nvbind", "passthrough",
                              "isolation_level", "aiml"})
_NVIDIA_USED: Final = frozenset({"device", "cuda"})  # CUDA comes with the GPU: nothing to do
_NVBIND_USED: Final = frozenset({"devices", "driver"})
_AIML_USED: Final = frozenset({"mig_enabled"})


def describe_request(request: GpuRequest) -> str:
    """A request in words, for a plan: ``GPU 0, exclusive``, ``every GPU, shared``.

    Examples
    --------
    >>> from ghostpanel_kernel.gpus import GpuRequest
    >>> describe_request(GpuRequest(gpus=("0", "1"), policy="shared"))
    'GPUs 0, 1, shared'
    """
    unit = "MIG device" if request.policy == "mig" else "GPU"
    if request.all_gpus:
        what = f"every {unit}"
    elif request.gpus:
        plural = "s" if len(request.gpus) > 1 else ""
        what = (f"a MIG device of GPU{plural} " if request.policy == "mig"
                else f"GPU{plural} ") + ", ".join(request.gpus)
    else:
        count = request.count or 1
        what = f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{what}, {request.policy}"


def request_data(request: GpuRequest) -> dict[str, Any]:
    """The canonical form of a request that goes into a service's config hash."""
    return {"gpus": list(request.gpus), "count": request.count, "policy": request.policy,
            "tenants": request.tenants, "all": request.all_gpus}


def _on(value: Any) -> bool:
    """Whether a setting asks for something: anything but false, empty or "auto"."""
    if isinstance(value, Mapping):
        return any(_on(v) for v in value.values())
    return value not in (False, None, "", [], "auto")


def _refused(table: Mapping[str, Any], used: frozenset[str], where: str) -> list[str]:
    return [f"{where}.{key}" for key, value in table.items()
            if key not in used and _on(value)]


def gpu_wanted(service: str, table: Mapping[str, Any]) -> GpuRequest | None:
    """The GPUs ``[services.SERVICE]`` asks for through its gaming table, or None.

    Raises
    ------
    SurgeError
        A gaming setting the engine cannot express is turned on (each such key named),
        or the GPU table asks for something the allocator cannot place.

    Examples
    --------
    >>> gpu_wanted("steam", {"gaming": {"enabled": True, "gpu": {
    ...     "isolation_level": "shared", "nvbind": {"devices": ["gpu:0"]}}}})
    GpuRequest(count=None, gpus=('0',), policy='shared', tenants=None, all_gpus=False)
    """
    gaming = table.get("gaming")
    if not isinstance(gaming, Mapping) or gaming.get("enabled") is False:
        return None
    where = f"services.{service}.gaming"
    found = gaming.get("gpu")
    gpu: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    refused = _refused(gaming, _GAMING_USED, where)
    refused += _refused(gpu, _GPU_USED, f"{where}.gpu")
    for key, used in (("nvidia", _NVIDIA_USED), ("nvbind", _NVBIND_USED),
                      ("aiml", _AIML_USED)):
        if isinstance(gpu.get(key), Mapping):
            refused += _refused(gpu[key], used, f"{where}.gpu.{key}")
    if str(gpu.get("runtime", "")).lower() == "amd":
        refused.append(f"{where}.gpu.runtime = \"amd\"")
    if refused:
        raise SurgeError(
            f"service `{service}` turns on {', '.join(refused)}: the engine has no "
            "setting for that (it needs a runtime on the host), so Surge refuses the "
            "service rather than deploy it without; remove the key or set it to false")
    wanted = _from_gpu(gpu, service, f"{where}.gpu")
    if wanted is None and gaming.get("gpu_passthrough") is True:
        from ..gpus import GpuRequest

        return GpuRequest()  # "pass a GPU through": one, of the allocator's choice
    if wanted is not None and gaming.get("gpu_passthrough") is False:
        raise SurgeError(f"{where}: gpu_passthrough = false, but [{where}.gpu] asks for "
                         f"{describe_request(wanted)}; set gpu_passthrough = true or remove the "
                         "gpu table")
    return wanted


def _from_gpu(gpu: Mapping[str, Any], service: str, where: str) -> GpuRequest | None:
    # Imported here: only a service with a GPU table pays for the GPU kernel.
    from ..gpus import GpuRequestError, request_from_gpu_table

    try:
        request = request_from_gpu_table(gpu, service=service)
    except GpuRequestError as error:
        raise SurgeError(str(error)) from None
    if request is not None and gpu.get("passthrough") is True and \
            request.policy != "exclusive":
        raise SurgeError(f"{where}: passthrough = true gives the whole GPU to one "
                         f"service, but isolation_level = {gpu.get('isolation_level')!r} "
                         "shares it")
    return request

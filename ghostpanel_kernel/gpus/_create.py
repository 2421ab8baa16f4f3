"""Creating a container with the GPUs its workload reserved.

:func:`create_with_gpus` asks the engine what it is, builds the request that engine
honours (see :mod:`._spec`), checks the created container really holds the GPUs, and
binds the reservation to it, so that removing the container releases them. A container
the engine would have created without its GPUs is removed again and the call fails.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..engine._container_spec import build_create_body
from ._allocator import GpuAllocator
from ._errors import GpuRequestError, GpuSpecError
from ._libpod import LIBPOD_EXTRA_OPTIONS, libpod_extras
from ._spec import GpuEngineSpec, engine_spec

if TYPE_CHECKING:
    from ..engine import Container, Environment

__all__ = ["LIBPOD_OPTIONS", "create_with_gpus", "libpod_create_body"]

#: The create options GhostPanel translates to libpod's body (Podman before 5.4).
LIBPOD_OPTIONS = frozenset({"command", "entrypoint", "env", "labels", "working_dir", "user",
                            "hostname", "tty", "stdin_open", "privileged", "cap_add",
                            "cap_drop"}) | LIBPOD_EXTRA_OPTIONS


def _arguments(value: str | Sequence[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value)


def libpod_create_body(*, image: str, name: str | None, spec: GpuEngineSpec,
                       **options: Any) -> dict[str, Any]:
    """The ``POST /libpod/containers/create`` body for a GPU container (Podman < 5.4).

    Raises
    ------
    GpuSpecError
        An option outside :data:`LIBPOD_OPTIONS`: it is refused rather than dropped.
    """
    given = {key for key, value in options.items() if value not in (None, False, (), [], {})}
    unsupported = sorted(given - LIBPOD_OPTIONS)
    if unsupported:
        raise GpuSpecError(f"on {spec.engine} GPU containers are created through libpod, "
                           f"where GhostPanel does not yet translate {', '.join(unsupported)}")
    env = options.get("env") or {}
    if not isinstance(env, Mapping):
        env = dict(item.split("=", 1) for item in env)
    body: dict[str, Any] = {
        "image": image, "devices": spec.libpod_devices(),
        "labels": {**(options.get("labels") or {}), **spec.labels()},
        "env": {str(k): str(v) for k, v in env.items()},
        "terminal": bool(options.get("tty")), "stdin": bool(options.get("stdin_open")),
        "privileged": bool(options.get("privileged"))}
    if name:
        body["name"] = name
    extra = {key: options[key] for key in LIBPOD_EXTRA_OPTIONS if options.get(key)}
    if extra:
        # Checked and normalised as a compat create would be, then put in libpod's words.
        body.update(libpod_extras(build_create_body(image=image, **extra)))
    for option, key in (("command", "command"), ("entrypoint", "entrypoint")):
        if options.get(option) is not None:
            body[key] = _arguments(options[option])
    for option, key in (("working_dir", "work_dir"), ("user", "user"),
                        ("hostname", "hostname"), ("cap_add", "cap_add"),
                        ("cap_drop", "cap_drop")):
        if options.get(option):
            body[key] = options[option]
    return body


async def create_with_gpus(env: Environment, allocator: GpuAllocator, workload: str, /,
                           *, image: str, name: str | None = None,
                           **options: Any) -> Container:
    """Create (not start) a container with ``workload``'s reserved GPUs.

    Parameters
    ----------
    env
        Where to create it.
    allocator
        Holds the reservation; it is bound to the new container.
    workload
        The name the GPUs were reserved under (``ghostpanel gpu allocate``).
    image, name, **options
        As :meth:`ContainerCollection.create <ghostpanel_kernel.engine.ContainerCollection.create>`.
        The first three parameters are positional only: ``env=`` among the options
        is the container's environment variables.

    Raises
    ------
    GpuRequestError
        ``workload`` holds no GPU.
    GpuSpecError
        The engine cannot be given GPUs with a check, or created the container without
        them (that container is removed again).
    """
    held = allocator.allocations(workload)
    if not held:
        raise GpuRequestError(f"{workload} holds no GPU: reserve one first "
                              f"(ghostpanel gpu allocate {workload})")
    version = await env.version()
    spec = engine_spec(held, kind=version.kind, version=version.version)
    spec = GpuEngineSpec(spec.engine, spec.mode, spec.device_ids, spec.driver, workload)
    if spec.mode == "device-requests":
        body = spec.apply(build_create_body(image=image, **options))
        created = await env.client.post_json("/containers/create", params={"name": name},
                                             body=body)
    else:
        body = libpod_create_body(image=image, name=name, spec=spec, **options)
        created = await env.client.post_json("/libpod/containers/create", body=body)
    container_id = str(created["Id"])
    attrs = await env.client.get_json(f"/containers/{container_id}/json")
    try:
        spec.check_inspect(attrs)
    except GpuSpecError:
        with contextlib.suppress(Exception):  # the refusal below matters more
            await (await env.containers.get(container_id)).remove(force=True)
        raise
    allocator.bind(workload, container_id)
    return await env.containers.get(container_id)

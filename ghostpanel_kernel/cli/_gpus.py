"""``ghostpanel gpu``: the host's GPUs, and reservations of them for workloads.

The GPUs are this machine's (read through NVML), or the simulation that
``GHOSTPANEL_GPU_SIMULATE`` names, in which case every output says "simulated".
Reservations are kept in GhostPanel's store (``--home`` / ``GHOSTPANEL_HOME``).

Exit statuses: 0 done (``ls`` also on a host without a driver: the output says so);
1 no GPU is free (the message names who holds what), the host has no GPU to give, or
the store failed; 2 a request that can never be met (an unknown GPU, MIG on a GPU
without MIG mode, a bad simulation file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ._app import CliContext, CommandGroup, json_option, one_env_option, pass_app
from ._output import CommandError, echo_json, render_table

if TYPE_CHECKING:
    from ..gpus import Allocation, GpuAllocator, Inventory

__all__ = ["gpu"]


class GpuRequestRefused(CommandError):
    """A request that can never be met as written: exit status 2, like a bad option."""

    exit_code = 2


@contextmanager
def _allocator() -> Iterator[GpuAllocator]:
    from ..gpus import GpuAllocator, read_inventory

    inventory = read_inventory()
    if inventory.state == "error" and inventory.simulated and not inventory.gpus:
        raise GpuRequestRefused(inventory.message)  # a bad simulation file
    allocator = GpuAllocator(inventory)
    try:
        yield allocator
    finally:
        allocator.close()


@contextmanager
def _refusals() -> Iterator[None]:
    from ..gpus import GpuRequestError

    try:
        yield
    except GpuRequestError as error:
        raise GpuRequestRefused(str(error)) from error


def _simulated_note(inventory: Inventory) -> str:
    return f" [simulated from {inventory.source}]" if inventory.simulated else ""


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f} GiB"


def _percent(value: int | None) -> str:
    return "-" if value is None else f"{value}%"


def _holders_text(held: Sequence[Allocation]) -> str:
    if not held:
        return "free"
    policy = held[0].policy
    names = ",".join(a.workload for a in held)
    if policy in ("shared", "time-sliced"):
        return f"{names} ({policy} {len(held)}/{min(a.tenants for a in held)})"
    return f"{names} ({policy})"


@click.group(cls=CommandGroup)
def gpu() -> None:
    """GPUs of this host (NVML), and reservations of them for containers and services.

    Set GHOSTPANEL_GPU_SIMULATE=FILE to run on a simulated NVML (see docs/gpus.md).
    """


@gpu.command("ls")
@json_option
def list_gpus(as_json: bool) -> None:
    """List the GPUs and MIG devices, their load and who holds them."""
    with _allocator() as allocator:
        inventory = allocator.inventory
        allocations = allocator.allocations()
    held: dict[str, list[Allocation]] = {}
    for allocation in allocations:
        held.setdefault(allocation.unit, []).append(allocation)
    if as_json:
        data = inventory.to_dict()
        data["allocations"] = [a.to_dict() for a in allocations]
        echo_json(data)
        return
    if inventory.state != "ok":
        click.echo(f"{inventory.message}{_simulated_note(inventory)}")
    else:
        click.echo(f"GPUs of {inventory.host} (driver {inventory.driver_version or '?'})"
                   f"{_simulated_note(inventory)}")
        rows: list[list[object]] = []
        for device in inventory.gpus:
            rows.append([device.index, device.name, device.uuid,
                         f"{_mib(device.memory_used_mib)} / {_mib(device.memory_total_mib)}",
                         _percent(device.utilization_gpu_percent),
                         "-" if device.temperature_c is None else f"{device.temperature_c}C",
                         "-" if device.power_w is None else f"{device.power_w:.0f}W",
                         "on" if device.mig_enabled else "off",
                         "(MIG devices)" if device.mig_enabled
                         else _holders_text(held.get(device.uuid, []))])
            for mig in device.mig_instances:
                rows.append([f"{device.index}:{mig.index}", f"  {mig.name}", mig.uuid,
                             f"- / {_mib(mig.memory_total_mib)}", "-", "-", "-", "instance",
                             _holders_text(held.get(mig.uuid, []))])
        click.echo(render_table(["INDEX", "NAME", "UUID", "MEMORY", "UTIL", "TEMP", "POWER",
                                 "MIG", "HELD BY"], rows))
        for device in inventory.gpus:
            for process in device.processes:
                container = process.container_id[:12] if process.container_id else "host"
                click.echo(f"GPU {device.index}: PID {process.pid} in {container}")
        for problem in inventory.problems:
            click.echo(f"Warning: {problem}", err=True)
    if inventory.state != "ok":
        return
    known = {d.uuid for d in inventory.gpus} | {m.uuid for d in inventory.gpus
                                                for m in d.mig_instances}
    for allocation in allocations:
        if allocation.unit not in known:
            click.echo(f"Warning: {allocation.workload} holds {allocation.unit}, which this "
                       "host no longer shows", err=True)


@gpu.command("allocate")
@click.argument("workload")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="How many GPUs (MIG devices under --policy mig). Default 1.")
@click.option("--gpu", "gpus", multiple=True, metavar="INDEX_OR_UUID",
              help="A GPU to use, by index or UUID (MIG-... under mig); repeatable.")
@click.option("--policy", type=click.Choice(["exclusive", "shared", "time-sliced", "mig"]),
              default="exclusive", show_default=True, help="How the GPU is held.")
@click.option("--tenants", type=click.IntRange(min=1), default=None,
              help="Most tenants of a shared (default 4) or time-sliced (default 8) GPU.")
@json_option
def allocate(workload: str, count: int | None, gpus: tuple[str, ...], policy: str,
             tenants: int | None, as_json: bool) -> None:
    """Reserve GPUs for WORKLOAD (a container or Surge service name) before it is made.

    Exits 1, naming who holds what, when none is free.
    """
    from ..gpus import GpuRequest

    if count is not None and gpus:
        raise click.UsageError("give --count or --gpu, not both")
    with _refusals(), _allocator() as allocator:
        request = GpuRequest(count=count, gpus=gpus, tenants=tenants,
                             policy=GpuRequest.parse_policy(policy))
        made = allocator.allocate(workload, request)
        inventory = allocator.inventory
    if as_json:
        echo_json({"workload": workload, "simulated": inventory.simulated,
                   "allocations": [a.to_dict() for a in made]})
        return
    units = ", ".join(f"{a.label} ({a.unit})" for a in made)
    click.echo(f"reserved {units} for {workload} ({made[0].policy})"
               f"{_simulated_note(inventory)}")


@gpu.command("release")
@click.argument("workload")
@json_option
def release(workload: str, as_json: bool) -> None:
    """Release every GPU WORKLOAD holds (nothing held: said, exit 0)."""
    with _allocator() as allocator:
        released = allocator.release(workload)
        inventory = allocator.inventory
    if as_json:
        echo_json({"workload": workload, "simulated": inventory.simulated,
                   "released": [a.to_dict() for a in released]})
        return
    if not released:
        click.echo(f"{workload} held no GPU{_simulated_note(inventory)}")
        return
    units = ", ".join(a.label for a in released)
    click.echo(f"released {units} from {workload}{_simulated_note(inventory)}")


@gpu.command("reconcile")
@one_env_option
@json_option
@pass_app
def reconcile(app: CliContext, env_names: tuple[str, ...], as_json: bool) -> None:
    """Release the GPUs of containers that were removed from the engine."""

    async def container_ids() -> list[str]:
        async with app.environment(env_names) as environment:
            return [c.id for c in await environment.containers.list(all=True)]

    ids = asyncio.run(container_ids())
    with _allocator() as allocator:
        released = allocator.reconcile(ids)
    if as_json:
        echo_json({"released": [a.to_dict() for a in released]})
        return
    for allocation in released:
        click.echo(f"released {allocation.label} from {allocation.workload} "
                   f"(container {(allocation.container_id or '')[:12]} is gone)")
    if not released:
        click.echo("every reservation's container still exists")

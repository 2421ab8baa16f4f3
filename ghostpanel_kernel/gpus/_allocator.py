"""The GPU allocator: reservations of GPUs and MIG devices, kept in GhostPanel's store.

A workload (a container or Surge service, by name) reserves units before it is created;
creating it with :func:`~.create_with_gpus` gives the engine those units and binds the
reservation to the container; removing the container releases it (:meth:`GpuAllocator.
reconcile` against the engine's containers, or :meth:`GpuAllocator.release_for_event`
from its event stream). Nothing is overcommitted: a unit takes one exclusive or MIG
holder, or up to N shared or time-sliced ones of one policy. The reservations live in
the ``gpu_allocations`` table, so they survive a restart of the agent or the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC
from typing import Any, cast

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..store import open_database
from ..store._schema import GpuAllocationRecord
from ..store._transaction import store_transaction
from ._allocation import Allocation
from ._errors import GpuError, GpuRequestError, GpuUnavailable
from ._model import GpuDevice, Inventory
from ._request import GpuRequest, Policy

__all__ = ["GpuAllocator"]

# Tries of an allocation whose slot another process took between our read and insert.
_ATTEMPTS = 3
_WORKLOAD_MAX = 255  # the width of gpu_allocations.workload
_REMOVED_ACTIONS = frozenset({"destroy", "remove"})  # Docker says destroy, Podman remove


@dataclass(frozen=True)
class _Unit:
    """Something that can be held: a GPU, or a MIG device of one."""

    uuid: str
    gpu: GpuDevice
    mig_index: int | None = None

    @property
    def label(self) -> str:
        text = f"GPU {self.gpu.index} ({self.gpu.name})"
        return text if self.mig_index is None else f"GPU {self.gpu.index} MIG {self.mig_index}"


def _to_allocation(row: GpuAllocationRecord) -> Allocation:
    created = row.created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # SQLite keeps no zone; stored in UTC
    return Allocation(workload=row.workload, unit=row.unit, slot=row.slot,
                      gpu_index=row.gpu_index, gpu_uuid=row.gpu_uuid,
                      mig_index=row.mig_index, policy=cast(Policy, row.policy),
                      tenants=row.tenants, simulated=row.simulated,
                      container_id=row.container_id, created_at=created)


def _describe(holders: Sequence[Allocation]) -> str:
    names = ", ".join(sorted(h.workload for h in holders))
    policy = holders[0].policy
    if policy in ("shared", "time-sliced"):
        limit = min(h.tenants for h in holders)
        return f"held by {names} ({policy}, {len(holders)}/{limit} tenants)"
    return f"held by {names} ({policy})"


class GpuAllocator:
    """Reserve, list and release GPUs of one host's inventory.

    Parameters
    ----------
    inventory
        The host's GPUs (:func:`~.read_inventory`); allocations name units in it.
    database_url
        The store to keep reservations in (default: GhostPanel's, under
        ``GHOSTPANEL_HOME``). Ignored when ``engine`` is given.
    engine
        An open SQLAlchemy engine on the store (tests share one between allocators).

    Examples
    --------
    >>> allocator = GpuAllocator(read_inventory())                    # doctest: +SKIP
    >>> allocator.allocate("steam", GpuRequest(policy="exclusive"))   # doctest: +SKIP
    [Allocation(workload='steam', unit='GPU-...', slot=0, gpu_index=0, ...)]
    """

    def __init__(self, inventory: Inventory, *, database_url: str | None = None,
                 engine: Engine | None = None) -> None:
        self.inventory = inventory
        self._owns_engine = engine is None
        self._engine = engine if engine is not None else open_database(database_url)

    def close(self) -> None:
        """Release the database connection if this allocator opened it."""
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> GpuAllocator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _transaction(self) -> AbstractContextManager[Session]:
        return store_transaction(self._engine, "the GPU allocation store")

    # -- reading -------------------------------------------------------------------

    def allocations(self, workload: str | None = None) -> list[Allocation]:
        """Every reservation (of ``workload`` only, when given), by GPU then slot."""
        with self._transaction() as session:
            # Reservations made on a simulation and on the real GPUs never mix: each
            # allocator sees those of its own kind only.
            query = select(GpuAllocationRecord).where(
                GpuAllocationRecord.simulated == self.inventory.simulated)
            if workload is not None:
                query = query.where(GpuAllocationRecord.workload == workload)
            rows = session.scalars(query.order_by(
                GpuAllocationRecord.gpu_index, GpuAllocationRecord.mig_index,
                GpuAllocationRecord.slot)).all()
            return [_to_allocation(row) for row in rows]

    def holders(self) -> dict[str, list[Allocation]]:
        """Unit UUID -> the reservations on it."""
        held: dict[str, list[Allocation]] = {}
        for allocation in self.allocations():
            held.setdefault(allocation.unit, []).append(allocation)
        return held

    # -- allocating ------------------------------------------------------------------

    def allocate(self, workload: str, request: GpuRequest | None = None) -> list[Allocation]:
        """Reserve units for ``workload``.

        A workload that already holds units under the same policy gets them back
        unchanged (so Surge may apply a plan twice); under another policy it must
        release first.

        Raises
        ------
        GpuError
            The host has no GPU to give (the inventory's message says why).
        GpuRequestError
            The request can never be met here (an unknown GPU, MIG on a GPU without
            MIG mode, more GPUs than the host has).
        GpuUnavailable
            Not enough units are free now; the message names who holds what.
        """
        request = request or GpuRequest()
        _check_workload(workload)
        if self.inventory.state != "ok":
            raise GpuError(f"cannot allocate a GPU for {workload}: "
                           f"{self.inventory.message}")
        for attempt in range(_ATTEMPTS):
            held = self.allocations(workload)
            if held:
                return self._same_again(workload, request, held)
            try:
                return self._insert(workload, request)
            except IntegrityError:
                # Another process took a slot between our read and our insert: read
                # again; the unique (unit, slot) pair is what kept them apart.
                if attempt == _ATTEMPTS - 1:
                    raise GpuUnavailable(
                        f"the GPUs for {workload} were taken by other allocations at the "
                        "same moment; try again") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _same_again(self, workload: str, request: GpuRequest,
                    held: list[Allocation]) -> list[Allocation]:
        if all(a.policy == request.policy for a in held):
            return held
        units = ", ".join(f"{a.label} ({a.policy})" for a in held)
        raise GpuRequestError(f"{workload} already holds {units}; release it first "
                              f"(ghostpanel gpu release {workload})")

    def _candidates(self, request: GpuRequest) -> list[_Unit]:
        gpus = self.inventory.gpus
        if request.policy == "mig":
            return self._mig_candidates(request)
        chosen = [self._gpu(key) for key in request.gpus] if request.gpus else list(gpus)
        if len({gpu.uuid for gpu in chosen}) != len(chosen):
            raise GpuRequestError(f"the GPUs {', '.join(request.gpus)} name one GPU twice")
        for gpu in chosen:
            if gpu.mig_enabled and request.gpus:
                raise GpuRequestError(
                    f"GPU {gpu.index} ({gpu.name}) is in MIG mode: its MIG devices are "
                    "given one per workload with the mig policy")
        units = [_Unit(gpu.uuid, gpu) for gpu in chosen if not gpu.mig_enabled]
        if not units:
            raise GpuRequestError(f"every GPU of {self.inventory.host} is in MIG mode: "
                                  "use the mig policy")
        return units

    def _mig_candidates(self, request: GpuRequest) -> list[_Unit]:
        units: list[_Unit] = []
        keys = request.gpus or tuple(str(g.index) for g in self.inventory.gpus
                                     if g.mig_enabled)
        for key in keys:
            instance = next(((g, m) for g in self.inventory.gpus for m in g.mig_instances
                             if m.uuid.lower() == key.strip().lower()), None)
            if instance is not None:
                units.append(_Unit(instance[1].uuid, instance[0], instance[1].index))
                continue
            gpu = self._gpu(key)
            if not gpu.mig_enabled:
                raise GpuRequestError(f"GPU {gpu.index} ({gpu.name}) is not in MIG mode: "
                                      "use another policy, or enable MIG "
                                      "(nvidia-smi -i N -mig 1)")
            units.extend(_Unit(m.uuid, gpu, m.index) for m in gpu.mig_instances)
        if not units:
            raise GpuRequestError(f"no GPU of {self.inventory.host} has MIG devices")
        return units

    def _gpu(self, key: str) -> GpuDevice:
        gpu = self.inventory.find(key)
        if gpu is None:
            known = ", ".join(f"{g.index} ({g.uuid})" for g in self.inventory.gpus)
            raise GpuRequestError(f"{self.inventory.host} has no GPU {key!r}; "
                                  f"its GPUs are {known}")
        return gpu

    def _insert(self, workload: str, request: GpuRequest) -> list[Allocation]:
        with self._transaction() as session:
            held = _held(session.scalars(select(GpuAllocationRecord).where(
                GpuAllocationRecord.simulated == self.inventory.simulated)).all())
            made = self._add(session, workload, request, held)
            session.flush()
            return [_to_allocation(record) for record in made]

    def _add(self, session: Session, workload: str, request: GpuRequest,
             held: dict[str, list[Allocation]]) -> list[GpuAllocationRecord]:
        """Pick units for ``workload`` among those ``held`` leaves free, add their rows
        to ``session`` and to ``held`` (so a batch sees its own earlier picks)."""
        candidates = self._candidates(request)
        needed = request.needed
        per_gpu = request.policy == "mig" and bool(request.gpus)
        free = [unit for unit in candidates if _accepts(held.get(unit.uuid, []), request)]
        if per_gpu:
            # A GPU named under mig wants one of its devices, not all of them.
            picked = _one_per_gpu(free, request.gpus, self.inventory)
            enough = len(picked) == len(request.gpus)
        else:
            # Spread shared tenants: the least held units first, then by index.
            free.sort(key=lambda u: (len(held.get(u.uuid, [])), u.gpu.index,
                                     u.mig_index or 0))
            picked = free if needed is None else free[:needed]
            # "All GPUs" means all of them: one held by another refuses the request.
            enough = len(picked) == (len(candidates) if needed is None else needed)
            if needed is not None and needed > len(candidates):
                raise GpuRequestError(
                    f"{workload} asks for {needed} "
                    f"{'MIG devices' if request.policy == 'mig' else 'GPUs'} but "
                    f"{self.inventory.host} has {len(candidates)}")
        if not enough:
            raise self._unavailable(workload, request, candidates, held)
        made = []
        for unit in picked:
            slots = {a.slot for a in held.get(unit.uuid, [])}
            slot = next(s for s in range(len(slots) + 1) if s not in slots)
            record = GpuAllocationRecord(
                workload=workload, unit=unit.uuid, slot=slot, gpu_index=unit.gpu.index,
                gpu_uuid=unit.gpu.uuid, mig_index=unit.mig_index, policy=request.policy,
                tenants=request.tenant_limit, simulated=self.inventory.simulated)
            session.add(record)
            made.append(record)
            held.setdefault(unit.uuid, []).append(_to_allocation(record))
        return made

    def reserve_all(self, wanted: Sequence[tuple[str, GpuRequest]], *, keep: bool = True
                    ) -> tuple[list[Allocation], list[Allocation]]:
        """Reserve for several workloads at once, all or nothing, replacing what they
        hold now (what Surge does before it creates or recreates a project's GPU
        containers).

        Parameters
        ----------
        wanted
            ``(workload, request)`` pairs; each workload's current reservations are
            released in the same transaction, so a recreated container may get the
            units its predecessor held.
        keep
            False: only check that every request fits now, and change nothing (a plan).

        Returns
        -------
        tuple of (list of Allocation, list of Allocation)
            The new reservations, and the ones they replaced (give them to
            :meth:`restore` to undo).

        Raises
        ------
        GpuError, GpuRequestError, GpuUnavailable
            As :meth:`allocate`, for the first request that does not fit; nothing was
            changed.
        """
        for workload, _ in wanted:
            _check_workload(workload)
        if self.inventory.state != "ok":
            listed = ", ".join(w for w, _ in wanted)
            raise GpuError(f"cannot allocate a GPU for {listed}: {self.inventory.message}")
        names = {workload for workload, _ in wanted}
        for attempt in range(_ATTEMPTS):
            try:
                return self._reserve_all(wanted, names, keep=keep)
            except _Trial as trial:
                return trial.made, trial.replaced
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:  # as in allocate: another process won a slot
                    raise GpuUnavailable(
                        f"the GPUs for {', '.join(sorted(names))} were taken by other "
                        "allocations at the same moment; try again") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _reserve_all(self, wanted: Sequence[tuple[str, GpuRequest]], names: set[str], *,
                     keep: bool) -> tuple[list[Allocation], list[Allocation]]:
        with self._transaction() as session:
            rows = session.scalars(select(GpuAllocationRecord).where(
                GpuAllocationRecord.simulated == self.inventory.simulated)).all()
            replaced = [_to_allocation(row) for row in rows if row.workload in names]
            for row in rows:
                if row.workload in names:
                    session.delete(row)
            session.flush()  # the deletes first: a new row may take a freed slot
            held = _held([row for row in rows if row.workload not in names])
            made: list[GpuAllocationRecord] = []
            for workload, request in wanted:
                made += self._add(session, workload, request, held)
            session.flush()
            result = [_to_allocation(record) for record in made]
            if not keep:
                raise _Trial(result, replaced)  # rolls the transaction back
        return result, replaced

    def restore(self, allocations: Sequence[Allocation]) -> None:
        """Put reservations back exactly as they were (bound container included): the
        undo of :meth:`reserve_all` or :meth:`discard`."""
        if not allocations:
            return
        with self._transaction() as session:
            for a in allocations:
                session.add(GpuAllocationRecord(
                    workload=a.workload, unit=a.unit, slot=a.slot, gpu_index=a.gpu_index,
                    gpu_uuid=a.gpu_uuid, mig_index=a.mig_index, policy=a.policy,
                    tenants=a.tenants, simulated=a.simulated, container_id=a.container_id))

    def discard(self, allocations: Sequence[Allocation]) -> None:
        """Release exactly these reservations (by unit and slot)."""
        self._delete(allocations)

    def release_container(self, container_id: str) -> list[Allocation]:
        """Release the reservations bound to a container that is gone; what was released.

        ``container_id`` may be the full id or a prefix of at least 12 digits, as the
        binding may be.
        """
        if len(container_id) < 12:
            return []  # a short prefix could name another container's reservation
        gone = [a for a in self.allocations() if a.container_id and
                (a.container_id.startswith(container_id) or
                 container_id.startswith(a.container_id))]
        self._delete(gone)
        return gone

    def _unavailable(self, workload: str, request: GpuRequest, candidates: list[_Unit],
                     held: dict[str, list[Allocation]]) -> GpuUnavailable:
        busy = {unit.label: held[unit.uuid] for unit in candidates if unit.uuid in held}
        what = "MIG device" if request.policy == "mig" else "GPU"
        wanted = "every" if request.needed is None else str(request.needed)
        details = "; ".join(f"{label} {_describe(h)}" for label, h in busy.items())
        return GpuUnavailable(
            f"no {what} free for {workload} ({request.policy}, {wanted} needed): "
            f"{details or 'none is usable'}",
            holders={label: sorted(a.workload for a in h) for label, h in busy.items()})

    # -- releasing -------------------------------------------------------------------

    def release(self, workload: str) -> list[Allocation]:
        """Release everything ``workload`` holds; what was released (empty: nothing)."""
        with self._transaction() as session:
            mine = (GpuAllocationRecord.workload == workload,
                    GpuAllocationRecord.simulated == self.inventory.simulated)
            rows = session.scalars(select(GpuAllocationRecord).where(*mine)).all()
            released = [_to_allocation(row) for row in rows]
            session.execute(delete(GpuAllocationRecord).where(*mine))
        return released

    def bind(self, workload: str, container_id: str) -> None:
        """Record that ``container_id`` was created with ``workload``'s reservation, so
        that its removal releases it."""
        with self._transaction() as session:
            session.execute(update(GpuAllocationRecord)
                            .where(GpuAllocationRecord.workload == workload,
                                   GpuAllocationRecord.simulated == self.inventory.simulated)
                            .values(container_id=container_id))

    def adopt(self, workload: str, container_id: str) -> list[Allocation]:
        """Bind ``workload``'s reservations that no container holds yet to
        ``container_id`` (a container created under the workload's name without
        :func:`~.create_with_gpus`, as the agent's events report it); what was bound."""
        with self._transaction() as session:
            rows = session.scalars(select(GpuAllocationRecord).where(
                GpuAllocationRecord.workload == workload,
                GpuAllocationRecord.simulated == self.inventory.simulated,
                GpuAllocationRecord.container_id.is_(None))).all()
            for row in rows:
                row.container_id = container_id
            session.flush()
            return [_to_allocation(row) for row in rows]

    def reconcile(self, container_ids: Iterable[str]) -> list[Allocation]:
        """Release reservations bound to containers that no longer exist.

        Parameters
        ----------
        container_ids
            The ids of every container the engine has now (``ps --all``). Full ids or
            12-digit prefixes both match. Reservations not yet bound to a container
            are kept: they wait for the container to be created.

        Returns
        -------
        list of Allocation
            What was released.
        """
        present = list(container_ids)
        released: list[Allocation] = []
        for allocation in self.allocations():
            bound = allocation.container_id
            if bound and not any(bound.startswith(c) or c.startswith(bound) for c in present):
                released.append(allocation)
        self._delete(released)
        return released

    def release_for_event(self, event: Any) -> list[Allocation]:
        """Release the reservations of a container that an engine event says is
        removed (the agent's event hook).

        Parameters
        ----------
        event
            An :class:`~ghostpanel_kernel.engine.Event` (``type``, ``action``,
            ``actor_id``); other events are ignored.
        """
        if getattr(event, "type", "") != "container" or \
                getattr(event, "action", "") not in _REMOVED_ACTIONS:
            return []
        container = str(getattr(event, "actor_id", ""))
        gone = [a for a in self.allocations() if container and a.container_id == container]
        self._delete(gone)
        return gone

    def _delete(self, allocations: Sequence[Allocation]) -> None:
        if not allocations:
            return
        with self._transaction() as session:
            for allocation in allocations:
                session.execute(delete(GpuAllocationRecord).where(
                    GpuAllocationRecord.unit == allocation.unit,
                    GpuAllocationRecord.slot == allocation.slot))


class _Trial(Exception):
    """Ends a check-only :meth:`GpuAllocator.reserve_all`, rolling its transaction back."""

    def __init__(self, made: list[Allocation], replaced: list[Allocation]) -> None:
        super().__init__("trial")
        self.made = made
        self.replaced = replaced


def _held(rows: Iterable[GpuAllocationRecord]) -> dict[str, list[Allocation]]:
    held: dict[str, list[Allocation]] = {}
    for row in rows:
        held.setdefault(row.unit, []).append(_to_allocation(row))
    return held


def _check_workload(workload: str) -> None:
    if not isinstance(workload, str) or not workload.strip():
        raise GpuRequestError("a GPU allocation needs a workload name (container or service)")
    if len(workload) > _WORKLOAD_MAX:
        raise GpuRequestError(f"workload names are at most {_WORKLOAD_MAX} characters")


def _accepts(holders: Sequence[Allocation], request: GpuRequest) -> bool:
    """Whether a unit with ``holders`` can take one more holder for ``request``."""
    if not holders:
        return True
    if request.policy not in ("shared", "time-sliced"):
        return False
    if any(h.policy != request.policy for h in holders):
        return False
    limit = min([request.tenant_limit, *(h.tenants for h in holders)])
    return len(holders) < limit


def _one_per_gpu(free: list[_Unit], keys: Sequence[str], inventory: Inventory) -> list[_Unit]:
    picked: list[_Unit] = []
    for key in keys:
        gpu = inventory.find(key)
        match = [u for u in free if u not in picked and
                 (u.uuid.lower() == key.strip().lower() or (gpu and u.gpu.uuid == gpu.uuid))]
        if match:
            picked.append(match[0])
    return picked

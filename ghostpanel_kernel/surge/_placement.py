"""Placement: which environment runs which replica of which service.

- A service without ``regions`` runs its ``replicas`` on **every** selected environment
  (replica numbers 1..N on each).
- A service with ``regions`` runs ``replicas`` containers **in all**, spread round-robin
  over the selected environments whose ``region`` label is one of them: the eligible
  environments are ordered by the position of their region in the list, then by name,
  and replica ``i`` (1-based, global across environments) goes to eligible environment
  ``(i - 1) mod count``. The order depends on names, not on how ``--env`` was typed, so
  the same selection always gives the same placement.
- A service whose regions match no selected environment is *unplaced*; plan and apply
  refuse that (:func:`check_placement`), status only reports it.

Placement is pure: it reads environment names and labels, never an engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._desired import DesiredState
from ._errors import SurgeError

__all__ = ["Placement", "Slot", "check_placement", "place"]


@dataclass(frozen=True)
class Slot:
    """One container that must run on one environment.

    Attributes
    ----------
    service
        The service's name.
    replica
        Its replica number (1-based; 1 for a service of one replica).
    name
        The container's name.
    """

    service: str
    replica: int
    name: str


@dataclass(frozen=True)
class Placement:
    """Where every container goes.

    Attributes
    ----------
    slots
        By environment name, the containers it must run, in start order.
    unplaced
        Services with ``regions`` and replicas that no selected environment may run.
    """

    slots: Mapping[str, tuple[Slot, ...]]
    unplaced: tuple[str, ...] = ()

    def desired(self, environment: str, service: str) -> int:
        """How many containers of ``service`` ``environment`` must run."""
        return sum(1 for slot in self.slots.get(environment, ()) if slot.service == service)


def _region_rank(regions: Sequence[str], labels: Mapping[str, str]) -> int | None:
    region = labels.get("region")
    return regions.index(region) if region in regions else None


def place(state: DesiredState, environments: Sequence[tuple[str, Mapping[str, str]]]
          ) -> Placement:
    """Place every replica of ``state`` on ``environments``.

    Parameters
    ----------
    state
        What to run.
    environments
        ``(name, labels)`` of each selected environment.

    Examples
    --------
    >>> from ghostpanel_kernel.bolt import Boltfile
    >>> from ghostpanel_kernel.surge._desired import desired_state
    >>> state = desired_state(Boltfile.loads(
    ...     'project = "p"\\n[services.web]\\nimage = "i"\\nreplicas = 3\\n'
    ...     'regions = ["us-east", "eu-west"]\\n'))
    >>> placement = place(state, [("west", {"region": "eu-west"}),
    ...                           ("east", {"region": "us-east"})])
    >>> [s.name for s in placement.slots["east"]], [s.name for s in placement.slots["west"]]
    (['p_web_1', 'p_web_3'], ['p_web_2'])
    """
    slots: dict[str, list[Slot]] = {name: [] for name, _ in environments}
    unplaced: list[str] = []
    for spec in state.services.values():
        if spec.replicas == 0:
            continue
        if not spec.regions:
            for name, _ in environments:
                slots[name] += [Slot(spec.name, i, spec.container_name(state.project, i))
                                for i in range(1, spec.replicas + 1)]
            continue
        ranked = sorted(
            ((rank, name) for name, labels in environments
             if (rank := _region_rank(spec.regions, labels)) is not None))
        if not ranked:
            unplaced.append(spec.name)
            continue
        for i in range(1, spec.replicas + 1):
            _, name = ranked[(i - 1) % len(ranked)]
            slots[name].append(Slot(spec.name, i, spec.container_name(state.project, i)))
    return Placement({name: tuple(found) for name, found in slots.items()}, tuple(unplaced))


def check_placement(state: DesiredState, placement: Placement,
                    environments: Sequence[tuple[str, Mapping[str, str]]]) -> None:
    """Refuse a placement that cannot be applied.

    Raises
    ------
    SurgeError
        A service is unplaced, or one environment would run two containers of a service
        that publishes host ports (the second could not bind them).
    """
    if placement.unplaced:
        described = ", ".join(f"{name} (region {labels.get('region') or 'unset'})"
                              for name, labels in environments) or "none"
        for service in placement.unplaced:
            wanted = ", ".join(state.services[service].regions)
            raise SurgeError(f"service `{service}` runs in regions {wanted}, but no "
                             f"selected environment has one of them: {described}. Select "
                             "one with --env, or label one with region=...")
    for environment, slots in placement.slots.items():
        # One count per environment: a walk per service would be quadratic in services.
        counts = Counter(slot.service for slot in slots)
        for spec in state.services.values():
            count = counts[spec.name]
            if spec.host_ports and count > 1:
                ports = ", ".join(str(port) for port, _ in spec.host_ports)
                raise SurgeError(f"service `{spec.name}` publishes host port(s) {ports} and "
                                 f"would run {count} replicas on environment {environment!r}; "
                                 "only one container per host can bind a port. Spread the "
                                 "replicas with regions, or drop the host ports")

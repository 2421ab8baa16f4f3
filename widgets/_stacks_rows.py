"""What the stacks page shows, as plain data: one grid row per stack, the drift of a
Surge project from its Boltfile, whether newer images wait under its tags, and the
services table of the selected stack.

No ipywidgets here: pure functions over :mod:`ghostpanel_kernel.surge`'s results,
testable on their own (:mod:`._stacks` is the widget).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ghostpanel_kernel.surge import StackProject, SurgePlan

from ._format import html_table, plural
from ._status import describe_error

__all__ = ["CHECKING", "COLUMNS", "StackInfo", "drift_text", "replicas_text",
           "services_html", "stack_row"]

#: The grid's columns. Updates is last: it is filled after the others (see
#: :mod:`._stacks_updates`).
COLUMNS = ("Project", "Services", "Replicas (running/desired)", "State", "Drift", "Boltfile",
           "Updates")

#: What the Updates column says while the registries are being asked.
CHECKING = "checking…"

#: What the grid says of a Bolt stack in its Drift column.
NOT_MANAGED = "not managed by Surge: adoptable"
#: What it says of a Surge project whose Boltfile is not known.
UNKNOWN = "Boltfile unknown"


@dataclass(frozen=True)
class StackInfo:
    """A stack as the page shows it: what was found, and what its Boltfile says.

    Attributes
    ----------
    project
        What :func:`~ghostpanel_kernel.surge.discover_stacks` found.
    boltfile
        The Boltfile's path ("" unknown): given on the page, else from the labels.
    desired
        Containers the Boltfile places per environment (empty when unknown).
    plan
        Surge's plan for the Boltfile on the project's environments (its drift).
    problem
        Why there is no plan although a Boltfile is named (missing, refused...).
    updates
        The Updates cell: ``1 update available (shop_web)``, ``current``,
        :data:`CHECKING` while the registries are asked, ``""`` when not checked.
    """

    project: StackProject
    boltfile: str = ""
    desired: Mapping[str, int] | None = None
    plan: SurgePlan | None = None
    problem: str = ""
    updates: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """The grid row's key: ``("surge" | "bolt", name)``."""
        return ("surge" if self.project.managed else "bolt", self.project.name)


def replicas_text(info: StackInfo, environments: Sequence[str]) -> str:
    """``env running/desired`` for each environment the stack is on (desired: the
    Boltfile's count, else the containers found), ``·``-separated.

    Examples
    --------
    >>> from ghostpanel_kernel.surge import StackContainer
    >>> web = StackContainer("east", "shop_web_1", "web", 1, "running", "busybox")
    >>> info = StackInfo(StackProject("shop", True, (web,)), desired={"east": 2})
    >>> replicas_text(info, ["east", "west"])
    'east 1/2'
    """
    parts = []
    for name in environments:
        running, found = info.project.replicas(name)
        wanted = (info.desired or {}).get(name)
        if found == 0 and not wanted:
            continue
        parts.append(f"{name} {running}/{found if wanted is None else wanted}")
    return " · ".join(parts)


def drift_text(info: StackInfo) -> str:
    """The Drift column: ``in sync``, ``3 changes (2 recreate, 1 remove)``, why there is
    no plan, or that the Boltfile is unknown.

    Examples
    --------
    >>> from ghostpanel_kernel.surge import StackContainer
    >>> web = StackContainer("east", "shop_web", "web", 1, "running", "busybox")
    >>> drift_text(StackInfo(StackProject("shop", True, (web,))))
    'Boltfile unknown'
    """
    if not info.project.managed:
        return NOT_MANAGED
    if info.problem:
        return info.problem
    if info.plan is None:
        return UNKNOWN
    failed = [p for p in info.plan.environments if p.error is not None]
    if failed:
        return "; ".join(f"plan failed on {p.environment}: {describe_error(p.error)}"
                         for p in failed if p.error is not None)
    changes = [action for env_plan in info.plan.environments for action in env_plan.changes]
    if not changes:
        return "in sync"
    kinds: dict[str, int] = {}
    for action in changes:
        kinds[action.kind] = kinds.get(action.kind, 0) + 1
    detail = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    return f"{plural(len(changes), 'change')} ({detail})"


def stack_row(info: StackInfo, environments: Sequence[str]) -> list[str]:
    """The grid's cells for one stack (see :data:`COLUMNS`).

    Examples
    --------
    >>> from ghostpanel_kernel.surge import StackContainer
    >>> web = StackContainer("east", "shop_web", "web", 1, "running", "busybox")
    >>> stack_row(StackInfo(StackProject("shop", True, (web,)), updates=CHECKING), ["east"])
    ['shop', 'web', 'east 1/1', 'running', 'Boltfile unknown', 'unknown', 'checking…']
    """
    project = info.project
    services = ", ".join(project.services)
    state = project.state if project.managed else f"{project.state} (Bolt CLI)"
    boltfile = os.path.basename(info.boltfile) if info.boltfile else \
        ("unknown" if project.managed else "none")
    return [project.name, services, replicas_text(info, environments), state,
            drift_text(info), boltfile, info.updates]


def services_html(project: StackProject) -> str:
    """The selected stack's containers: environment, service, replica, name, state,
    image."""
    rows = [[c.environment, c.service, str(c.replica), c.name, c.state, c.image]
            for c in sorted(project.containers,
                            key=lambda c: (c.environment, c.service, c.replica, c.name))]
    return html_table(["Environment", "Service", "Replica", "Container", "State", "Image"],
                      rows, empty="No containers.", css_class="gp-stack-services")

"""What an apply, scale or destroy did: per environment, and as a whole."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._plan import SurgePlan

__all__ = ["Outcome", "SurgeResult"]

Outcome = Literal["applied", "unchanged", "failed", "rolled-back", "rollback-incomplete",
                  "not-applied"]
"""How an environment ended:

``applied``              its changes are in place;
``unchanged``            it had nothing to change;
``failed``               it is the one that failed (its own changes were undone, as far
                         as ``rollback_errors`` does not say otherwise);
``rolled-back``          its changes were undone (another environment failed, or the
                         run was cancelled);
``rollback-incomplete``  as ``rolled-back``, but some undo steps failed (see
                         ``rollback_errors``): it is not as it was;
``not-applied``          nothing was done there (the plan failed, or another environment
                         failed before its turn)."""

_PAST = {"create": "created", "recreate": "recreated", "start": "started",
         "remove": "removed", "unchanged": "unchanged"}


@dataclass(frozen=True)
class SurgeResult:
    """The outcome of :func:`apply_surge`, :func:`scale_surge` or :func:`destroy_surge`.

    Attributes
    ----------
    project
        The project name.
    plan
        The plan that was carried out (for ``destroy``, the removals).
    outcomes
        By environment name, how it ended (see :data:`Outcome`).
    errors
        By environment name, what failed there.
    rolled_back
        The run failed or was cancelled after changing something, and every change was
        undone (False when an undo step failed: see ``rollback_errors``).
    rollback_errors
        Undo steps that failed (what may be left behind), ``"env: message"``.
    warnings
        Clean-up steps after success that failed, ``"env: message"``.
    cancelled
        The run was cancelled (Ctrl-C, SIGTERM) before it finished.

    Examples
    --------
    >>> result = await apply_surge(Boltfile.load("Boltfile.toml"), [east, west])
    ...                                                                # doctest: +SKIP
    >>> result.ok, result.summary()                                    # doctest: +SKIP
    (True, ['east: 2 created', 'west: 1 created'])
    """

    project: str
    plan: SurgePlan
    outcomes: Mapping[str, Outcome]
    errors: Mapping[str, BaseException] = field(default_factory=dict)
    rolled_back: bool = False
    rollback_errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """Nothing failed and the run was not cancelled."""
        return not self.errors and not self.cancelled

    def conclusion(self) -> list[str]:
        """How a run that did not succeed left the environments, as error lines.

        One statement, decided from one place: a rollback that left something behind
        says only that (one line per undo step that failed), never also "every change
        was rolled back". Empty when the run succeeded, or failed before changing
        anything for a reason ``errors`` gives.

        Examples
        --------
        >>> from ._plan import SurgePlan
        >>> SurgeResult("p", SurgePlan("p", ()), {}, rolled_back=True).conclusion()
        ['every change of this run was rolled back']
        >>> SurgeResult("p", SurgePlan("p", ()), {}, errors={"a": OSError("gone")},
        ...             rollback_errors=("a: undo create p_web: gone",)).conclusion()
        ['rollback incomplete: a: undo create p_web: gone']
        """
        if self.rollback_errors:
            return [f"rollback incomplete: {failure}" for failure in self.rollback_errors]
        if self.rolled_back:
            return ["every change of this run was rolled back"]
        if self.cancelled:
            return ["cancelled before it changed anything"]
        return []

    def counts(self, environment: str) -> dict[str, int]:
        """Container actions of ``environment`` by kind, e.g. ``{"create": 2}``."""
        plan = self.plan.for_environment(environment)
        return dict(Counter(a.kind for a in plan.actions if a.resource == "container"))

    def summary(self) -> list[str]:
        """One line per environment, as the CLI prints it."""
        lines = []
        for plan in self.plan.environments:
            name = plan.environment
            outcome = self.outcomes.get(name, "not-applied")
            if name in self.errors:
                lines.append(f"{name}: {outcome}: {self.errors[name]}")
                continue
            if outcome == "not-applied" and not plan.actions:
                lines.append(f"{name}: not-applied")  # stopped before its plan was made
                continue
            counts = self.counts(name)
            done = ", ".join(f"{counts[kind]} {_PAST[kind]}" for kind in _PAST
                             if counts.get(kind)) or "nothing to do"
            if outcome in ("rolled-back", "rollback-incomplete", "not-applied"):
                done = f"{outcome} (planned: {done})"
            lines.append(f"{name}: {done}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"project": self.project, "ok": self.ok, "rolled_back": self.rolled_back,
                "outcomes": dict(self.outcomes),
                "errors": {name: str(error) for name, error in self.errors.items()},
                "rollback_errors": list(self.rollback_errors),
                "cancelled": self.cancelled, "conclusion": self.conclusion(),
                "warnings": list(self.warnings), "plan": self.plan.to_dict()}

"""The undo log of one environment's apply, and the rollback that reads it.

Every change an apply makes is recorded the moment the engine has made it (a create is
recorded before the start that may fail), with what undoes it. Rollback runs in four
passes so that what comes back comes back in a working order:

1. ``created``/``started`` entries, newest first: new containers are removed, containers
   this apply started are stopped -- freeing names and host ports;
2. ``set-aside`` entries, oldest first (start order): each container that was renamed
   ``...-surge-old-...`` gets its name back and is started again if it was running;
3. ``gpus`` entries, newest first: the GPU reservations this apply made are dropped and
   those they replaced put back (bound to the containers that came back);
4. ``resource`` entries, newest first: networks and volumes this apply created go.

An undo step that fails is reported and the others still run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Journal", "Undo"]

Phase = Literal["created", "started", "set-aside", "resource", "gpus"]


@dataclass(frozen=True)
class Undo:
    """One recorded change: what it was and how to undo it."""

    phase: Phase
    description: str
    undo: Callable[[], Awaitable[None]]


@dataclass
class Journal:
    """The changes made on one environment, in order."""

    environment: str
    entries: list[Undo] = field(default_factory=list)

    def record(self, phase: Phase, description: str,
               undo: Callable[[], Awaitable[None]]) -> None:
        """Record a change the engine has made."""
        self.entries.append(Undo(phase, description, undo))

    def set_aside(self) -> list[Undo]:
        """The containers set aside, in the order it happened."""
        return [entry for entry in self.entries if entry.phase == "set-aside"]

    async def rollback(self, report: Callable[[str], None]) -> list[str]:
        """Undo every recorded change; return the undo steps that failed.

        Parameters
        ----------
        report
            Called with a message before each undo step.
        """
        failures: list[str] = []
        passes = (
            [e for e in reversed(self.entries) if e.phase in ("created", "started")],
            [e for e in self.entries if e.phase == "set-aside"],
            # The GPU reservations: the new ones dropped, those they replaced put back.
            [e for e in reversed(self.entries) if e.phase == "gpus"],
            [e for e in reversed(self.entries) if e.phase == "resource"],
        )
        for entries in passes:
            for entry in entries:
                report(f"undo: {entry.description}")
                try:
                    await entry.undo()
                except Exception as error:  # reported; the other undo steps still run
                    failures.append(f"{self.environment}: undo {entry.description}: "
                                    f"{error}")
        self.entries.clear()
        return failures

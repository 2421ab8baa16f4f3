"""Progress of an apply, for progress bars (CLI) and widgets.

A callback receives one :class:`SurgeProgress` per finished step: ``step`` counts steps
done across every environment, ``total`` is how many the plan has (networks and volumes
to create, containers to set aside, create, start or remove, health waits, the final
clean-up of each environment). Rollback messages come with ``step == total``. The
callback runs in the event loop that applies; an exception it raises is logged, never
allowed to break the apply (a broken progress bar must not leave half a deployment).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "ProgressReporter", "SurgeProgress"]

_log = logging.getLogger("ghostpanel_kernel.surge")


@dataclass(frozen=True)
class SurgeProgress:
    """One step of an apply, destroy or scale.

    Attributes
    ----------
    step
        Steps done so far, all environments together.
    total
        Steps in all.
    environment
        The environment the step ran on.
    message
        What it did, e.g. ``started shop_web``.

    Examples
    --------
    >>> SurgeProgress(3, 7, "east", "started shop_web").fraction
    0.42857142857142855
    """

    step: int
    total: int
    environment: str
    message: str

    @property
    def fraction(self) -> float:
        """``step / total`` (1.0 when there is nothing to do)."""
        return self.step / self.total if self.total else 1.0


ProgressCallback = Callable[[SurgeProgress], None]


class ProgressReporter:
    """Counts steps and calls the callback, shielding the apply from its errors."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self._callback = callback
        self.total = total
        self.step = 0

    def done(self, environment: str, message: str) -> None:
        """One step finished."""
        self.step = min(self.step + 1, self.total)
        self._emit(environment, message)

    def note(self, environment: str, message: str) -> None:
        """A message that is no step of the plan (rollback, warnings)."""
        self._emit(environment, message)

    def _emit(self, environment: str, message: str) -> None:
        if self._callback is None:
            return
        try:
            self._callback(SurgeProgress(self.step, self.total, environment, message))
        except Exception:  # see the module docstring
            _log.exception("a Surge progress callback failed")

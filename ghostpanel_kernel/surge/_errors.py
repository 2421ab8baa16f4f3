"""The error Surge raises before it touches anything: a Boltfile it cannot apply."""

from __future__ import annotations

from collections.abc import Sequence

from ..bolt import Diagnostic
from ..engine import GhostPanelError

__all__ = ["SurgeError"]


class SurgeError(GhostPanelError):
    """A Boltfile Surge refuses to apply; raised before any engine is changed.

    Bolt's own errors (from :func:`ghostpanel_kernel.bolt.validate`) come with their
    diagnostics; GhostPanel's refusals (a ``build`` service, a key Surge cannot give the
    engine, ``replicas = -1``, a service no selected environment may run) with a message
    only.

    Parameters
    ----------
    message
        What is wrong, in the operator's terms.
    diagnostics
        The validator's error diagnostics, when the Boltfile is invalid.

    Examples
    --------
    >>> str(SurgeError("service `web` uses `build`; Surge runs images only"))
    'service `web` uses `build`; Surge runs images only'
    """

    def __init__(self, message: str, *, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics = tuple(diagnostics)

    def __str__(self) -> str:
        if not self.diagnostics:
            return self.message
        return "\n".join([self.message, *(f"  {d}" for d in self.diagnostics)])

    def __reduce__(self) -> tuple[object, ...]:  # keyword-only diagnostics survive pickling
        return (_rebuild, (self.message, self.diagnostics))


def _rebuild(message: str, diagnostics: tuple[Diagnostic, ...]) -> SurgeError:
    return SurgeError(message, diagnostics=diagnostics)

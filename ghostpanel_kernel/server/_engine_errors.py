"""Engine errors as the problem answers of ``/api/v1`` routes.

Every route that calls the engine turns a :class:`GhostPanelError` into its answer here,
so that one failure reads the same on every route: an engine that cannot be reached is a
``502`` (``504`` when it timed out) naming its socket; an engine that refused a request
for the client's reasons (no such object, a name in use) passes that status on; an
engine that failed on its own side is a ``502``, never the agent's ``500``.
"""

from __future__ import annotations

from typing import Final

from starlette.responses import Response

from .._exceptions import EngineAPIError, EngineConnectionError, EngineTimeout, GhostPanelError
from ._problems import problem_response

__all__ = ["CLIENT_STATUSES", "engine_problem"]

#: Engine statuses that are about the request, passed on as they are. Others (401/403
#: from an engine that is itself an agent, 5xx) are the engine's trouble: a 502.
CLIENT_STATUSES: Final = frozenset({400, 404, 409, 422})


def engine_problem(error: GhostPanelError, *, not_found: str | None = None) -> Response:
    """The problem answer for an engine call that failed with ``error``.

    Parameters
    ----------
    error
        What the engine client raised.
    not_found
        The detail of a ``404`` (e.g. ``"no container 'web' on this agent's engine"``);
        by default the engine's own message.
    """
    if isinstance(error, EngineConnectionError):
        status = 504 if isinstance(error, EngineTimeout) else 502
        return problem_response(status, f"the engine did not answer: {error}",
                                engine=error.endpoint)
    if isinstance(error, EngineAPIError) and error.status_code in CLIENT_STATUSES:
        if error.status_code == 404 and not_found is not None:
            return problem_response(404, not_found)
        return problem_response(error.status_code, f"the engine refused: {error.message}")
    return problem_response(502, f"the engine refused: {error}")

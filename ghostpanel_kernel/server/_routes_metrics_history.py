"""Routes of ``/api/v1`` for the metrics history (docs/metrics.md).

``GET /api/v1/metrics/history`` answers ``{"columns": [...], "rows": [[...]]}`` with
``time`` (unix seconds), ``environment``, ``container``, ``metric``, ``value``, in time
order; ``GET /api/v1/metrics/events`` the container events the same way. Both read
the agent's store (its sampler's, or the folder of ``AgentSettings.metrics_path``
when sampling is off) in a worker thread, with plain SQLite and no pandas: the agent's
memory budget holds. Without ``since`` the last hour is answered; an answer of more
than :data:`MAX_ROWS` rows is refused (422) rather than built.

Contract for every ``_routes_*`` module: ``ROUTES`` and ``PATHS`` (see _routes_network).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ._openapi import json_content, problem_responses
from ._problems import problem_response

if TYPE_CHECKING:
    from ..metrics._store import MetricsStore

__all__ = ["PATHS", "ROUTES"]

_HISTORY: Final = "/api/v1/metrics/history"
_EVENTS: Final = "/api/v1/metrics/events"
_DEFAULT_SINCE: Final = "1h"
#: The most rows one history answer holds: a day of raw samples of 100 containers is
#: 8.6 million, which would cost the agent far more than its memory budget. Past it
#: the answer is a 422 saying to narrow the window, filter or give a step.
MAX_ROWS: Final = 200_000


def _store(request: Request) -> MetricsStore:
    """The sampler's store, else one opened on the agent's metrics folder (kept)."""
    state = request.app.state
    sampler = getattr(state, "sampler", None)
    if sampler is not None:
        store: MetricsStore = sampler.store
        return store
    opened = getattr(state, "metrics_store", None)
    if opened is None:
        from ..metrics._store import MetricsStore

        opened = MetricsStore(state.settings.metrics_path)
        state.metrics_store = opened
    return opened


def _names(request: Request, key: str) -> list[str] | None:
    """A filter given as ``?key=a&key=b`` or ``?key=a,b``; None when absent."""
    values = [part for given in request.query_params.getlist(key)
              for part in given.split(",") if part]
    return values or None


async def history(request: Request) -> Response:
    """``GET /api/v1/metrics/history``: stored samples as columns and rows."""
    query = request.query_params
    store = _store(request)
    try:
        rows = await asyncio.to_thread(
            store.rows, containers=_names(request, "container"),
            environments=_names(request, "environment"),
            metrics=_names(request, "metric"), since=query.get("since") or _DEFAULT_SINCE,
            until=query.get("until") or None, step=query.get("step") or None,
            aggregate=query.get("aggregate") or "mean", max_rows=MAX_ROWS)
    except ValueError as error:
        return problem_response(422, str(error))
    return JSONResponse({"columns": ["time", "environment", "container", "metric",
                                     "value"], "rows": [list(row) for row in rows]})


async def events(request: Request) -> Response:
    """``GET /api/v1/metrics/events``: stored container events as columns and rows."""
    from ..metrics._names import ContainerEvent

    query = request.query_params
    store = _store(request)
    try:
        found = await asyncio.to_thread(
            store.event_rows, containers=_names(request, "container"),
            environments=_names(request, "environment"), kinds=_names(request, "kind"),
            since=query.get("since") or _DEFAULT_SINCE, until=query.get("until") or None)
    except ValueError as error:
        return problem_response(422, str(error))
    return JSONResponse({"columns": list(ContainerEvent._fields),
                         "rows": [list(event) for event in found]})


ROUTES: list[BaseRoute] = [Route(_HISTORY, history, methods=["GET"]),
                           Route(_EVENTS, events, methods=["GET"])]


def _param(name: str, description: str, schema: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False,
            "schema": schema or {"type": "string"}, "description": description}


_WINDOW = [
    _param("since", "Start of the window: `1h`, `30m`, `7d` (ago), unix seconds or ISO "
                    "8601. Default: `1h`."),
    _param("until", "End of the window (excluded), same forms. Default: now and later."),
    _param("container", "Only these container names (repeat, or comma-separated)."),
    _param("environment", "Only these environments (repeat, or comma-separated)."),
]


def _table(columns: list[str], description: str) -> dict[str, Any]:
    return {"description": description, "content": json_content({
        "type": "object", "required": ["columns", "rows"],
        "properties": {"columns": {"type": "array", "items": {"type": "string"},
                                   "example": columns},
                       "rows": {"type": "array", "items": {"type": "array"}}}})}


PATHS: dict[str, dict[str, Any]] = {
    _HISTORY: {"get": {
        "summary": "Stored metrics of the containers over time", "tags": ["metrics"],
        "description": "Raw samples where still kept (1 day by default), 1-minute then "
                       "1-hour rollups before that; `step` buckets them.",
        "parameters": [*_WINDOW,
                       _param("metric", "Only these metrics (repeat, or comma-separated)."),
                       _param("step", "Bucket width: seconds or `1m`, `1h`..."),
                       _param("aggregate", "What a bucket gives.",
                              {"enum": ["mean", "max", "min", "count"]})],
        "responses": {
            "200": _table(["time", "environment", "container", "metric", "value"],
                          "Rows of time (unix seconds), environment, container, metric, "
                          "value (null: unknown), in time order."),
            **problem_responses((422, "A bad since, until, step or aggregate, or an "
                                     "answer of more than 200,000 rows."))}}},
    _EVENTS: {"get": {
        "summary": "Stored container events (start, die, restart, oom, health, destroy)",
        "tags": ["metrics"],
        "parameters": [*_WINDOW, _param("kind", "Only these kinds (repeat, or "
                                                "comma-separated).")],
        "responses": {
            "200": _table(["time", "environment", "container", "container_id", "kind",
                           "exit_code", "health"],
                          "Rows of time (unix seconds), environment, container, "
                          "container_id, kind, exit_code, health, in time order."),
            **problem_responses((422, "A bad since or until."))}}},
}

"""The gateway's table of the agent's ``/api/v1`` routes, per environment.

Behind the gateway an environment looks like an agent at
``/services/ghostpanel/env/{name}``; its ``/api/v1/...`` requests are classified here the
way Engine API requests are by ``_engine_policy``: which permission each route needs,
whether it changes anything, what its ``{id}`` or ``{name}`` names and which answers the
gateway filters by owner. A route not in the table is refused (``403``), and a unit test
checks that every route the agent documents (each ``server/_routes_*.PATHS`` and
``server/_api.PATHS``) has an entry, so a new agent route cannot slip through unguarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ._engine_routes import RouteEntry, match_segments
from ._refusal import Refusal

__all__ = ["API_ROUTES", "ApiCall", "ApiRoute", "classify_api"]


@dataclass(frozen=True)
class ApiRoute(RouteEntry):
    """One entry of the ``/api/v1`` table.

    Attributes
    ----------
    method
        ``GET``, ``POST`` or ``DELETE``; WebSocket routes are ``GET`` with
        ``websocket`` set.
    template
        The path, ``/api/v1/...`` with ``{id}`` (a container) or ``{name}``.
    permission, mutating, listing
        As for Engine API routes (``_engine_routes.EngineRoute``).
    target_kind
        What the path's ``{id}``/``{name}`` names (``container``, ``snapshot``), or
        what a create makes (``container``); empty for routes that name no object.
    review
        What the gateway must judge in the request body before forwarding, where the
        route's path alone does not say enough: ``container-create`` (the agent's
        create body), ``boltfile`` (a Boltfile's services, which may ask for admin-only
        options) or ``snapshot-source`` (a snapshot source may be a host path).
    websocket
        Whether the route is a WebSocket.
    """

    review: str | None = None
    websocket: bool = False


@dataclass(frozen=True)
class ApiCall:
    """One classified ``/api/v1`` request (see :class:`ApiRoute` for the fields)."""

    permission: str
    mutating: bool
    template: str
    params: dict[str, str]
    target_kind: str
    listing: str | None
    method: str = "GET"
    review: str | None = None
    websocket: bool = False

    @property
    def target(self) -> str | None:
        """The object the path names, if any."""
        return self.params.get("id") or self.params.get("name")


def _a(method: str, template: str, permission: str, target_kind: str = "", *,
       mutating: bool | None = None, listing: str | None = None,
       review: str | None = None, websocket: bool = False) -> ApiRoute:
    changes = method != "GET" if mutating is None else mutating
    return ApiRoute(method, template, permission, changes, target_kind, listing, review,
                    websocket)


API_ROUTES: Final[tuple[ApiRoute, ...]] = (
    # The agent itself.
    _a("GET", "/api/v1/health", "read"),
    _a("GET", "/api/v1/info", "read"),
    _a("GET", "/api/v1/openapi.json", "read"),
    _a("GET", "/api/v1/docs", "read"),
    # Containers.
    _a("GET", "/api/v1/containers", "read", listing="containers"),
    _a("POST", "/api/v1/containers", "create", "container", review="container-create"),
    _a("GET", "/api/v1/containers/{id}", "read", "container"),
    _a("DELETE", "/api/v1/containers/{id}", "create", "container"),
    _a("POST", "/api/v1/containers/{id}/start", "lifecycle", "container"),
    _a("POST", "/api/v1/containers/{id}/stop", "lifecycle", "container"),
    _a("POST", "/api/v1/containers/{id}/restart", "lifecycle", "container"),
    # WebSockets.
    _a("GET", "/api/v1/events", "read", listing="events", websocket=True),
    _a("GET", "/api/v1/containers/{id}/exec", "exec", "container", mutating=True,
       websocket=True),
    # GPUs.
    _a("GET", "/api/v1/gpus", "read"),
    _a("POST", "/api/v1/gpus/allocate", "gpus"),
    _a("POST", "/api/v1/gpus/release", "gpus"),
    _a("GET", "/api/v1/containers/{id}/nvbind", "read", "container"),
    # The QUIC policy decides which peers reach the whole agent: an admin's setting.
    _a("GET", "/api/v1/network/quic", "read"),
    _a("POST", "/api/v1/network/quic", "admin"),
    _a("DELETE", "/api/v1/network/quic", "admin"),
    # Snapshots. One container's snapshot is owner-checked like any container call;
    # the environment-wide routes name volumes, containers or host paths by source
    # and snapshot name, which the gateway cannot tie to an owner: admin-only.
    _a("POST", "/api/v1/containers/{id}/snapshot", "snapshots", "container"),
    _a("GET", "/api/v1/snapshots", "read"),
    _a("POST", "/api/v1/snapshots", "admin", review="snapshot-source"),
    _a("POST", "/api/v1/snapshots/prune", "admin"),
    _a("POST", "/api/v1/snapshots/{name}/restore", "admin", "snapshot"),
    _a("DELETE", "/api/v1/snapshots/{name}", "admin", "snapshot"),
    # Surge: a plan and a status change nothing.
    _a("POST", "/api/v1/surge/plan", "surge", mutating=False, review="boltfile"),
    _a("POST", "/api/v1/surge/apply", "surge", review="boltfile"),
    _a("POST", "/api/v1/surge/deploy", "surge", review="boltfile"),
    _a("POST", "/api/v1/surge/destroy", "surge", review="boltfile"),
    _a("GET", "/api/v1/surge/status", "read"),
    _a("POST", "/api/v1/containers/{id}/surge", "surge", "container"),
    # Alerts (issue 12): reading them is reading (a non-admin sees the alerts of the
    # containers their teams own); acknowledging one changes only who is told, like a
    # lifecycle action. A silence is a pattern over every container of the environment,
    # so it is an admin's. Rules come from the agent's rules file.
    _a("GET", "/api/v1/alerts", "read", listing="alerts"),
    _a("GET", "/api/v1/alerts/rules", "read"),
    _a("GET", "/api/v1/alerts/silences", "read"),
    _a("POST", "/api/v1/alerts/silences", "admin"),
    _a("DELETE", "/api/v1/alerts/silences/{name}", "admin"),
    _a("POST", "/api/v1/alerts/{name}/ack", "lifecycle"),
    # Metrics history (issue 12): stored samples and container events, read only, and
    # for a non-admin only the rows of containers their teams own.
    _a("GET", "/api/v1/metrics/history", "read", listing="metrics"),
    _a("GET", "/api/v1/metrics/events", "read", listing="metrics"),
)


def classify_api(method: str, path: str) -> ApiCall:
    """Classify a request to an environment's ``/api/v1``.

    Parameters
    ----------
    method
        The HTTP method (``GET`` for a WebSocket handshake).
    path
        The decoded path after the ``/env/{name}`` prefix (``/api/v1/containers``),
        without the query.

    Raises
    ------
    Refusal
        ``400`` for a path with empty, ``.`` or ``..`` segments or control characters;
        ``403`` for a method and path not in the table.

    Examples
    --------
    >>> call = classify_api("POST", "/api/v1/containers/web/stop")
    >>> call.permission, call.params, call.mutating
    ('lifecycle', {'id': 'web'}, True)
    """
    method = method.upper()
    if method == "HEAD":
        method = "GET"
    if not path.startswith("/") or any(ord(char) < 0x20 or char in "\x7f\\"
                                       for char in path):
        raise Refusal(400, f"the path {path!r} is not in canonical form")
    segments = tuple(path[1:].split("/"))
    if any(segment in ("", ".", "..") for segment in segments):
        raise Refusal(400, f"the path {path!r} is not in canonical form (an empty, '.' "
                           "or '..' segment)")
    for route in API_ROUTES:
        if route.method != method:
            continue
        params = match_segments(route.parts, segments)
        if params is not None:
            return ApiCall(permission=route.permission, mutating=route.mutating,
                           template=route.template, params=params,
                           target_kind=route.target_kind, listing=route.listing,
                           method=method, review=route.review,
                           websocket=route.websocket)
    raise Refusal(403, f"{method} {path} is not in the gateway's table of /api/v1 routes")

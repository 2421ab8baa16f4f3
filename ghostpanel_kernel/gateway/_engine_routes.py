"""The gateway's table of Engine API routes: every route it forwards, and what it needs.

A request whose method and path match no entry is refused (``403``): swarm, services,
nodes, tasks, secrets, configs, plugins, session/grpc, cluster volumes and Podman's own
``libpod`` API are not here, so they never reach an engine. The templates follow the
Docker Engine API (versions 1.41 to 1.47, the compat API Podman serves too).

Each entry names the permission the call needs (``_permissions.PERMISSIONS``), whether
it changes anything (mutating calls are written to the audit log), the kind of object
its ``{id}``/``{name}`` names, and, for listings, what the gateway filters by owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["ENGINE_ROUTES", "EngineRoute", "RouteEntry", "match_segments"]


@dataclass(frozen=True)
class RouteEntry:
    """What an entry of the gateway's Engine API and ``/api/v1`` tables both hold.

    The fields are in the order the tables' entries are built with, positionally; each
    table's class adds its own after them and documents them all.
    """

    method: str
    template: str
    permission: str
    mutating: bool
    target_kind: str
    listing: str | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        """The template's segments."""
        return tuple(self.template.strip("/").split("/"))


@dataclass(frozen=True)
class EngineRoute(RouteEntry):
    """One entry of the table.

    Attributes
    ----------
    method
        The HTTP method (``GET`` routes also answer ``HEAD`` only where listed).
    template
        The path without the version prefix; ``{id}`` and ``{name}`` are one segment,
        except that an image's ``{name}`` (``greedy``) may span several
        (``/images/docker.io/library/busybox/json``).
    permission
        The permission a caller needs on the environment.
    mutating
        Whether the call changes the engine's state (it is then audited).
    target_kind
        What the path's parameter names: ``container``, ``exec``, ``image``, ``volume``,
        ``network`` or ``system`` (no object).
    listing
        For calls whose answer the gateway filters by owner: ``containers``,
        ``volumes``, ``networks``, ``events`` or ``df``.
    prune
        For prune calls, what they remove (``containers``, ``images``, ``volumes``,
        ``networks``, ``build``): the gateway limits a non-admin's prune to their
        teams' objects.
    greedy
        Whether the template's parameter may span several segments (image names).
    """

    prune: str | None = None
    greedy: bool = False


def match_segments(parts: tuple[str, ...],
                   segments: tuple[str, ...]) -> dict[str, str] | None:
    """The parameters of a template whose every ``{...}`` part is one segment.

    Shared by the Engine API and ``/api/v1`` route tables, which match a path the same
    way (a greedy image name is the engine table's own case).

    Parameters
    ----------
    parts : tuple of str
        The template's segments (a route's ``parts``).
    segments : tuple of str
        The request path's segments.

    Returns
    -------
    dict or None
        Each ``{name}`` part's segment by name; None when the path does not match.

    Examples
    --------
    >>> match_segments(("containers", "{id}", "json"), ("containers", "web", "json"))
    {'id': 'web'}
    >>> match_segments(("containers", "{id}", "json"), ("containers", "web")) is None
    True
    """
    if len(parts) != len(segments):
        return None
    params: dict[str, str] = {}
    for part, segment in zip(parts, segments, strict=True):
        if part.startswith("{"):
            params[part[1:-1]] = segment
        elif part != segment:
            return None
    return params

def _r(method: str, template: str, permission: str, target_kind: str, *,
       mutating: bool | None = None, listing: str | None = None, prune: str | None = None,
       greedy: bool = False) -> EngineRoute:
    changes = method not in ("GET", "HEAD") if mutating is None else mutating
    return EngineRoute(method, template, permission, changes, target_kind, listing, prune,
                       greedy)


# Order matters where a fixed word could also be a parameter: the engines' routers try
# routes in registration order, and so does the gateway (``/images/json`` before
# ``DELETE /images/{name}``, ``/images/get`` before ``/images/{name}/get``).
ENGINE_ROUTES: Final[tuple[EngineRoute, ...]] = (
    # System.
    _r("GET", "/_ping", "read", "system"),
    _r("HEAD", "/_ping", "read", "system"),
    _r("GET", "/version", "read", "system"),
    _r("GET", "/info", "read", "system"),
    _r("GET", "/events", "read", "system", listing="events"),
    _r("GET", "/system/df", "read", "system", listing="df"),
    # ``docker login`` asks the engine to check registry credentials: it changes nothing
    # on the engine, and pulling from a private registry needs it, so ``images``.
    _r("POST", "/auth", "images", "system", mutating=False),
    # Containers.
    _r("GET", "/containers/json", "read", "system", listing="containers"),
    _r("POST", "/containers/create", "create", "container"),
    _r("POST", "/containers/prune", "create", "system", prune="containers"),
    _r("GET", "/containers/{id}/json", "read", "container"),
    _r("GET", "/containers/{id}/top", "read", "container"),
    _r("GET", "/containers/{id}/logs", "logs", "container"),
    _r("GET", "/containers/{id}/changes", "read", "container"),
    # An export is the container's whole file system: reading files.
    _r("GET", "/containers/{id}/export", "files", "container"),
    _r("GET", "/containers/{id}/stats", "read", "container"),
    _r("POST", "/containers/{id}/resize", "lifecycle", "container", mutating=False),
    _r("POST", "/containers/{id}/start", "lifecycle", "container"),
    _r("POST", "/containers/{id}/stop", "lifecycle", "container"),
    _r("POST", "/containers/{id}/restart", "lifecycle", "container"),
    _r("POST", "/containers/{id}/kill", "lifecycle", "container"),
    _r("POST", "/containers/{id}/pause", "lifecycle", "container"),
    _r("POST", "/containers/{id}/unpause", "lifecycle", "container"),
    _r("POST", "/containers/{id}/wait", "lifecycle", "container", mutating=False),
    _r("POST", "/containers/{id}/update", "create", "container"),
    _r("POST", "/containers/{id}/rename", "create", "container"),
    # Attaching gives the main process's stdin: as much as an exec.
    _r("POST", "/containers/{id}/attach", "exec", "container"),
    _r("GET", "/containers/{id}/attach/ws", "exec", "container", mutating=True),
    _r("DELETE", "/containers/{id}", "create", "container"),
    _r("HEAD", "/containers/{id}/archive", "files", "container"),
    _r("GET", "/containers/{id}/archive", "files", "container"),
    _r("PUT", "/containers/{id}/archive", "files", "container"),
    # Exec.
    _r("POST", "/containers/{id}/exec", "exec", "container"),
    _r("POST", "/exec/{id}/start", "exec", "exec"),
    _r("POST", "/exec/{id}/resize", "exec", "exec", mutating=False),
    _r("GET", "/exec/{id}/json", "read", "exec"),
    # Images: environment-wide, not filtered by owner.
    _r("GET", "/images/json", "read", "system"),
    _r("POST", "/images/create", "images", "system"),
    _r("GET", "/images/search", "read", "system"),
    _r("POST", "/images/prune", "images", "system", prune="images"),
    _r("GET", "/images/get", "images", "system"),
    _r("POST", "/images/load", "images", "system"),
    _r("GET", "/images/{name}/get", "images", "image", greedy=True),
    _r("GET", "/images/{name}/json", "read", "image", greedy=True),
    _r("GET", "/images/{name}/history", "read", "image", greedy=True),
    _r("POST", "/images/{name}/push", "images", "image", greedy=True),
    _r("POST", "/images/{name}/tag", "images", "image", greedy=True),
    _r("DELETE", "/images/{name}", "images", "image", greedy=True),
    _r("POST", "/build", "images", "system"),
    _r("POST", "/build/prune", "images", "system", prune="build"),
    # A commit reads the container named by ``?container=``: classify() makes that the
    # call's ``id`` so that the caller checks its owner like any container route's.
    _r("POST", "/commit", "images", "container"),
    _r("GET", "/distribution/{name}/json", "read", "image", greedy=True),
    # Volumes.
    _r("GET", "/volumes", "read", "system", listing="volumes"),
    _r("POST", "/volumes/create", "volumes", "volume"),
    _r("POST", "/volumes/prune", "volumes", "system", prune="volumes"),
    _r("GET", "/volumes/{name}", "read", "volume"),
    _r("DELETE", "/volumes/{name}", "volumes", "volume"),
    # Networks.
    _r("GET", "/networks", "read", "system", listing="networks"),
    _r("POST", "/networks/create", "networks", "network"),
    _r("POST", "/networks/prune", "networks", "system", prune="networks"),
    _r("GET", "/networks/{id}", "read", "network"),
    _r("DELETE", "/networks/{id}", "networks", "network"),
    _r("POST", "/networks/{id}/connect", "networks", "network"),
    _r("POST", "/networks/{id}/disconnect", "networks", "network"),
)

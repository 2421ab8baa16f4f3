"""Classify an Engine API request: which route it is, and what a caller needs for it.

:func:`classify` is the first thing the gateway does with an Engine API request (after
authentication): it checks that the path is canonical (``_canonical_path``), finds the
route in the table (``_engine_routes``) and returns an :class:`EngineCall` saying which
permission the call needs and what it acts on. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, quote

from ._canonical_path import CanonicalPath, canonical_path
from ._engine_routes import ENGINE_ROUTES, EngineRoute, match_segments
from ._refusal import Refusal

__all__ = ["EngineCall", "Refusal", "classify"]

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})


@dataclass(frozen=True)
class EngineCall:
    """One classified Engine API request.

    Attributes
    ----------
    method
        The HTTP method.
    version
        The API version prefix (``"1.41"``), or None when the path had none.
    path
        The canonical decoded path without the version prefix.
    template
        The route's template (``/containers/{id}/stop``).
    params
        The template's parameters, percent-decoded: ``id`` or ``name``. Engines strip a
        leading ``/`` from names, so the caller resolves ``params["id"]`` to a full id
        before judging ownership and forwards by that id only. For ``POST /commit``,
        ``id`` is the ``container`` query parameter.
    permission
        The permission the call needs.
    mutating
        Whether it changes anything (audited).
    target_kind
        What ``params`` name (``container``, ``exec``, ``image``, ``volume``,
        ``network``), or ``system``.
    listing
        What the gateway filters in the answer by owner, or None.
    prune
        What a prune call removes, or None.
    """

    method: str
    version: str | None
    path: str
    template: str
    params: dict[str, str]
    permission: str
    mutating: bool
    target_kind: str
    listing: str | None
    prune: str | None = None
    query: dict[str, list[str]] = field(default_factory=dict)

    @property
    def target(self) -> str | None:
        """The object the call names (``params["id"]`` or ``params["name"]``), if any."""
        return self.params.get("id") or self.params.get("name")

    def forward_path(self, target: str | None = None) -> str:
        """The path to forward: the version prefix and the template filled in.

        ``target`` replaces the parameter (the resolved full id); percent-encoding is
        applied where the value needs it.
        """
        value = self.target if target is None else target
        safe = "/:@" if self.target_kind == "image" else ":@"
        path = self.template
        for name in ("id", "name"):
            if "{" + name + "}" in path and value is not None:
                path = path.replace("{" + name + "}", quote(value, safe=safe))
        return (f"/v{self.version}" if self.version else "") + path


def _match(route: EngineRoute, segments: tuple[str, ...]) -> dict[str, str] | None:
    parts = route.parts
    if not route.greedy:
        return match_segments(parts, segments)
    # A greedy parameter: fixed words before and after it, one or more segments in it.
    index = next(i for i, part in enumerate(parts) if part.startswith("{"))
    before, after = parts[:index], parts[index + 1:]
    if len(segments) < len(before) + len(after) + 1:
        return None
    if segments[:len(before)] != before:
        return None
    if after and segments[len(segments) - len(after):] != after:
        return None
    middle = segments[len(before):len(segments) - len(after)]
    return {parts[index][1:-1]: "/".join(middle)}


def _find(method: str, segments: tuple[str, ...]) -> tuple[EngineRoute, dict[str, str]] | None:
    for route in ENGINE_ROUTES:
        if route.method == method:
            params = _match(route, segments)
            if params is not None:
                return route, params
    return None


def _decoded_params(route: EngineRoute, path: CanonicalPath) -> dict[str, str]:
    params = _match(route, path.decoded)
    assert params is not None  # the raw path matched; decoded differs only in params
    return params


def _check_leading_slash(route: EngineRoute, path: CanonicalPath, raw: bytes) -> None:
    parts = route.parts
    for index, segment in enumerate(path.decoded):
        if not segment.startswith("/"):
            continue
        if route.greedy or not parts[index].startswith("{") or route.target_kind not in (
                "container", "exec", "network", "volume"):
            raise Refusal(400, f"the path {raw.decode('ascii')!r} percent-encodes a '/' "
                               "outside an object's name; the gateway forwards canonical "
                               "paths only")


def classify(method: str, raw_path: bytes, query_string: bytes = b"") -> EngineCall:
    """Classify an Engine API request.

    Parameters
    ----------
    method
        The HTTP method.
    raw_path
        The path after the gateway's ``/env/{name}/engine`` prefix, as sent (ASGI's
        ``raw_path``); a ``?query`` part, if present, is split off.
    query_string
        The query, where the caller has it apart from the path.

    Raises
    ------
    Refusal
        ``400`` for a path not in canonical form or one a fixed word of which is
        percent-encoded (engines would route it differently); ``403`` for a method and
        path not in the gateway's table.

    Examples
    --------
    >>> call = classify("POST", b"/v1.41/containers/web/stop")
    >>> call.template, call.params, call.permission, call.mutating
    ('/containers/{id}/stop', {'id': 'web'}, 'lifecycle', True)
    >>> classify("GET", b"/v1.41/images/docker.io/library/busybox/json").params
    {'name': 'docker.io/library/busybox'}
    """
    raw, _, query_part = raw_path.partition(b"?")
    query_bytes = query_string or query_part
    method = method.upper()
    path = canonical_path(raw)
    shown = (f"/v{path.version}" if path.version else "") + path.path
    if method not in _METHODS:
        raise Refusal(403, f"{method} {shown} is not in the gateway's table of Engine "
                           "API routes")
    found = _find(method, path.raw)
    by_decoded = _find(method, path.decoded)
    decoded_template = by_decoded[0].template if by_decoded else None
    if (found[0].template if found else None) != decoded_template or (
            path.decoded and path.raw[0] != path.decoded[0]
            and path.decoded[0].startswith("v")):
        # A fixed word sent percent-encoded (``/containers/%6Ason``): Docker's router
        # matches the decoded path, Podman's the encoded one, so the two would run
        # different routes. Refuse rather than guess.
        raise Refusal(400, f"the path {raw.decode('ascii')!r} percent-encodes a fixed "
                           "part of an Engine API route; the gateway forwards canonical "
                           "paths only")
    if found is None and any(segment.startswith("/") for segment in path.decoded):
        raise Refusal(400, f"the path {raw.decode('ascii')!r} percent-encodes a '/' "
                           "outside an object's name; the gateway forwards canonical "
                           "paths only")
    if found is None:
        raise Refusal(403, f"{method} {shown} is not in the gateway's table of Engine "
                           "API routes: swarm, plugins, sessions and Podman's libpod API "
                           "are not forwarded")
    route = found[0]
    params = _decoded_params(route, path)
    _check_leading_slash(route, path, raw)
    try:
        query = parse_qs(query_bytes.decode("utf-8"), keep_blank_values=True,
                         strict_parsing=False)
    except UnicodeDecodeError:
        raise Refusal(400, "the query string is not UTF-8") from None
    if route.template == "/commit":
        containers = query.get("container", [])
        if len(containers) > 1:
            raise Refusal(400, "POST /commit names more than one container")
        if containers:
            params["id"] = containers[0]
    return EngineCall(method=method, version=path.version, path=path.path,
                      template=route.template, params=params,
                      permission=route.permission, mutating=route.mutating,
                      target_kind=route.target_kind, listing=route.listing,
                      prune=route.prune, query=query)

"""Routes of ``/api/v1`` for networking: the agent's QUIC networking policy.

``GET /api/v1/network/quic`` shows the policy in force; ``POST`` sets one, either the
seed's JSON ``{"cluster_id", "endpoints": [CIDR...], "encryption": true}`` or a
Boltfile whose ``[quic_fabric]`` table has ``allowed_endpoints`` (as TOML, or JSON
``{"boltfile"}`` / ``{"path"}``); ``DELETE`` removes it (every peer may connect again).
A policy is stored under the agent's state dir and applies from the next request on
(``_peer_policy``). A policy that would refuse the peer setting it is answered ``409``
unless ``?force=true``: an operator does not lock themself out by a typo. See
``docs/quic-policy.md``.

Contract for every ``_routes_*`` module: ``ROUTES`` (Starlette routes with full paths,
``/api/v1/...``) and ``PATHS`` (their OpenAPI 3.1 path items, keyed by the templated
path), which ``_api.api_app`` mounts and ``_openapi`` documents.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ._boltfile_request import (
    TOML_TYPES,
    InputProblem,
    boltfile_from_json,
    read_boltfile_request,
)
from ._openapi import json_content, problem_responses
from ._peer_policy import PeerPolicy
from ._problems import problem_response
from ._quic_policy import PolicyError, QuicPolicy, policy_from_document, policy_from_quic_fabric
from ._request_body import BodyProblem, json_object
from ._settings import AgentSettings

__all__ = ["PATHS", "ROUTES"]

_PATH: Final = "/api/v1/network/quic"

_log = logging.getLogger("ghostpanel.agent.policy")


def _holder(request: Request) -> PeerPolicy | None:
    return getattr(request.app.state, "peer_policy", None)


def _listeners(settings: AgentSettings) -> dict[str, Any]:
    """Where the agent listens (the policy applies to ``https`` and ``http3``)."""
    on_socket = settings.unix_socket is not None
    return {"https": None if on_socket else settings.listen,
            "http3": settings.http3_bind,
            "unix": settings.listen if on_socket else None}


def _answer(policy: QuicPolicy | None, settings: AgentSettings,
            notes: list[str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = policy.to_dict() if policy is not None else {
        "cluster_id": None, "endpoints": [], "encryption": True}
    document["enforced"] = policy is not None and settings.unix_socket is None
    document["listeners"] = _listeners(settings)
    if notes:
        document["notes"] = notes
    return document


def _force(request: Request) -> bool:
    value = request.query_params.get("force", "false").lower()
    if value not in ("true", "1", "false", "0", ""):
        raise InputProblem(422, f"`force` must be true or false, not {value!r}",
                           option="force")
    return value in ("true", "1", "")


async def _policy_of(request: Request) -> QuicPolicy:
    """The policy a ``POST`` body sets (see the module notes)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type in TOML_TYPES:
        given = await read_boltfile_request(request, {"force": "bool"})
        return _from_boltfile(given.boltfile.to_dict(), given.boltfile.path)
    try:
        document = await json_object(request)
    except BodyProblem as error:
        raise InputProblem(error.status, error.detail) from error
    if "boltfile" in document or "path" in document:
        # ``force`` is read from the query string only (see set_policy).
        query = {k: v for k, v in request.query_params.items() if k != "force"}
        given = boltfile_from_json(document, query, {})
        return _from_boltfile(given.boltfile.to_dict(), given.boltfile.path)
    return policy_from_document(document)


def _from_boltfile(table: dict[str, Any], path: str) -> QuicPolicy:
    fabric = table.get("quic_fabric")
    if not isinstance(fabric, dict):
        raise PolicyError("quic_fabric", "the Boltfile has no [quic_fabric] table; add one "
                                         "with allowed_endpoints = [\"CIDR\", ...]")
    if fabric.get("enabled") is False:
        raise PolicyError("quic_fabric.enabled",
                          "[quic_fabric] has enabled = false; a disabled fabric sets no "
                          "policy (remove the policy with DELETE /api/v1/network/quic, or "
                          "set enabled = true)")
    project = table.get("project")
    return policy_from_quic_fabric(fabric, project=project if isinstance(project, str)
                                   else None, source=f"boltfile {path}")


def _notes(policy: QuicPolicy, settings: AgentSettings) -> list[str]:
    """What the policy asks that the running agent does not do by itself."""
    if policy.bind_address is None and policy.bind_port is None:
        return []
    wanted = f"{policy.bind_address or settings.host}:{policy.bind_port or settings.port}"
    if wanted == settings.http3_bind:
        return []
    return [f"[quic_fabric] asks for HTTP/3 on {wanted}, but this agent listens on "
            f"{settings.http3_bind}; a listener moves only at a restart (ghostpanel agent "
            f"--quic-bind {wanted}). The peer policy applies now."]


async def get_policy(request: Request) -> Response:
    """``GET /api/v1/network/quic``: the policy in force."""
    holder = _holder(request)
    policy = holder.current if holder is not None else None
    return JSONResponse(_answer(policy, request.app.state.settings))


async def set_policy(request: Request) -> Response:
    """``POST /api/v1/network/quic``: store and enforce a policy."""
    holder = _holder(request)
    settings: AgentSettings = request.app.state.settings
    if holder is None:
        return problem_response(503, "this server has no QUIC policy layer")
    try:
        force = _force(request)
        policy = await _policy_of(request)
    except InputProblem as problem:
        return problem.response()
    except PolicyError as error:
        return problem_response(422, error.message, field=error.field)
    peer = request.client.host if request.client is not None else ""
    if settings.unix_socket is None and peer and not policy.allows(peer) and not force:
        return problem_response(
            409, f"this policy would refuse you: your address {peer} is in none of "
                 f"{', '.join(str(n) for n in policy.endpoints)}; add your network, or "
                 "repeat with ?force=true to set it anyway", peer=peer)
    try:
        holder.set(policy)
    except OSError as error:
        _log.error("cannot store the QUIC policy in %s: %s", holder.store.path, error)
        return problem_response(500, f"the agent cannot store the policy: {error.strerror}")
    return JSONResponse(_answer(policy, settings, _notes(policy, settings)))


async def delete_policy(request: Request) -> Response:
    """``DELETE /api/v1/network/quic``: remove the policy; every peer may connect."""
    holder = _holder(request)
    if holder is None:
        return problem_response(503, "this server has no QUIC policy layer")
    try:
        removed = holder.clear()
    except OSError as error:
        return problem_response(500, f"the agent cannot remove the policy: {error.strerror}")
    return JSONResponse({"removed": removed,
                         **_answer(None, request.app.state.settings)})


ROUTES: list[BaseRoute] = [
    Route(_PATH, get_policy, methods=["GET"]),
    Route(_PATH, set_policy, methods=["POST"]),
    Route(_PATH, delete_policy, methods=["DELETE"]),
]


# -- OpenAPI ---------------------------------------------------------------------------

_CIDRS: Final = {"type": "array", "minItems": 1, "maxItems": 256,
                 "items": {"type": "string", "description": "A network in CIDR form, "
                                                            "e.g. 10.0.0.0/8 or fd00::/8."}}

_POLICY_BODY: Final = {
    "type": "object", "required": ["cluster_id", "endpoints"], "additionalProperties": False,
    "properties": {
        "cluster_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "endpoints": _CIDRS,
        "encryption": {"const": True, "description": "There is no plaintext mode: false "
                                                     "is refused with 422."},
    },
}

_BOLTFILE_BODY: Final = {
    "type": "object", "additionalProperties": False,
    "description": "A Boltfile whose [quic_fabric] has allowed_endpoints: its TOML text "
                   "or an absolute path on the agent's host.",
    "properties": {"boltfile": {"type": "string"}, "path": {"type": "string"}},
}

_POLICY: Final = {
    "type": "object", "required": ["cluster_id", "endpoints", "encryption", "enforced"],
    "properties": {
        "cluster_id": {"type": ["string", "null"]},
        "endpoints": {"type": "array", "items": {"type": "string"}},
        "encryption": {"const": True},
        "enforced": {"type": "boolean", "description": "Whether peers are being checked "
                                                      "(false: no policy, or a unix socket)."},
        "source": {"type": "string"}, "updated": {"type": "string"},
        "bind_address": {"type": "string"}, "bind_port": {"type": "integer"},
        "listeners": {"type": "object"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "removed": {"type": "boolean"},
    },
}

PATHS: dict[str, dict[str, Any]] = {
    _PATH: {
        "get": {"summary": "The QUIC networking policy in force", "tags": ["network"],
                "responses": {"200": {"description": "The policy (no policy: empty "
                                                     "endpoints, enforced false).",
                                      "content": json_content(_POLICY)}}},
        "post": {
            "summary": "Set the QUIC networking policy", "tags": ["network"],
            "description": "Peers outside `endpoints` are refused with 403, on HTTPS and "
                           "HTTP/3, from the next request on; stored under the agent's "
                           "state dir.",
            "parameters": [{"name": "force", "in": "query", "required": False,
                            "schema": {"type": "boolean"},
                            "description": "Set a policy that refuses the caller."}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"oneOf": [_POLICY_BODY, _BOLTFILE_BODY]}},
                "application/toml": {"schema": {"type": "string"}}}},
            "responses": {
                "200": {"description": "The policy now in force.",
                        "content": json_content(_POLICY)},
                **problem_responses(
                    (409, "The policy would refuse the caller (repeat with force=true)."),
                    (415, "The body is neither JSON nor TOML."),
                    (422, "encryption false, a bad network (named), a missing member, or "
                          "a Boltfile without [quic_fabric] allowed_endpoints."))}},
        "delete": {"summary": "Remove the QUIC networking policy", "tags": ["network"],
                   "responses": {"200": {"description": "Every peer may connect (with "
                                                        "credentials).",
                                         "content": json_content(_POLICY)}}},
    },
}

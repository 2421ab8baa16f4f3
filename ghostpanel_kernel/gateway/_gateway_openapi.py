"""The gateway's OpenAPI 3.1 document: its own routes, and every environment's API.

The per-environment paths are not written here: they are the agent's own document
(:func:`~ghostpanel_kernel.server._api.api_document`, built from the route modules'
``PATHS``) with each path put under ``/env/{name}``, so that a route added to the agent
appears behind the gateway without anyone remembering to document it twice. Each of
those operations gains the ``name`` path parameter, an ``env``-prefixed
``operationId`` (the agent's ``openapi`` and the gateway's must differ) and the answers
the gateway adds in front of the agent's: ``403`` (the caller's role does not allow
it, or the object belongs to another team) and ``404`` (no such environment).

Paths are relative to the gateway's service prefix (``/services/ghostpanel``), which
the document names as its server.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from ..server._api import api_document
from ..server._openapi import (
    HTTP_METHODS,
    json_content,
    openapi_document,
    problem_responses,
)

__all__ = ["ENV_PREFIX", "GATEWAY_PATHS", "gateway_document"]

#: Where an environment's API lives, relative to the gateway's prefix.
ENV_PREFIX: Final = "/env/{name}"

_ENV_PARAM: Final[dict[str, Any]] = {
    "name": "name", "in": "path", "required": True,
    "description": "The environment's registered name (`GET /api/v1/environments`).",
    "schema": {"type": "string", "minLength": 1}}

_PERMISSIONS_SCHEMA: Final[dict[str, Any]] = {
    "type": "array", "items": {"type": "string"},
    "description": "Permission names (`read`, `logs`, `lifecycle`...: `docs/rbac.md`)."}

_AUDIT_ENTRY: Final[dict[str, Any]] = {
    "type": "object",
    "description": "One audit record: who did what, where, when, and how it ended.",
    "properties": {
        "user": {"type": "string"}, "environment": {"type": ["string", "null"]},
        "action": {"type": "string"}, "target": {"type": ["string", "null"]},
        "result": {"type": "string", "enum": ["allowed", "denied", "failed"]},
        "status": {"type": ["integer", "null"]},
        "request_id": {"type": ["string", "null"]},
        "detail": {"type": ["string", "null"]}}}

_GATEWAY_DENIED: Final = (
    (400, "The path is not in canonical form (an empty, `.` or `..` segment, a control "
          "character): refused, never forwarded."),
    (403, "The caller's role on the environment does not allow this (the problem names "
          "`environment` and `permission`), or the object belongs to another team."),
    (404, "No such environment, or no such object in it."))

#: The gateway's own routes (relative to its prefix).
GATEWAY_PATHS: Final[dict[str, dict[str, Any]]] = {
    "/api/v1/whoami": {"get": {
        "operationId": "whoami", "tags": ["gateway"],
        "summary": "The caller: name, kind, teams, admin flag, permissions per environment.",
        "responses": {"200": {"description": "The caller.", "content": json_content({
            "type": "object", "required": ["name", "kind", "teams", "admin", "permissions"],
            "properties": {
                "name": {"type": "string"}, "kind": {"type": "string"},
                "teams": {"type": "array", "items": {"type": "string"}},
                "admin": {"type": "boolean"},
                "permissions": {"type": "object",
                                "additionalProperties": _PERMISSIONS_SCHEMA}}})}}}},
    "/api/v1/environments": {"get": {
        "operationId": "environments", "tags": ["gateway"],
        "summary": "The environments where the caller holds any permission.",
        "responses": {"200": {"description": "Name, kind, labels and the caller's "
                                             "permissions of each.",
                              "content": json_content({
            "type": "array", "items": {
                "type": "object", "required": ["name", "kind", "permissions"],
                "properties": {
                    "name": {"type": "string"},
                    "kind": {"type": "string", "enum": ["local", "agent"]},
                    "labels": {"type": "object",
                               "additionalProperties": {"type": "string"}},
                    "permissions": _PERMISSIONS_SCHEMA}}})}}}},
    "/api/v1/audit": {"get": {
        "operationId": "audit", "tags": ["gateway"],
        "summary": "The audit log, oldest first (hub admins only).",
        "parameters": [
            {"name": "user", "in": "query", "schema": {"type": "string"},
             "description": "Only this user's entries."},
            {"name": "environment", "in": "query", "schema": {"type": "string"},
             "description": "Only this environment's entries."},
            {"name": "since", "in": "query",
             "schema": {"type": "string", "format": "date-time"},
             "description": "Only entries from this time on (ISO 8601; UTC if no zone)."},
            {"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
             "description": "At most this many entries (default and most: 1000)."}],
        "responses": {
            "200": {"description": "The entries.",
                    "content": json_content({"type": "array", "items": _AUDIT_ENTRY})},
            **problem_responses((403, "The caller is not a hub admin (the refusal is "
                                      "itself recorded)."),
                                (422, "A query parameter cannot be read."))}}},
    "/api/v1/openapi.json": {"get": {
        "operationId": "gatewayOpenapi", "tags": ["gateway"],
        "summary": "This document (OpenAPI 3.1).",
        "responses": {"200": {"description": "The document.",
                              "content": json_content({"type": "object"})}}}},
}


def _env_operation_id(operation_id: str) -> str:
    return "env" + operation_id[:1].upper() + operation_id[1:]


def environment_paths() -> dict[str, dict[str, Any]]:
    """The agent's path items under :data:`ENV_PREFIX` (see the module notes)."""
    paths: dict[str, dict[str, Any]] = {}
    for path, original in api_document()["paths"].items():
        item = copy.deepcopy(original)
        item["parameters"] = [_ENV_PARAM, *item.get("parameters", [])]
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            operation["operationId"] = _env_operation_id(operation["operationId"])
            responses = operation.setdefault("responses", {})
            for status, answer in problem_responses(*_GATEWAY_DENIED).items():
                responses.setdefault(status, answer)
            if path == "/api/v1/network/quic" and method != "get":
                responses.setdefault("409", problem_responses(
                    (409, "The environment is a local engine, which has no QUIC "
                          "layer (an agent has one)."))["409"])
        paths[ENV_PREFIX + path] = item
    return paths


def gateway_document(service_prefix: str = "/services/ghostpanel") -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document (its own routes and every environment's API).

    Parameters
    ----------
    service_prefix
        The gateway's prefix behind the hub's proxy, named as the document's server.
    """
    document = openapi_document([GATEWAY_PATHS, environment_paths()])
    document["info"].update({
        "title": "GhostPanel gateway API",
        "summary": "Every environment's GhostPanel API behind JupyterHub logins, roles "
                   "and an audit log, served by `ghostpanel gateway`.",
        "description": "Every request needs a JupyterHub API token (`Authorization: "
                       "token T` or `Bearer T`) or the hub's login cookie. An "
                       "environment's API under `/env/{name}/api/v1` is the agent's "
                       "(`docs/api.md`), with each call allowed by the caller's role "
                       "on that environment (`docs/rbac.md`) and the objects of other "
                       "teams hidden. Errors are RFC 9457 problem documents. The "
                       "Engine API of each environment is forwarded under "
                       "`/env/{name}/engine/`, outside this document."})
    document["servers"] = [{"url": service_prefix.rstrip("/") or "/"}]
    document["components"]["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "A JupyterHub API token (`ghostpanel hub token NAME`)."}}
    return document

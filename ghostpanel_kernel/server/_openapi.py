"""The OpenAPI 3.1 document of ``/api/v1``, assembled from the route modules' ``PATHS``.

Each ``_routes_*`` module documents its own routes next to them (its ``PATHS``); this
module holds what they share -- the component schemas (``Problem``, ``Container``...),
the bearer security scheme, helpers to write error responses -- and puts the document
together. Every operation is given the answers the agent adds in front of every route
(``401`` without valid credentials, ``429`` after too many failures), so a route
documents only its own.

Route modules may import this module (it imports none of them): reference the shared
schemas as ``{"$ref": "#/components/schemas/NAME"}`` with a name of
:data:`COMPONENT_SCHEMAS`, and write error answers with :func:`problem_responses`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, Final

from .. import __version__
from ._container_json import CONTAINER_SCHEMA
from ._problems import PROBLEM_TYPE

__all__ = ["COMPONENT_SCHEMAS", "HTTP_METHODS", "PROBLEM_REF", "json_content",
           "openapi_document", "problem_responses", "schema_ref"]

#: The operations of a path item, as OpenAPI names them.
HTTP_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def schema_ref(name: str) -> dict[str, str]:
    """``{"$ref": "#/components/schemas/NAME"}`` for a shared schema."""
    if name not in COMPONENT_SCHEMAS:
        raise KeyError(f"no component schema {name!r}; there are "
                       f"{', '.join(sorted(COMPONENT_SCHEMAS))}")
    return {"$ref": f"#/components/schemas/{name}"}


_DIAGNOSTIC: Final[dict[str, Any]] = {
    "type": "object",
    "description": "One problem the Boltfile validator found (`ghostpanel boltfile "
                   "validate --json`). A TOML body's diagnostics carry path, line and "
                   "column; a JSON table's name the key only.",
    "required": ["severity", "key", "message", "hint"],
    "properties": {
        "severity": {"type": "string", "enum": ["error", "warning"]},
        "path": {"type": "string"},
        "line": {"type": ["integer", "null"], "minimum": 1},
        "column": {"type": ["integer", "null"], "minimum": 1},
        "key": {"type": "string", "description": "The dotted key at fault."},
        "message": {"type": "string", "description": "What is wrong."},
        "hint": {"type": "string", "description": "What to change."},
    },
}

#: Schemas every route module may reference by name (``#/components/schemas/NAME``).
COMPONENT_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "Problem": {
        "type": "object",
        "description": "An RFC 9457 problem document: every error the agent answers "
                       "itself. Members of its own (e.g. `engine`, `diagnostics`) may "
                       "follow.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "description": "`about:blank`."},
            "title": {"type": "string", "description": "The status's phrase."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "What happened this time, and "
                                                        "what to change."},
            "engine": {"type": "string", "description": "The engine's URL, when it could "
                                                        "not be reached."},
            "diagnostics": {"type": "array", "items": {"$ref": "#/components/schemas/"
                                                               "Diagnostic"}},
        },
    },
    "Container": CONTAINER_SCHEMA,
    "Diagnostic": _DIAGNOSTIC,
}

PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}

#: The ``{id}`` path parameter of the routes that find a container the way
#: ``Containers.get`` does; one object, so every route describes it the same.
CONTAINER_ID_PARAM: Final[dict[str, Any]] = {
    "name": "id", "in": "path", "required": True,
    "description": "The container's id, id prefix or name.",
    "schema": {"type": "string", "minLength": 1}}

#: What authentication may answer before any route (see ``_auth.py``).
_AUTH_RESPONSES: Final = (401, 429)


def json_content(schema: Mapping[str, Any], media_type: str = "application/json"
                 ) -> dict[str, Any]:
    """A ``content`` member with one media type and its schema."""
    return {media_type: {"schema": dict(schema)}}


def problem_responses(*statuses: int | tuple[int, str]) -> dict[str, Any]:
    """Error answers, each a problem document: ``404`` or ``(404, "what it means")``.

    Examples
    --------
    >>> problem_responses((404, "no such container"))["404"]["description"]
    'no such container'
    """
    responses: dict[str, Any] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else \
            (entry, HTTPStatus(entry).phrase)
        responses[str(status)] = {"description": description,
                                  "content": json_content(PROBLEM_REF, PROBLEM_TYPE)}
    return responses


def _operation_id(method: str, path: str) -> str:
    """``postContainersByIdStart`` for ``POST /api/v1/containers/{id}/start``."""
    words = [method]
    for segment in path.removeprefix("/api/v1/").split("/"):
        if segment.startswith("{"):
            words.append("by_" + segment.strip("{}"))
        else:
            words.append(segment)
    parts = [part for word in words for part in re.split(r"[^A-Za-z0-9]+", word) if part]
    return parts[0] + "".join(part[:1].upper() + part[1:] for part in parts[1:])


def _completed(path: str, original: Mapping[str, Any]) -> dict[str, Any]:
    """A path item with what every operation must have: an ``operationId`` (made from
    the method and path when the route module gave none, so clients generated from the
    document get stable names) and the authentication answers."""
    item: dict[str, Any] = copy.deepcopy(dict(original))
    for method in HTTP_METHODS:
        operation = item.get(method)
        if isinstance(operation, dict):
            operation.setdefault("operationId", _operation_id(method, path))
            responses = operation.setdefault("responses", {})
            for status, response in problem_responses(
                    (401, "No valid credentials (no engine call is made)."),
                    (429, "Too many failed authentications from this peer; see "
                          "Retry-After.")).items():
                responses.setdefault(status, response)
    return item


def openapi_document(paths: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for these ``PATHS`` mappings (merged in order).

    Raises
    ------
    ValueError
        Two mappings document the same operation (method and path), or two operations
        have the same ``operationId``.
    """
    merged: dict[str, dict[str, Any]] = {}
    for mapping in paths:
        for path, item in mapping.items():
            target = merged.setdefault(path, {})
            for key, value in _completed(path, item).items():
                if key in target and key in HTTP_METHODS:
                    raise ValueError(f"{key.upper()} {path} is documented twice")
                target[key] = value
    ids = [item[method]["operationId"] for item in merged.values() for method in HTTP_METHODS
           if isinstance(item.get(method), dict)]
    twice = sorted({ident for ident in ids if ids.count(ident) > 1})
    if twice:
        raise ValueError(f"operationId {', '.join(twice)} is used more than once")
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "GhostPanel agent API",
            "version": __version__,
            "summary": "The containers, Surge deployments, networking and events of one "
                       "Bolt host, served by `ghostpanel agent`.",
            "description": "Every request needs `Authorization: Bearer <token>` (a token "
                           "from `ghostpanel agent token create`) or, on an agent run "
                           "with `--client-ca`, a client certificate. Errors are RFC "
                           "9457 problem documents (`application/problem+json`). The "
                           "Engine API itself is forwarded under `/engine/`, outside "
                           "this document.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": {path: merged[path] for path in sorted(merged)},
        "components": {
            "schemas": copy.deepcopy(COMPONENT_SCHEMAS),
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "A token from `ghostpanel agent token create NAME`."}},
        },
        "security": [{"bearer": []}],
    }

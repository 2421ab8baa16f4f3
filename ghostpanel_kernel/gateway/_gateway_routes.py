"""The gateway's own ``/api/v1`` routes: who is asking, where, and what happened.

::

    GET /api/v1/whoami         the caller: name, kind, teams, admin, permissions per env
    GET /api/v1/environments   the environments where the caller holds any permission
    GET /api/v1/audit          the audit log (admins only): ?user ?environment ?since ?limit

Each handler reads the request's facts from the ASGI scope keys the gateway's router
sets (:mod:`._context`): the caller's :class:`~._identity.Identity`, the request id, and
the :class:`~._context.GatewayContext` (permissions, environments, the audit log). A
non-admin's ``GET /api/v1/audit`` is a ``403`` and is itself written to the audit log,
as every refusal is.

The audit log is a database (SQLite or PostgreSQL): its calls are made in a worker
thread so that a slow store never stalls the gateway's other requests.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..server._problems import problem_response
from ._context import CONTEXT, IDENTITY, REQUEST_ID, GatewayContext
from ._identity import Identity
from ._permissions import PERMISSIONS

__all__ = ["AUDIT_LIMIT", "ROUTES", "entry_json", "permissions_by_environment"]

#: The most audit entries one answer holds (and what ``?limit`` defaults to).
AUDIT_LIMIT: Final = 1000


def _identity(request: Request) -> Identity:
    identity: Identity = request.scope[IDENTITY]
    return identity


def _context(request: Request) -> GatewayContext:
    context: GatewayContext = request.scope[CONTEXT]
    return context


def _ordered(permissions: frozenset[str]) -> list[str]:
    """Permissions in the fixed order of ``PERMISSIONS`` (then any unknown, sorted)."""
    known = [p for p in PERMISSIONS if p in permissions]
    return known + sorted(permissions - set(PERMISSIONS))


async def permissions_by_environment(context: GatewayContext,
                                     identity: Identity) -> dict[str, list[str]]:
    """Environment name -> the caller's permissions there (every registered one)."""
    return {name: _ordered(await context.permissions(identity, name))
            for name in context.environment_names()}


async def whoami(request: Request) -> Response:
    """``GET /api/v1/whoami``: the caller as the gateway sees them."""
    identity = _identity(request)
    return JSONResponse({
        "name": identity.name, "kind": identity.kind, "teams": sorted(identity.teams),
        "admin": identity.admin,
        "permissions": await permissions_by_environment(_context(request), identity)})


async def environments(request: Request) -> Response:
    """``GET /api/v1/environments``: where the caller holds any permission.

    Each entry says the environment's name, its kind and labels and the caller's
    permissions; never its URL, token or certificate (the gateway reaches it for them).
    """
    context = _context(request)
    found: list[dict[str, Any]] = []
    for name, permissions in (await permissions_by_environment(
            context, _identity(request))).items():
        if not permissions:
            continue
        env = await context.environment(name)
        found.append({"name": name, "kind": "agent" if env.client.is_agent else "local",
                      "labels": dict(env.labels), "permissions": permissions})
    return JSONResponse(found)


class _QueryProblem(Exception):
    """A query parameter the audit route cannot take: a ``422`` naming it."""


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")
                                        if text.endswith("Z") else text)
    except ValueError:
        raise _QueryProblem(f"?since must be an ISO 8601 time (2026-12-07T10:00:00Z), "
                            f"not {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _limit(text: str | None) -> int:
    if text is None:
        return AUDIT_LIMIT
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= AUDIT_LIMIT:
        raise _QueryProblem(f"?limit must be a whole number from 1 to {AUDIT_LIMIT}, "
                            f"not {text!r}")
    return int(text)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def entry_json(record: Any) -> dict[str, Any]:
    """One audit record as JSON: its fields, times in UTC ISO 8601."""
    fields = dataclasses.asdict(record) if dataclasses.is_dataclass(record) \
        and not isinstance(record, type) else dict(vars(record))
    return {key: _json_value(value) for key, value in fields.items()}


async def audit(request: Request) -> Response:
    """``GET /api/v1/audit``: the log's entries, oldest first (admins only)."""
    identity = _identity(request)
    context = _context(request)
    if not identity.admin:
        await run_in_threadpool(
            lambda: context.audit.record(
                user=identity.name, environment=None, action="audit.read", target="audit",
                result="denied", status=403, request_id=request.scope.get(REQUEST_ID, ""),
                detail="only hub admins read the audit log"))
        return problem_response(403, "only hub admins may read the audit log",
                                permission="admin")
    query = request.query_params
    try:
        since, limit = _since(query.get("since")), _limit(query.get("limit"))
    except _QueryProblem as error:
        return problem_response(422, str(error))
    records = await run_in_threadpool(
        lambda: context.audit.entries(user=query.get("user") or None,
                                      environment=query.get("environment") or None,
                                      since=since, limit=limit))
    return JSONResponse([entry_json(record) for record in records])


ROUTES: list[BaseRoute] = [
    Route("/api/v1/whoami", whoami, methods=["GET"]),
    Route("/api/v1/environments", environments, methods=["GET"]),
    Route("/api/v1/audit", audit, methods=["GET"]),
]

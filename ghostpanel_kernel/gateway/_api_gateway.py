"""The gateway's ``/api/v1`` side: its own routes, and each environment's API, guarded.

The gateway's router authenticates a request, sets the scope keys of :mod:`._context`
and calls :class:`GatewayApi` with ``scope["path"]`` starting at ``/api/v1``:

``scope[ENVIRONMENT] is None``
    The gateway's own routes (:mod:`._gateway_routes`: ``whoami``, ``environments``,
    ``audit``) and its OpenAPI document (:mod:`._gateway_openapi`).
``scope[ENVIRONMENT] == name``
    The GhostPanel API of environment ``name``, exactly as an agent serves it, once the
    caller may make the call:

    1. :func:`~._api_routes.classify_api` names the route's permission (a route not in
       its table is refused); the caller's permissions on ``name`` must hold it, else a
       ``403`` problem with ``environment``, ``permission`` and ``detail`` ("your role
       on ENV does not allow PERMISSION"), written to the audit log.
    2. A container named in the path is resolved through the engine to its full id and
       must be the caller's to see (:func:`~._ownership.may_see`): ``404`` when there
       is none, ``403`` when it is another team's. The request goes on with the full id,
       so it acts on the container that was checked.
    3. What the gateway refuses non-admins outright (``docs/gateway-api.md``): Surge
       changes (Surge's containers are labelled by Surge, not stamped with an owner, so
       a team could not see what it deployed), a Surge plan or status of a Boltfile
       named by its path on the host (the route would read any file there), and
       container creates in the Boltfile forms (their options are judged by Bolt's
       rules, not the gateway's). A create in
       the Engine API form is judged like one through the Engine side (dangerous
       options admin-only, client-set ownership labels refused) and stamped with the
       caller's ownership labels.
    4. A local environment (unix socket or tcp engine) is served in-process by the
       agent's own API app (:func:`~ghostpanel_kernel.server._api.api_app`, one per
       environment); an agent environment has the request forwarded to the agent
       (:mod:`._api_forward`).
    5. ``GET /api/v1/containers`` and ``ws /api/v1/events`` are filtered to what the
       caller may see (:mod:`._api_filters`).
    6. Every mutating call is written to the audit log as its answer's head goes out
       (before the caller sees it), with the answer's status (``allowed`` below 400, an
       accepted WebSocket ``101``, else ``failed``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._exceptions import EnvironmentNotFound, GhostPanelError, NotFound
from ..engine import Environment
from ..server._api import api_app
from ..server._problems import Message, Receive, Scope, Send, problem_response
from ..server._request_body import MAX_BODY
from ..server._routes_events import close_hub
from ..server._settings import AgentSettings
from . import _api_filters, _api_forward
from ._api_routes import classify_api
from ._asgi_body import read_whole, replay
from ._body_review import review_body, stamp_owner
from ._context import CONTEXT, ENVIRONMENT, IDENTITY, REQUEST_ID, GatewayContext
from ._engine_policy import classify
from ._gateway_openapi import gateway_document
from ._gateway_routes import ROUTES
from ._go_json import read_go_json
from ._identity import Identity
from ._ownership import may_see
from ._refusal import Refusal

__all__ = ["GatewayApi"]

#: The routes a non-admin may not use, whatever their role (see the module notes).
_SURGE_CHANGES: Final = re.compile(r"^/api/v1/(surge/(apply|deploy|destroy)|"
                                   r"containers/[^/]+/surge)$")
_CONTAINERS: Final = "/api/v1/containers"
_SURGE: Final = "/api/v1/surge/"
_FULL_ID: Final = re.compile(r"[0-9a-f]{64}")
#: Containers whose ownership labels are kept (see ``GatewayApi._owned_container``).
_OWNERS_KEPT: Final = 4096
#: The agent's QUIC policy: a local environment has no QUIC layer to set it on.
_QUIC_POLICY: Final = "/api/v1/network/quic"


class _GatewaySettings(AgentSettings):
    """The settings an in-process API app reads, as an agent's would be; its ``url``
    is where the gateway serves the environment (what ``/api/v1/info`` shows)."""

    gateway_url: str = ""

    @property
    def url(self) -> str:
        return self.gateway_url


def _settings(env: Environment, url: str) -> AgentSettings:
    settings = _GatewaySettings(engine_url=env.url, listen="unix:///nonexistent.sock")
    # Frozen dataclass: the field not in its constructor is set once, here.
    object.__setattr__(settings, "gateway_url", url)
    return settings


@dataclass
class _Answer:
    """What the caller was answered: the status, for the audit record."""

    status: int | None = None


def _watch(send: Send, answer: _Answer,
           on_answer: Callable[[int], Awaitable[None]] | None = None) -> Send:
    """A ``send`` that notes the answer's status (an accepted WebSocket is a 101) and,
    before the head goes out, awaits ``on_answer(status)``: the audit record of a
    change is written before the caller learns how it ended."""

    async def noted(message: Message) -> None:
        kind = message["type"]
        if answer.status is None:
            if kind in ("http.response.start", "websocket.http.response.start"):
                answer.status = int(message.get("status", 500))
            elif kind == "websocket.accept":
                answer.status = 101
            elif kind == "websocket.close":
                answer.status = 403
            if answer.status is not None and on_answer is not None:
                await on_answer(answer.status)
        await send(message)

    return noted


class _Denied(Exception):
    """A request refused before it reached the environment."""

    def __init__(self, status: int, detail: str, *, permission: str | None = None,
                 audit: bool = True) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.permission = permission
        self.audit = audit


def _names_path(text: bytes) -> bool:
    """Whether a JSON body has a top-level member ``path`` (the agent reads bodies with
    Python's ``json``: keys are compared exactly)."""
    try:
        document = json.loads(text)
    except ValueError:
        return False  # not JSON: the route refuses it itself
    return isinstance(document, dict) and "path" in document


async def _no_host_boltfile(request: _Request, receive: Receive) -> Receive:
    """Refuse a non-admin's Surge request that names a Boltfile on the environment's
    host (``?path=`` or a JSON body's ``path``): the route would read any file there.
    The body, read to judge it, is given to the route as it came."""
    query = parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
    refusal = _Denied(403, "a Boltfile named by its path on the environment's host is "
                           "for admins: send the Boltfile itself", permission="admin")
    if "path" in query:
        raise refusal
    if request.method != "POST":
        return receive
    body = await read_whole(receive)
    if body is None:
        raise _Denied(413, f"the request body is over {MAX_BODY} bytes", audit=False)
    if _names_path(body):
        raise refusal
    return replay(body, receive)


class _Request:
    """One environment request's facts, read from the scope once."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.identity: Identity = scope[IDENTITY]
        self.context: GatewayContext = scope[CONTEXT]
        self.environment: str = scope[ENVIRONMENT]
        self.request_id: str = scope.get(REQUEST_ID) or ""
        self.websocket = scope["type"] == "websocket"
        self.method: str = "GET" if self.websocket else scope["method"]
        self.path: str = scope["path"]

    def action(self, target_kind: str, template: str) -> str:
        """``container.stop`` for ``POST /api/v1/containers/{id}/stop`` and the like."""
        words = [w for w in template.removeprefix("/api/v1/").split("/")
                 if w and not w.startswith("{")]
        verb = {"POST": "create", "DELETE": "remove", "PUT": "update"}.get(
            self.method, "read")
        last = words[-1] if len(words) > 1 else verb
        # The table's kind names the object ("container"); routes on no object are
        # "system" there, and are named by their first word here ("gpus.allocate").
        kind = target_kind if target_kind not in ("", "system") else \
            (words[0] if words else "api")
        return f"{kind}.{last}"

    async def record(self, *, action: str, target: str, result: str, status: int,
                     detail: str | None = None) -> None:
        audit = self.context.audit
        await run_in_threadpool(lambda: audit.record(
            user=self.identity.name, environment=self.environment, action=action,
            target=target, result=result, status=status, request_id=self.request_id,
            detail=detail))


class GatewayApi:
    """The ASGI app of the gateway's ``/api/v1`` side (see the module notes).

    Parameters
    ----------
    service_prefix
        The gateway's prefix behind the hub's proxy: the OpenAPI document's server,
        and the base of what an in-process environment's ``/api/v1/info`` calls its
        URL.

    Everything else comes with each request, in the scope keys of :mod:`._context`.
    Call :meth:`aclose` when the gateway stops: it ends the event subscribers of the
    in-process environments.
    """

    def __init__(self, *, service_prefix: str = "/services/ghostpanel") -> None:
        self.service_prefix = service_prefix.rstrip("/")
        self._gateway = _gateway_app(gateway_document(self.service_prefix or "/"))
        self._apps: dict[str, tuple[Environment, Starlette]] = {}
        self._owners: dict[tuple[str, str, str], dict[str, str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP or WebSocket request (see the module notes)."""
        if scope["type"] not in ("http", "websocket"):
            return
        if scope.get(ENVIRONMENT) is None:
            await self._gateway(scope, receive, send)
            return
        await self._environment(_Request(scope), receive, send)

    async def aclose(self) -> None:
        """End the in-process environments' event subscribers (1001, going away)."""
        apps, self._apps = self._apps, {}
        for _env, app in apps.values():
            await close_hub(app.state)

    def _app_for(self, name: str, env: Environment) -> Starlette:
        """The in-process API app of local environment ``name`` (made once)."""
        known = self._apps.get(name)
        if known is not None and known[0] is env:
            return known[1]
        app = api_app()
        app.state.engine = env
        app.state.settings = _settings(env, f"{self.service_prefix}/env/{name}")
        app.state.started = time.monotonic()
        self._apps[name] = (env, app)
        return app

    async def _environment(self, request: _Request, receive: Receive, send: Send) -> None:
        action, target = "api.call", request.path
        try:
            try:
                call = classify_api(request.method, request.path)
            except Refusal as refusal:
                raise _Denied(refusal.status, refusal.message,
                              permission=refusal.permission) from None
            action = request.action(call.target_kind, call.template)
            try:
                env = await request.context.environment(request.environment)
            except EnvironmentNotFound:
                raise _Denied(404, f"no environment {request.environment!r} is registered "
                                   "with the gateway", audit=False) from None
            permissions = await request.context.permissions(request.identity,
                                                            request.environment)
            if call.permission not in permissions:
                raise _Denied(403, f"your role on {request.environment} does not allow "
                                   f"{call.permission} ({request.method} {request.path})",
                              permission=call.permission)
            if not request.identity.admin and _SURGE_CHANGES.match(request.path):
                raise _Denied(403, "Surge changes through the gateway are for admins: "
                                   "Surge labels its containers itself, so what it made "
                                   "would not be owned by your team", permission="admin")
            ident = call.params.get("id") if call.target_kind == "container" else None
            if ident is not None:
                target = await self._owned_container(request, env, str(ident))
            if request.method == "POST" and request.path == _CONTAINERS:
                receive = await self._judged_create(request, receive)
            if request.path.startswith(_SURGE) and not request.identity.admin:
                receive = await _no_host_boltfile(request, receive)
            if request.path == _QUIC_POLICY and request.method != "GET" \
                    and not env.client.is_agent:
                raise _Denied(409, f"{request.environment} is a local engine: a QUIC "
                                   "policy is set on a GhostPanel agent, which has a "
                                   "QUIC layer", audit=False)
        except _Denied as denied:
            if denied.audit:
                await request.record(action=action, target=target, result="denied",
                                     status=denied.status, detail=denied.detail)
            extra: dict[str, Any] = {"environment": request.environment}
            if denied.permission is not None:
                extra["permission"] = denied.permission
            await _api_forward.refuse(request.scope, send, denied.status, denied.detail,
                                      **extra)
            return
        async def recorded(status: int) -> None:
            await request.record(action=action, target=target,
                                 result="allowed" if status < 400 else "failed",
                                 status=status)

        answer = _Answer()
        watched = _watch(send, answer, recorded if call.mutating else None)
        if call.listing == "containers" and request.path == _CONTAINERS:
            watched = _api_filters.filter_json_list(watched, request.identity)
        elif call.listing == "events":
            watched = _api_filters.filter_events(watched, request.identity,
                                                 request.environment)
        elif call.listing in ("metrics", "alerts") and not request.identity.admin:
            names = frozenset(container.name for container in
                              await env.containers.list(all=True)
                              if may_see(request.identity, container.labels))
            watched = _api_filters.filter_by_container(watched, call.listing, names)
        try:
            await self._serve(request, env, receive, watched)
        finally:
            if call.mutating and answer.status is None:
                await recorded(500)  # ended without an answer: recorded as failed

    async def _serve(self, request: _Request, env: Environment, receive: Receive,
                     send: Send) -> None:
        if env.client.is_agent:
            forward = _api_forward.forward_websocket if request.websocket \
                else _api_forward.forward_http
            await forward(env, request.scope, receive, send)
        else:
            await self._app_for(request.environment, env)(request.scope, receive, send)

    async def _owned_container(self, request: _Request, env: Environment,
                               ident: str) -> str:
        """The full id of the container ``ident`` names, once the caller may act on it;
        the request's path is rewritten to that id.

        A container's labels never change (the Engine API cannot update them) and its
        id is never reused, so the labels of a full id, once read, are kept
        (:data:`_OWNERS_KEPT` of them): a client that names containers by full id, as
        GhostPanel's own do, costs the engine no second inspect per request. A name or
        an id prefix is resolved every time: a rename may point it elsewhere.
        """
        key = (request.environment, env.url, ident)
        labels = self._owners.get(key) if _FULL_ID.fullmatch(ident) else None
        full_id = ident
        if labels is None:
            try:
                container = await env.containers.get(ident)
            except (NotFound, ValueError):
                raise _Denied(404, f"no container {ident!r} in environment "
                                   f"{request.environment}", audit=False) from None
            except GhostPanelError as error:
                raise _Denied(502, f"the environment {request.environment} could not be "
                                   f"asked about container {ident!r}: {error}",
                              audit=False) from None
            full_id, labels = container.id, dict(container.labels)
            if len(self._owners) >= _OWNERS_KEPT:
                self._owners.pop(next(iter(self._owners)))  # the oldest
            self._owners[(request.environment, env.url, full_id)] = labels
        if not may_see(request.identity, labels):
            raise _Denied(403, f"container {ident!r} in {request.environment} belongs to "
                               "another team", permission="admin")
        scope = request.scope
        prefix = f"{_CONTAINERS}/"
        rest = request.path[len(prefix):].partition("/")
        scope["path"] = prefix + full_id + (rest[1] + rest[2])
        scope.pop("raw_path", None)  # the path changed: it is re-encoded from "path"
        request.path = scope["path"]
        return full_id

    async def _judged_create(self, request: _Request, receive: Receive) -> Receive:
        """Judge a container create's body as the Engine side would; the body stamped
        with the caller's ownership labels, as a new ``receive``."""
        headers = dict(request.scope.get("headers", []))
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        body = await read_whole(receive)
        if body is None:
            raise _Denied(413, f"the request body is over {MAX_BODY} bytes", audit=False)
        if media_type not in (b"", b"application/json"):
            if request.identity.admin:
                return replay(body, receive)
            raise _Denied(403, "through the gateway, containers are created from an "
                               "Engine API body (JSON with Image); Boltfile bodies are "
                               "for admins", permission="admin")
        call = classify("POST", b"/containers/create")
        try:
            data = read_go_json(body)
            if isinstance(data, dict) and "Image" not in data:
                if request.identity.admin:
                    return replay(body, receive)
                raise _Denied(403, "through the gateway, containers are created from an "
                                   "Engine API body (JSON with Image); service tables "
                                   "are for admins", permission="admin")
            review = review_body(call, data)
        except Refusal as refusal:
            raise _Denied(refusal.status, refusal.message,
                          permission=refusal.permission) from None
        if review.admin_only and not request.identity.admin:
            raise _Denied(403, f"{', '.join(review.admin_only)}: admin-only",
                          permission="admin")
        env = await request.context.environment(request.environment)
        for kind, name in review.references:
            if kind == "container":
                await self._referenced(request, env, name)
        headers[b"content-type"] = b"application/json"
        stamped = stamp_owner(call, data, request.identity)
        request.scope["headers"] = [(key, value) for key, value in headers.items()
                                    if key != b"content-length"] + [
            (b"content-length", str(len(stamped)).encode())]
        return replay(stamped, receive)

    async def _referenced(self, request: _Request, env: Environment, name: str) -> None:
        try:
            container = await env.containers.get(name)
        except (NotFound, ValueError):
            raise _Denied(404, f"the body names container {name!r}, which "
                               f"{request.environment} does not have", audit=False) from None
        if not may_see(request.identity, container.labels):
            raise _Denied(403, f"the body names container {name!r}, which belongs to "
                               "another team", permission="admin")


def _gateway_app(document: dict[str, Any]) -> Starlette:
    """The Starlette app of the gateway's own routes and its document."""

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(request.app.state.openapi)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        detail = f"no route {request.method} {request.url.path}" \
            if error.status_code == 404 else str(error.detail)
        return problem_response(error.status_code, detail, headers=error.headers)

    async def server_error(request: Request, error: Exception) -> Response:
        return problem_response(500, f"the gateway failed on {request.method} "
                                     f"{request.url.path}: {type(error).__name__}")

    handlers: dict[Any, Callable[[Request, Exception], Any]] = {
        HTTPException: http_error, 500: server_error}
    app = Starlette(routes=[*ROUTES, Route("/api/v1/openapi.json", openapi_json,
                                           methods=["GET"])],
                    exception_handlers=handlers)
    app.state.openapi = document
    return app

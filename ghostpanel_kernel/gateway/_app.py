"""The gateway's ASGI application: authenticate, then route by path.

::

    PREFIX = /services/ghostpanel   (JUPYTERHUB_SERVICE_PREFIX; the hub's proxy keeps it)

    PREFIX/oauth_callback              the end of the browser's hub login
    PREFIX/env/{name}/engine/...       Engine API, authorised (_engine_gateway.py)
    PREFIX/env/{name}/api/v1/...       the environment's REST API + WebSocket events
    PREFIX/api/v1/...                  whoami, environments, audit, openapi.json
    PREFIX/                            where the gateway's URLs are (JSON)

Every request but the login callback is authenticated first (``_hub_identity.py``): a
hub token in ``Authorization`` (``token T`` or ``Bearer T``), or, for ``GET``/``HEAD``
and same-origin WebSocket handshakes, the login cookie. A browser without either is
sent to the hub's login; any other caller gets ``401`` (``WWW-Authenticate: Bearer``).
Every answer carries ``X-Request-Id``: the id the audit log records the request under.

Paths are split on the raw path (ASGI ``raw_path``), never on the decoded one: a ``%2F``
in an environment's name or in an Engine API path must be judged as sent.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from ..server._lifespan import serve_lifespan
from ..server._problems import Message, Receive, Scope, Send, send_problem
from ._context import CONTEXT, ENVIRONMENT, IDENTITY, REQUEST_ID
from ._hub_identity import (
    HubCheckFailed,
    HubLogin,
    IdentitySource,
    cookie_values,
    token_from_header,
)
from ._identity import Identity

if TYPE_CHECKING:
    from ._engine_gateway import EngineGateway
    from ._gateway_state import GatewayState

__all__ = ["DEFAULT_PREFIX", "ENGINE_PATH", "GatewayApp"]

_log = logging.getLogger("ghostpanel.gateway")

#: Where the hub mounts the gateway when JUPYTERHUB_SERVICE_PREFIX says nothing.
DEFAULT_PREFIX: Final = "/services/ghostpanel/"
#: The scope key with the raw Engine API path after ``/env/{name}/engine``.
ENGINE_PATH: Final = "ghostpanel.engine_path"

_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _wants_html(scope: Scope) -> bool:
    accept = (_header(scope, b"accept") or b"").lower()
    return scope["type"] == "http" and scope["method"] == "GET" and b"text/html" in accept


def _same_origin(scope: Scope) -> bool:
    """Whether a WebSocket handshake comes from a page of the gateway's own host."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True  # not a browser: browsers always send Origin on WebSockets
    host = _header(scope, b"host") or b""
    return origin.split(b"://", 1)[-1].rstrip(b"/").lower() == host.lower()


async def _refuse(scope: Scope, send: Send, status: int, detail: str, *,
                  headers: tuple[tuple[bytes, bytes], ...] = (), **extra: Any) -> None:
    """A problem answer for HTTP; a refused handshake (or a close) for WebSockets."""
    if scope["type"] == "websocket":
        if "websocket.http.response" in scope.get("extensions", {}):
            await send_problem(send, status, detail, headers=headers,
                               response_type="websocket.http.response", **extra)
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    await send_problem(send, status, detail, headers=headers, **extra)


class GatewayApp:
    """The gateway as one ASGI callable (see the module notes).

    Parameters
    ----------
    state
        Environments, permissions and the audit log (a :class:`GatewayState`).
    prefix
        The URL prefix the hub's proxy forwards with the request (kept in the path).
    identity_source
        Who a token belongs to. None (a deployment): the hub, through ``login``.
        Tests pass a coroutine function of their own; nothing else selects it.
    login
        The hub login (tokens and the OAuth cookie); made from the ``JUPYTERHUB_*``
        variables when neither it nor ``identity_source`` is given.

    Examples
    --------
    >>> app = GatewayApp(GatewayState(), prefix="/services/ghostpanel/")  # doctest: +SKIP
    """

    def __init__(self, state: GatewayState, *, prefix: str = DEFAULT_PREFIX,
                 identity_source: IdentitySource | None = None,
                 login: HubLogin | None = None) -> None:
        from ._engine_gateway import EngineGateway

        self.state = state
        self.prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
        self._prefix_raw = self.prefix.encode()
        if identity_source is None and login is None:
            login = HubLogin(prefix=self.prefix, cookie_secret=secrets.token_bytes(32))
        self.login = login
        self._identity_source: IdentitySource = identity_source or self._hub_identity
        self.engine: EngineGateway = EngineGateway(state)
        self._api: Any = None

    # -- life ------------------------------------------------------------------------

    def _api_app(self) -> Any:
        if self._api is None:
            from ._api_gateway import GatewayApi

            self._api = GatewayApi(service_prefix=self.prefix.rstrip("/"))
        return self._api

    async def stopping(self) -> None:
        """The gateway is about to stop: end event subscribers now (1001)."""
        if self._api is not None:
            await self._api.aclose()

    async def shutdown(self) -> None:
        """Close everything the gateway opened."""
        await self.stopping()
        await self.state.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # The gateway has no start-up step; only its shut-down can fail.
        await serve_lifespan(receive, send, startup=None, shutdown=self.shutdown)

    # -- requests --------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            return
        request_id = uuid.uuid4().hex
        scope[REQUEST_ID] = request_id
        scope[CONTEXT] = self.state
        tagged = _tagging_send(send, request_id)
        raw: bytes = scope.get("raw_path") or quote(scope["path"]).encode()
        raw = raw.partition(b"?")[0]
        if raw + b"/" == self._prefix_raw:
            raw = self._prefix_raw
        if not raw.startswith(self._prefix_raw):
            await _refuse(scope, tagged, 404, f"the gateway serves paths under {self.prefix}")
            return
        rest = raw[len(self._prefix_raw):]
        if rest == b"oauth_callback" and scope["type"] == "http":
            await self._oauth_callback(scope, tagged)
            return
        identity = await self._authenticate(scope, tagged)
        if identity is None:
            return
        scope[IDENTITY] = identity
        await self._route(scope, receive, tagged, rest)

    async def _route(self, scope: Scope, receive: Receive, send: Send, rest: bytes) -> None:
        if rest == b"" and scope["type"] == "http":
            await self._index(send)
            return
        if rest == b"api/v1" or rest.startswith(b"api/v1/"):
            scope[ENVIRONMENT] = None
            await self._to_api(scope, receive, send, "/" + rest.decode("latin-1"),
                               self.prefix.rstrip("/"))
            return
        if rest.startswith(b"env/"):
            name_raw, _, tail = rest[4:].partition(b"/")
            name = name_raw.decode("latin-1")
            if not await self._known_environment(scope, send, name):
                return
            scope[ENVIRONMENT] = name
            base = f"{self.prefix}env/{name}"
            if tail == b"engine" or tail.startswith(b"engine/"):
                scope[ENGINE_PATH] = tail[len(b"engine"):] or b"/"
                await self.engine(scope, receive, send)
                return
            if tail == b"api/v1" or tail.startswith(b"api/v1/"):
                await self._to_api(scope, receive, send, "/" + tail.decode("latin-1"), base)
                return
        await _refuse(scope, send, 404, f"no route {scope.get('method', 'GET')} "
                                        f"{scope['path']}: see {self.prefix}")

    async def _known_environment(self, scope: Scope, send: Send, name: str) -> bool:
        from .._exceptions import EnvironmentNotFound

        try:
            await self.state.spec(name)
            return True
        except EnvironmentNotFound:
            pass
        visible = await self.state.visible_environments(scope[IDENTITY])
        known = ", ".join(visible) if visible else "none that you may use"
        await _refuse(scope, send, 404, f"no environment named {name!r}; yours: {known}",
                      environment=name, environments=visible)
        return False

    async def _to_api(self, scope: Scope, receive: Receive, send: Send, path: str,
                      root: str) -> None:
        from urllib.parse import unquote

        inner = {**scope, "path": unquote(path), "raw_path": path.encode("latin-1"),
                 "root_path": root}
        try:
            api = self._api_app()
        except ImportError as error:
            await _refuse(scope, send, 503, f"the gateway's /api/v1 side is not available: "
                                            f"{error}")
            return
        await api(inner, receive, send)

    async def _index(self, send: Send) -> None:
        body = json.dumps({
            "service": "GhostPanel gateway",
            "engine": f"{self.prefix}env/{{name}}/engine",
            "api": f"{self.prefix}env/{{name}}/api/v1",
            "whoami": f"{self.prefix}api/v1/whoami",
            "environments": f"{self.prefix}api/v1/environments",
            "openapi": f"{self.prefix}api/v1/openapi.json",
            "docs": "docs/gateway.md",
        }).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    # -- authentication --------------------------------------------------------------

    async def _hub_identity(self, token: str) -> Identity | None:
        assert self.login is not None
        return await self.login.identity_for_token(token)

    async def _authenticate(self, scope: Scope, send: Send) -> Identity | None:
        header = _header(scope, b"authorization")
        token = token_from_header(header.decode("latin-1") if header else None)
        via = "token"
        if token is None and self.login is not None:
            cookie_ok = (scope["type"] == "websocket" and _same_origin(scope)) or (
                scope["type"] == "http" and scope["method"] in _SAFE_METHODS)
            if cookie_ok:
                token = self.login.cookie_token(cookie_values(scope.get("headers", ())))
                via = "cookie"
        if token is None:
            if self.login is not None and _wants_html(scope) and header is None:
                await self._start_login(scope, send)
                return None
            await _refuse(scope, send, 401,
                          "a hub API token is needed: send `Authorization: token T` (or "
                          "`Bearer T`); `ghostpanel hub token NAME` prints one",
                          headers=((b"www-authenticate", b'Bearer realm="ghostpanel"'),))
            return None
        try:
            identity = await self._identity_source(token)
        except HubCheckFailed as error:
            _log.error("the hub could not check a token: %s", error)
            await _refuse(scope, send, 503, f"the hub could not check the token: {error}")
            return None
        if identity is None:
            if via == "cookie" and _wants_html(scope):
                await self._start_login(scope, send)
                return None
            await _refuse(scope, send, 401, "the hub does not know this token (wrong, "
                                            "expired or revoked)",
                          headers=((b"www-authenticate",
                                    b'Bearer realm="ghostpanel", error="invalid_token"'),))
            return None
        return identity

    async def _start_login(self, scope: Scope, send: Send) -> None:
        assert self.login is not None
        target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        step = self.login.start(target)
        await _redirect(send, step.location, step.set_cookies)

    async def _oauth_callback(self, scope: Scope, send: Send) -> None:
        if self.login is None:
            await send_problem(send, 404, "this gateway has no hub login")
            return
        try:
            step = await self.login.finish(scope.get("query_string", b""),
                                           cookie_values(scope.get("headers", ())))
        except ValueError as error:
            await send_problem(send, 400, str(error))
            return
        except HubCheckFailed as error:
            await send_problem(send, 403, f"the hub refused the login: {error}")
            return
        await _redirect(send, step.location, step.set_cookies)


async def _redirect(send: Send, location: str, cookies: tuple[str, ...]) -> None:
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
               (b"cache-control", b"no-store")]
    headers += [(b"set-cookie", cookie.encode("latin-1")) for cookie in cookies]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _tagging_send(send: Send, request_id: str) -> Send:
    """A ``send`` that adds ``X-Request-Id`` to the answer's head (HTTP, and a refused
    WebSocket handshake)."""
    tag = (b"x-request-id", request_id.encode())

    async def tagged(message: Message) -> None:
        if message["type"] in ("http.response.start", "websocket.http.response.start"):
            message = {**message, "headers": [*message.get("headers", ()), tag]}
        elif message["type"] == "websocket.accept":
            message = {**message, "headers": [*message.get("headers", ()), tag]}
        await send(message)

    return tagged


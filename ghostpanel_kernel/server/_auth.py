"""Who may use the agent: a pure ASGI middleware in front of every route.

A request is let through with one of

- a bearer token (``Authorization: Bearer gpa_...``) that the token store knows and
  has not revoked, checked against the store on every request (no cache: a revoked
  token fails on its next request);
- a client certificate, when the agent runs with ``--client-ca``: the TLS layer then
  *requires* one signed by that CA on HTTPS (the handshake fails without it, as on a
  Docker daemon run with ``--tlsverify``), so a request that arrived over that TLS
  connection is authenticated. HTTP/3 cannot ask for client certificates (aioquic's
  server does not), and a unix socket has no TLS: there a token is still needed.

Browsers cannot set headers on a WebSocket handshake, so there the token may also come
as a subprotocol: the client offers ``ghostpanel`` and ``ghostpanel.bearer.<token>``
(``Sec-WebSocket-Protocol``) and the agent answers ``ghostpanel``, never the token. The
token subprotocol is taken out of the scope (its ``subprotocols`` and headers) before
the application sees it. A token is never read from the URL query: URLs end up in
logs.

Anything else is answered ``401`` with a problem document before the application sees
the request: no engine call is ever made for it. WebSocket handshakes are refused the
same way (an HTTP 401 through the ASGI denial-response extension when the server has
it, else a close with 1008 before accepting).

Failed attempts are counted per peer address: after ``max_failures`` in
``failure_window`` seconds the peer gets ``429`` with ``Retry-After`` *without* its
credentials being checked (checking them would keep the guessing oracle open), until
the oldest counted failure is out of the window. Each failure and each lockout is
logged, never with the credential itself.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from ._problems import Message, Receive, Scope, Send, send_problem
from ._token_check import TokenCheckFailed

__all__ = ["AUTH_SCOPE_KEY", "BEARER_SUBPROTOCOL", "SUBPROTOCOL", "AuthMiddleware",
           "Credentials", "FailureLimiter"]

#: Where the middleware records who was let in, in the ASGI scope.
AUTH_SCOPE_KEY: Final = "ghostpanel.auth"

#: The WebSocket subprotocol the agent answers when the token came as a subprotocol.
SUBPROTOCOL: Final = "ghostpanel"
#: The prefix of the subprotocol that carries a token: ``ghostpanel.bearer.<token>``.
BEARER_SUBPROTOCOL: Final = "ghostpanel.bearer."

#: How many peers the limiter remembers; the least recently failing are forgotten first,
#: so a flood from many addresses costs bounded memory.
_MAX_PEERS: Final = 4096

_log = logging.getLogger("ghostpanel.agent.auth")


@dataclass(frozen=True)
class Credentials:
    """Who a request was let in as: ``kind`` is ``"token"`` or ``"client-certificate"``,
    ``name`` the token's name (empty for a certificate)."""

    kind: str
    name: str


class FailureLimiter:
    """Failed authentications per peer within a sliding window.

    Parameters
    ----------
    max_failures
        Failures a peer may make within ``window`` before it is refused.
    window
        Seconds a failure counts for.
    clock
        Monotonic seconds (replaced in tests).

    Examples
    --------
    >>> now = [0.0]
    >>> limiter = FailureLimiter(2, 60.0, clock=lambda: now[0])
    >>> limiter.failed("10.0.0.1"); limiter.failed("10.0.0.1")
    >>> limiter.retry_after("10.0.0.1"), limiter.retry_after("10.0.0.2")
    (60, None)
    >>> now[0] = 60.5; limiter.retry_after("10.0.0.1") is None
    True
    """

    def __init__(self, max_failures: int, window: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, peer: str) -> deque[float] | None:
        times = self._failures.get(peer)
        if times is None:
            return None
        horizon = self._clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[peer]
            return None
        return times

    def retry_after(self, peer: str) -> int | None:
        """Whole seconds until ``peer`` may try again, or None when it may now."""
        times = self._recent(peer)
        if times is None or len(times) < self.max_failures:
            return None
        # Allowed again once the failure that made the count reach the limit expires.
        expires = times[-self.max_failures] + self.window
        return max(1, math.ceil(expires - self._clock()))

    def failed(self, peer: str) -> None:
        """Count one failure of ``peer``."""
        times = self._recent(peer)
        if times is None:
            times = self._failures[peer] = deque(maxlen=self.max_failures)
        self._failures.move_to_end(peer)
        times.append(self._clock())
        while len(self._failures) > _MAX_PEERS:
            self._failures.popitem(last=False)


TokenCheck = Callable[[str], Awaitable[str | None]]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _bearer(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer`` header (the scheme is case-blind,
    RFC 9110 11.1), or None."""
    value = _header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _subprotocol_token(scope: Scope) -> str | None:
    """The token a WebSocket handshake offers as ``ghostpanel.bearer.<token>``, or None."""
    if scope["type"] != "websocket":
        return None
    for offered in scope.get("subprotocols", ()):
        if offered.startswith(BEARER_SUBPROTOCOL) and len(offered) > len(BEARER_SUBPROTOCOL):
            return str(offered[len(BEARER_SUBPROTOCOL):])
    return None


def _without_token_subprotocol(scope: Scope) -> None:
    """Take the token subprotocol out of ``scope``, so that no route can echo or log it."""
    offered = [p for p in scope.get("subprotocols", ())
               if not p.startswith(BEARER_SUBPROTOCOL)]
    scope["subprotocols"] = offered
    scope["headers"] = [(key, value) for key, value in scope.get("headers", ())
                        if key.lower() != b"sec-websocket-protocol"]
    if offered:
        scope["headers"].append((b"sec-websocket-protocol", ", ".join(offered).encode()))


def _answering_subprotocol(send: Send) -> Send:
    """``send``, answering the handshake with :data:`SUBPROTOCOL` when the application
    chose none: a browser that offered subprotocols fails a handshake answered without
    one of them."""

    async def sending(message: Message) -> None:
        if message["type"] == "websocket.accept" and not message.get("subprotocol"):
            message = {**message, "subprotocol": SUBPROTOCOL}
        await send(message)

    return sending


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    # A unix socket has no peer address: all its clients share one counter.
    return str(client[0]) if client else "unix-socket"


class AuthMiddleware:
    """Let through only authenticated HTTP and WebSocket requests (see the module notes).

    Parameters
    ----------
    app
        The application behind it.
    check_token
        Coroutine: a presented token -> the name of the active token it is, or None.
        It may raise :class:`~._token_check.TokenCheckFailed` (answered 503).
    client_certificates
        Whether HTTPS connections carry a verified client certificate (the agent's
        TLS layer requires one when it has a client CA).
    limiter
        Counts failures per peer.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *,
                 check_token: TokenCheck, client_certificates: bool,
                 limiter: FailureLimiter) -> None:
        self.app = app
        self.check_token = check_token
        self.client_certificates = client_certificates
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request's credentials, then pass it on or refuse it."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        peer = _peer(scope)
        where = f"{scope.get('method', 'WEBSOCKET')} {scope.get('path', '')}"
        retry = self.limiter.retry_after(peer)
        if retry is not None:
            await self._refuse(scope, send, 429,
                               f"too many failed authentications from {peer}: retry in "
                               f"{retry} s", headers=[(b"retry-after", str(retry).encode())])
            return
        try:
            credentials, reason = await self._authenticate(scope)
        except TokenCheckFailed as error:
            _log.error("cannot check credentials for %s from %s: %s", where, peer, error)
            await self._refuse(scope, send, 503, f"the agent cannot check credentials now: "
                                                 f"{error}")
            return
        if credentials is None:
            self.limiter.failed(peer)
            _log.warning("authentication failed from %s (%s) for %s", peer, reason, where)
            if self.limiter.retry_after(peer) is not None:
                _log.warning("%s refused for %.0f s after %d failed authentications",
                             peer, self.limiter.window, self.limiter.max_failures)
            headers = [(b"www-authenticate", b'Bearer realm="ghostpanel"' + (
                b', error="invalid_token"' if reason != "no credentials" else b""))]
            await self._refuse(scope, send, 401, f"authentication required: {reason}; send "
                               "`Authorization: Bearer <token>` (`ghostpanel agent token "
                               "create NAME` makes one)", headers=headers)
            return
        scope[AUTH_SCOPE_KEY] = credentials
        if scope["type"] == "websocket" and _subprotocol_token(scope) is not None:
            offered_plain = SUBPROTOCOL in scope.get("subprotocols", ())
            _without_token_subprotocol(scope)
            if offered_plain:
                send = _answering_subprotocol(send)
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> tuple[Credentials | None, str]:
        """The credentials of a request, or None and why not (for the log and body)."""
        token = _bearer(scope)
        if token is None:
            token = _subprotocol_token(scope)
        if token is not None:
            name = await self.check_token(token)
            if name is not None:
                return Credentials("token", name), ""
        if self.client_certificates and scope.get("scheme") in ("https", "wss") \
                and scope.get("http_version") != "3":
            return Credentials("client-certificate", ""), ""
        if token is not None:
            return None, "unknown or revoked token"
        if _header(scope, b"authorization") is not None:
            return None, "the Authorization header is not a bearer token"
        return None, "no credentials"

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, detail: str,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
        if scope["type"] == "http":
            await send_problem(send, status, detail, headers=headers or ())
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send_problem(send, status, detail, headers=headers or (),
                               response_type="websocket.http.response")
        else:
            # 1008: policy violation; before accept the server refuses the handshake.
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})

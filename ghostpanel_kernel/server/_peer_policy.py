"""Enforcing the QUIC networking policy: a pure ASGI layer in front of authentication.

::

    PeerPolicyMiddleware      peer address outside the allowed networks -> 403, logged
    └── AuthMiddleware        credentials (401 / 429)
        └── the routes

The peer is refused *before* its credentials are looked at: a network that may not
connect learns nothing about tokens, costs no token-store query, and does not feed the
per-peer failure counter. HTTPS and HTTP/3 requests both carry the peer's address in
the ASGI scope (``client``), so one check covers both. A unix socket has no peer
address and is guarded by its file permissions: the policy does not apply there.

The policy lives in :class:`PeerPolicy`, read on every request and replaced whole by
``POST /api/v1/network/quic``: a new policy applies to the next request, without a
restart. Refusals are logged, at most once per peer and transport every
:data:`LOG_EVERY` seconds (a refused peer retrying in a loop must not flood the log).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final

from ._problems import Receive, Scope, Send, send_problem
from ._quic_policy import PolicyStore, QuicPolicy

__all__ = ["LOG_EVERY", "PeerPolicy", "PeerPolicyMiddleware"]

_log = logging.getLogger("ghostpanel.agent.policy")

#: Seconds between two log lines about the same refused peer.
LOG_EVERY: Final = 60.0
#: Refused peers remembered for the log's rate limit.
_MAX_LOGGED: Final = 1024


class PeerPolicy:
    """The policy in force, and where it is kept.

    Parameters
    ----------
    store
        The policy file; read once here (a file the agent cannot read raises
        :class:`~._quic_policy.PolicyError`, so the agent does not start open).
    applies
        False when the agent listens on a unix socket (no peer addresses there).
    """

    def __init__(self, store: PolicyStore, *, applies: bool = True) -> None:
        self.store = store
        self.applies = applies
        self.current: QuicPolicy | None = store.load()

    def set(self, policy: QuicPolicy) -> None:
        """Store ``policy`` and enforce it from the next request on."""
        self.store.save(policy)  # first: a policy in force is always the stored one
        self.current = policy
        _log.warning("QUIC policy set (%s): peers allowed from %s", policy.source,
                     ", ".join(str(n) for n in policy.endpoints))

    def clear(self) -> bool:
        """Remove the policy (every peer may connect again); True when there was one."""
        removed = self.store.clear()
        self.current = None
        if removed:
            _log.warning("QUIC policy removed: every peer may connect (with credentials)")
        return removed

    def allows(self, scope: Scope) -> tuple[bool, str]:
        """Whether the request of ``scope`` may go on, and its peer address."""
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        policy = self.current
        if policy is None or not self.applies:
            return True, peer
        # A network listener always knows its peer; a request without one is refused
        # rather than guessed about.
        return (bool(peer) and policy.allows(peer)), peer or "unknown peer"


class PeerPolicyMiddleware:
    """Refuse HTTP and WebSocket requests from peers the policy does not allow.

    Parameters
    ----------
    app
        The application behind it (authentication, then the routes).
    policy
        The policy holder, read on every request.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]],
                 policy: PeerPolicy) -> None:
        self.app = app
        self.policy = policy
        self._logged: OrderedDict[str, float] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or refuse it with a ``403`` problem."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        allowed, peer = self.policy.allows(scope)
        if allowed:
            await self.app(scope, receive, send)
            return
        self._log_refusal(peer, scope)
        detail = (f"peer {peer} is not in the networks this agent's QUIC policy allows; "
                  "ask its operator to add your network (POST /api/v1/network/quic)")
        if scope["type"] == "http":
            await send_problem(send, 403, detail)
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send_problem(send, 403, detail, response_type="websocket.http.response")
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": "peer not allowed"})

    def _log_refusal(self, peer: str, scope: Scope) -> None:
        transport = "HTTP/3" if scope.get("http_version") == "3" else scope.get("scheme", "")
        key = f"{peer} {transport}"
        now = time.monotonic()
        last = self._logged.get(key)
        if last is not None and now - last < LOG_EVERY:
            return
        self._logged[key] = now
        self._logged.move_to_end(key)
        while len(self._logged) > _MAX_LOGGED:
            self._logged.popitem(last=False)
        where = f"{scope.get('method', 'WEBSOCKET')} {scope.get('path', '')}"
        _log.warning("refused %s from %s over %s: outside the QUIC policy's networks "
                     "(further refusals of this peer are logged once a minute)",
                     where, peer, transport)

"""The agent's ASGI application: peer policy and authentication in front of a split.

::

    PeerPolicyMiddleware                 peers outside the QUIC policy's networks: 403
    AuthMiddleware                       every HTTP and WebSocket request
    └── route by path
        ├── /api/v1/...   GhostPanel's API (Starlette, ``_api.py``); unknown -> 404 problem
        ├── /metrics      Prometheus exposition (``_prometheus.py``, imported at the first
        │                 scrape with prometheus-client: idle agents never load them)
        └── anything else the Engine API passthrough (``_passthrough.py``), which strips
                          a leading ``/engine`` itself: ``/engine/containers/json`` and
                          ``/containers/json`` reach the same engine call

The split is a plain prefix test rather than a Starlette ``Mount``: the passthrough is
the agent's hot path and pays for no routing it does not need.

The passthrough module is imported when the app starts, and only there: were it
missing or broken, the API would still serve and engine paths answer a ``503`` problem
saying so (rather than the agent failing to start).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._connect import connect
from ..engine import Environment
from ._api import API_PREFIX, api_app
from ._auth import AuthMiddleware, FailureLimiter
from ._gpu_release import GpuReleaser
from ._lifespan import serve_lifespan
from ._peer_policy import PeerPolicy, PeerPolicyMiddleware
from ._problems import Receive, Scope, Send, send_problem
from ._quic_policy import PolicyStore
from ._routes_events import close_hub
from ._settings import AgentSettings
from ._surge_stream import unwind_runs
from ._token_check import TokenChecker

__all__ = ["AgentApp", "create_app"]

_log = logging.getLogger("ghostpanel.agent")

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Unavailable:
    """Stands in for the passthrough when it cannot be loaded: a 503 problem."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send_problem(send, 503, f"the Engine API passthrough is not available in "
                                          f"this agent: {self.reason}")
        else:
            await send({"type": "websocket.close", "code": 1011, "reason": "unavailable"})

    async def aclose(self) -> None:
        """Nothing to release."""


def _load_passthrough(engine_url: str) -> Any:
    try:
        module = importlib.import_module("._passthrough", __package__)
        return module.EnginePassthrough(engine_url, prefix="/engine")
    except (ImportError, AttributeError) as error:
        _log.error("engine passthrough unavailable: %s", error)
        return _Unavailable(f"{type(error).__name__}: {error}")


class AgentApp:
    """The agent as one ASGI callable (see the module notes). Build it with
    :func:`create_app`.

    Attributes
    ----------
    settings : AgentSettings
        What it serves.
    tokens : TokenChecker
        Where bearer tokens are checked.
    limiter : FailureLimiter
        Failed authentications per peer.
    peer_policy : PeerPolicy
        The QUIC networking policy in force (also ``api.state.peer_policy``).
    """

    def __init__(self, settings: AgentSettings, *,
                 tokens: TokenChecker | None = None) -> None:
        self.settings = settings
        self.tokens = tokens if tokens is not None else TokenChecker(settings.store_url)
        self.limiter = FailureLimiter(settings.max_failures, settings.failure_window)
        self.api = api_app()
        self.api.state.settings = settings
        self.api.state.started = time.monotonic()
        self.api.state.engine = None
        # Loaded here, so that an unreadable policy file stops the agent at start rather
        # than leaving it open to every peer.
        self.peer_policy = PeerPolicy(PolicyStore(settings.quic_policy_file),
                                      applies=settings.unix_socket is None)
        self.api.state.peer_policy = self.peer_policy
        self._engine: Environment | None = None
        self._passthrough: Any = None
        self._metrics: Any = None  # the /metrics endpoint, made at the first scrape
        self._schedule: asyncio.Task[None] | None = None
        self._runbooks: asyncio.Task[None] | None = None  # the runbook scheduler
        # Alert rules are read here, so that a bad rules file stops the agent at start.
        self.api.state.alerts = None
        self.api.state.sampler = None  # the metrics sampler (docs/metrics.md)
        self._alert_rules: Any = None
        if settings.alert_rules is not None:
            from ..metrics._alert_rules import load_rules

            self._alert_rules = load_rules(settings.alert_rules)
        # Releases a removed container's GPUs; started only once GPUs are reserved.
        self.gpu_releaser = GpuReleaser(self.api.state)
        self.api.state.gpu_releaser = self.gpu_releaser
        self._guarded = PeerPolicyMiddleware(
            AuthMiddleware(self._route, check_token=self._check_token,
                           client_certificates=settings.client_ca is not None,
                           limiter=self.limiter),
            self.peer_policy)

    async def _check_token(self, token: str) -> str | None:
        # On the loop unless the store is busy, then in a worker thread (TokenChecker.check).
        return await self.tokens.check(token)

    async def startup(self) -> None:
        """Open the engine environment and the passthrough (idempotent)."""
        if self._engine is None:
            self._engine = connect(self.settings.engine_url, name="agent")
            self.api.state.engine = self._engine
        if self._passthrough is None:
            self._passthrough = _load_passthrough(self.settings.engine_url)
            await self.gpu_releaser.start_if_reserved()
        if self.settings.snapshot_boltfile is not None and self._schedule is None:
            # Imported only here: an agent without a Boltfile loads no snapshot code.
            from ._snapshot_schedule import start_schedule

            self._schedule = start_schedule(self.settings, self._engine)
        if self.settings.runbook_schedules and self._runbooks is None:
            # Imported only here: an agent without --runbooks loads no papermill.
            from ..runbooks._agent import start_runbook_schedules

            self._runbooks = start_runbook_schedules(self.settings.home)
        if self.settings.metrics_interval > 0 and self.api.state.sampler is None:
            self.api.state.sampler = self._start_sampler(self._engine)
        if self._alert_rules is not None and self.api.state.alerts is None:
            self.api.state.alerts = self._start_alerts(self._engine)

    async def stopping(self) -> None:
        """The agent is about to stop: end the event subscribers with 1001 "going away"
        now, before the server waits for open connections to finish (they never would)."""
        await close_hub(self.api.state)

    async def shutdown(self) -> None:
        """Close the event hub, the engine connections and the token store."""
        # First: Surge runs still going on roll back through the engine connection.
        await unwind_runs()
        await self.gpu_releaser.aclose()
        schedule, self._schedule = self._schedule, None
        if schedule is not None:  # a round under way is cancelled: all or nothing
            schedule.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await schedule
        runbooks, self._runbooks = self._runbooks, None
        if runbooks is not None:
            runbooks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runbooks
        alerts, self.api.state.alerts = self.api.state.alerts, None
        if alerts is not None:
            await alerts.aclose()
        sampler, self.api.state.sampler = self.api.state.sampler, None
        if sampler is not None:  # a round under way is cancelled, unwritten
            await sampler.aclose()
            sampler.store.close()
        await self.stopping()
        passthrough, self._passthrough = self._passthrough, None
        metrics, self._metrics = self._metrics, None
        if metrics is not None:
            await metrics.aclose()
        engine, self._engine = self._engine, None
        try:
            if passthrough is not None:
                await passthrough.aclose()
        finally:
            if engine is not None:
                await engine.aclose()
            self.tokens.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: lifespan here, the rest through authentication."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self._engine is None:  # served without a lifespan (a test's own server)
            await self.startup()
        await self._guarded(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await serve_lifespan(receive, send, startup=self.startup, shutdown=self.shutdown)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            await self.api(scope, receive, send)
        elif path == "/metrics":
            await self._metrics_endpoint()(scope, receive, send)
        else:
            await self._passthrough(scope, receive, send)

    def _start_sampler(self, engine: Environment) -> Any:
        """The metrics sampler, running in the background (docs/metrics.md)."""
        # Imported here: an agent with sampling off loads no metrics code. Both are
        # stdlib-only (sqlite3): the agent never loads pandas for its history.
        from ..metrics._sampler import Sampler
        from ..metrics._store import MetricsStore

        sampler = Sampler(engine, MetricsStore(self.settings.metrics_path),
                          self.settings.metrics_interval, environment="local")
        sampler.start()
        return sampler

    def _start_alerts(self, engine: Environment) -> Any:
        """The alert evaluator over the sampler's store, running (docs/alerts.md)."""
        from ..metrics._alerts import AlertEvaluator, default_deliveries
        from ..metrics._store import MetricsStore

        sampler = getattr(self.api.state, "sampler", None)
        store = getattr(sampler, "store", None) or MetricsStore(self.settings.metrics_path)
        evaluator = AlertEvaluator(
            engine, store, self._alert_rules,
            deliveries=default_deliveries(self._alert_rules,
                                          database_url=self.settings.store_url),
            environment=getattr(sampler, "environment", None))
        # By default a round per sampling round: nothing new to judge in between.
        evaluator.start(self.settings.alert_interval or self.settings.metrics_interval or 10.0)
        return evaluator

    def _metrics_endpoint(self) -> Any:
        if self._metrics is None:
            from ._prometheus import MetricsEndpoint

            assert self._engine is not None  # started before any request is routed
            state = self.api.state
            # Asked at each scrape: the sampler, when the agent runs one, is kept there.
            self._metrics = MetricsEndpoint(self._engine,
                                            lambda: getattr(state, "sampler", None))
        return self._metrics


def create_app(settings: AgentSettings, *, tokens: TokenChecker | None = None) -> AgentApp:
    """The agent's ASGI application for ``settings``.

    Parameters
    ----------
    settings
        What to serve (the engine URL; the listen address only shows in ``/info``).
    tokens
        Checks bearer tokens; by default against ``settings.store_url``.

    Examples
    --------
    >>> app = create_app(AgentSettings(engine_url="unix:///run/podman/podman.sock"))
    ...                                                             # doctest: +SKIP
    """
    return AgentApp(settings, tokens=tokens)

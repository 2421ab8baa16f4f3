"""The gateway's shared state: environments, permissions and the audit log, opened once.

:class:`GatewayState` is the :class:`~._context.GatewayContext` the gateway's handlers
read (``scope[CONTEXT]``). Everything comes from the GhostPanel store
(``$GHOSTPANEL_DATABASE_URL``, else SQLite under ``$GHOSTPANEL_HOME``):

- the environment registry (``ghostpanel env add``): each environment's
  :class:`~ghostpanel_kernel.engine.Environment` (for inspects) and Engine API
  passthrough (for forwarding) are made on first use and kept;
- role bindings (:class:`~._roles.RoleStore`): a caller's permissions on an environment
  are the union of the bindings for them and for their groups, and of the
  ``custom:ghostpanel:ENV:PERMISSION`` scopes of their token; hub admins hold all;
- the audit log (:class:`~._audit.AuditLog`).

The store is synchronous (SQLAlchemy): its calls run in a worker thread, so that the
event loop keeps serving. Bindings are cached for :data:`PERMISSION_TTL` seconds, and
the environment names likewise: a revoked role stops working within that time (plus
the hub's own 5 s cache for the token: under 10 s in all).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import EnvironmentNotFound
from ._identity import Identity
from ._permissions import PERMISSIONS, permissions_from_scopes

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ..engine import Environment
    from ..environments import EnvironmentRegistry, EnvironmentSpec
    from ..server._passthrough import EnginePassthrough
    from ._audit import AuditLog
    from ._roles import RoleStore

__all__ = ["PERMISSION_TTL", "GatewayState"]

#: Seconds a caller's role bindings (and the registry's names) are reused.
PERMISSION_TTL: Final = 2.0


class GatewayState:
    """The gateway's environments, permissions and audit log (see the module notes).

    Parameters
    ----------
    database_url
        The store; by default ``$GHOSTPANEL_DATABASE_URL`` or the SQLite file under
        ``$GHOSTPANEL_HOME``.
    clock
        Monotonic seconds (tests move time on).

    Examples
    --------
    >>> state = GatewayState()                                  # doctest: +SKIP
    >>> await state.permissions(Identity("ada", frozenset({"blue"})), "prod")
    ...                                                         # doctest: +SKIP
    frozenset({'read', 'logs', 'lifecycle', 'exec', 'files'})
    """

    def __init__(self, database_url: str | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from ..environments import EnvironmentRegistry
        from ..store import open_database
        from ._audit import AuditLog
        from ._roles import RoleStore

        # The gateway serves registered environments only: never a probed local socket.
        self.registry: EnvironmentRegistry = EnvironmentRegistry(database_url,
                                                                 detect=lambda: None)
        # Roles and the audit log sit on every request's path: a pooled engine keeps its
        # connections open (an audit record costs ~0.5 ms on SQLite and ~1.1 ms on
        # PostgreSQL pooled, against ~2-3 ms and ~6 ms with a new connection each time).
        engine: Engine = open_database(database_url, pooled=True)
        self._store_engine = engine
        self.roles: RoleStore = RoleStore(engine)
        self.audit: AuditLog = AuditLog(engine)
        self._clock = clock
        self._bindings: dict[tuple[str, frozenset[str], str], tuple[float, frozenset[str]]]
        self._bindings = {}
        self._names: tuple[float, dict[str, EnvironmentSpec]] | None = None
        self._environments: dict[str, Environment] = {}
        self._passthroughs: dict[str, EnginePassthrough] = {}

    # -- permissions -----------------------------------------------------------------

    async def permissions(self, identity: Identity, environment: str) -> frozenset[str]:
        """What ``identity`` may do on ``environment`` (``docs/rbac.md``)."""
        if identity.admin:
            return frozenset(PERMISSIONS)
        granted = permissions_from_scopes(identity.scopes, environment)
        if identity.kind != "user":
            return granted  # bindings name users and groups; a service has its scopes
        key = (identity.name, identity.groups, environment)
        now = self._clock()
        cached = self._bindings.get(key)
        if cached is None or now - cached[0] > PERMISSION_TTL:
            bound = await asyncio.to_thread(self.roles.permissions, identity.name,
                                            identity.groups, environment)
            cached = (now, frozenset(bound))
            if len(self._bindings) > 10_000:  # callers come and go: keep it bounded
                self._bindings.clear()
            self._bindings[key] = cached
        return granted | cached[1]

    # -- environments ----------------------------------------------------------------

    async def _specs(self) -> dict[str, EnvironmentSpec]:
        now = self._clock()
        if self._names is None or now - self._names[0] > PERMISSION_TTL:
            specs = await asyncio.to_thread(self.registry.list)
            self._names = (now, {spec.name: spec for spec in specs})
        return self._names[1]

    def environment_names(self) -> list[str]:
        """The registered environments' names, sorted (as last read, ≤ 2 s ago)."""
        now = self._clock()
        if self._names is None or now - self._names[0] > PERMISSION_TTL:
            # Read again once stale, as _specs does: whoami and environments list an
            # environment registered while the gateway runs.
            self._names = (now, {spec.name: spec for spec in self.registry.list()})
        return sorted(self._names[1])

    async def spec(self, name: str) -> EnvironmentSpec:
        """The registered environment ``name``.

        Raises
        ------
        EnvironmentNotFound
            No such environment.
        """
        specs = await self._specs()
        if name not in specs:
            raise EnvironmentNotFound(name, known=list(specs))
        return specs[name]

    async def environment(self, name: str) -> Environment:
        """The open :class:`Environment` registered as ``name`` (opened once, kept)."""
        spec = await self.spec(name)
        env = self._environments.get(name)
        if env is None or env.url != spec.url:
            env = self._environments[name] = spec.open()
        return env

    async def passthrough(self, name: str) -> EnginePassthrough:
        """The Engine API passthrough to environment ``name`` (made once, kept)."""
        from ..server._passthrough import EnginePassthrough

        spec = await self.spec(name)
        passthrough = self._passthroughs.get(name)
        if passthrough is None:
            passthrough = self._passthroughs[name] = EnginePassthrough(
                spec.url, tls=spec.tls, token=spec.token)
        return passthrough

    async def visible_environments(self, identity: Identity) -> list[str]:
        """The environments on which ``identity`` holds any permission, sorted."""
        names = sorted(await self._specs())
        held = await asyncio.gather(*(self.permissions(identity, name) for name in names))
        return [name for name, perms in zip(names, held, strict=True) if perms]

    async def record(self, **fields: Any) -> None:
        """Write one audit record (in a worker thread); see :meth:`AuditLog.record`."""
        await asyncio.to_thread(lambda: self.audit.record(**fields))

    async def aclose(self) -> None:
        """Close the engine connections and the store."""
        environments, self._environments = self._environments, {}
        passthroughs, self._passthroughs = self._passthroughs, {}
        for passthrough in passthroughs.values():
            await passthrough.aclose()
        for env in environments.values():
            await env.aclose()
        self.registry.close()
        self._store_engine.dispose()

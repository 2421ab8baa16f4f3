"""The gateway's environments, as the registry shows them inside a hub session.

Inside a JupyterHub single-user server the environments are not this machine's: they
are the ones the GhostPanel gateway lets the user see, each reached through the gateway
with the user's own hub token. :class:`GatewayRegistry` answers the registry's questions
(list, get, resolve, select) from the gateway's ``/api/v1/environments``, so that
``connect()``, the CLI's fan-out commands and the environment picker need no set-up
there. Each environment is an agent-kind one: base URL ``{GATEWAY}env/{name}``, its
Engine API under ``/engine`` and its REST API under ``/api/v1`` (``docs/gateway-client.md``).

Outside a hub session nothing changes: :func:`session_registry` is the local
:class:`EnvironmentRegistry`.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, NoReturn, TypeVar

import httpx

from ..engine import EnvironmentNotFound
from ..gateway._client import GatewayClient, GatewayEnvironment, HubGateway
from ._health import EnvironmentHealth
from ._registry import EnvironmentRegistry
from ._spec import EnvironmentSpec

__all__ = ["GatewayRegistry", "session_registry"]

T = TypeVar("T")

#: Seconds a fetched list is reused: one command asks several questions in a row
#: (select, then get), and a role granted a moment ago must show soon after.
_LIST_TTL: Final = 2.0


def _run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end from sync code, even where an event loop runs.

    A notebook kernel runs an event loop in the calling thread, where ``asyncio.run``
    is refused: the coroutine runs on a loop of its own in a short-lived thread.
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = asyncio.run(factory())
        except BaseException as error:  # handed back to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=work, name="ghostpanel-gateway", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


class GatewayRegistry(EnvironmentRegistry):
    """The environments the gateway shows this hub user; read-only.

    A drop-in for :class:`EnvironmentRegistry` in a hub session: :meth:`list`,
    :meth:`get`, :meth:`resolve` and :meth:`select` answer from the gateway; adding,
    removing or choosing a default is the hub admins' business and raises
    ``ValueError`` saying so. The default environment is ``GHOSTPANEL_ENVIRONMENT``
    when set, else the first one the gateway lists.

    Parameters
    ----------
    gateway
        The gateway and the user's token (:meth:`HubGateway.from_environ`).
    transport
        An httpx transport for the gateway-wide calls (tests); the environments'
        own requests use the network.
    default
        The default environment's name (``GHOSTPANEL_ENVIRONMENT`` when None).

    Examples
    --------
    >>> registry = session_registry()                    # doctest: +SKIP
    >>> [spec.name for spec in registry.list()]          # doctest: +SKIP
    ['prod', 'staging']
    """

    # The parent's __init__ opens a database: a hub session has none to open.
    def __init__(self, gateway: HubGateway, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 default: str | None = None) -> None:
        self.gateway = gateway
        self._transport = transport
        self._default = default if default is not None else (
            os.environ.get("GHOSTPANEL_ENVIRONMENT") or None)
        self._fetched: tuple[float, builtins.list[GatewayEnvironment]] | None = None

    # -- the gateway's answers -------------------------------------------------------

    def environments(self) -> builtins.list[GatewayEnvironment]:
        """The gateway's own entries (with the caller's permissions), reused for 2 s."""
        now = time.monotonic()
        if self._fetched is not None and now - self._fetched[0] < _LIST_TTL:
            return self._fetched[1]

        async def fetch() -> builtins.list[GatewayEnvironment]:
            async with GatewayClient(self.gateway, transport=self._transport) as client:
                return await client.environments()

        found = _run_blocking(fetch)
        self._fetched = (time.monotonic(), found)
        return found

    def spec_for(self, environment: GatewayEnvironment | str) -> EnvironmentSpec:
        """The spec that reaches ``environment`` through the gateway with the user's token."""
        name = environment if isinstance(environment, str) else environment.name
        labels = {} if isinstance(environment, str) else dict(environment.labels)
        return EnvironmentSpec(name, self.gateway.environment_url(name), labels=labels,
                               token=self.gateway.token)

    def permissions(self, name: str) -> frozenset[str]:
        """The caller's permissions on ``name`` (empty when the gateway hides it)."""
        for environment in self.environments():
            if environment.name == name:
                return environment.permissions
        return frozenset()

    # -- the registry's questions ----------------------------------------------------

    def list(self) -> builtins.list[EnvironmentSpec]:
        """The environments the gateway lets this user see, in its order."""
        return [self.spec_for(environment) for environment in self.environments()]

    def get(self, name: str) -> EnvironmentSpec:
        """The environment ``name`` through the gateway.

        Raises
        ------
        EnvironmentNotFound
            The gateway does not show this user an environment of that name.
        """
        environments = self.environments()
        for environment in environments:
            if environment.name == name:
                return self.spec_for(environment)
        raise EnvironmentNotFound(
            name, known=[environment.name for environment in environments],
            hint=f"The gateway at {self.gateway.url} lists only the environments your "
                 "hub role lets you see; ask a hub admin for a role there")

    def default_name(self) -> str | None:
        """``GHOSTPANEL_ENVIRONMENT``, or None (then :meth:`resolve` takes the first)."""
        return self._default

    def resolve(self, target: str | None) -> EnvironmentSpec:
        """``target``, else the default, else the first environment the gateway lists.

        Raises
        ------
        EnvironmentNotFound
            ``target`` (or the default) is not shown to this user, or none is.
        """
        if target is not None:
            return self.get(target)
        if self._default is not None:
            return self.get(self._default)
        environments = self.environments()
        if not environments:
            raise EnvironmentNotFound(
                None, hint=f"The gateway at {self.gateway.url} shows you no environment: "
                           "ask a hub admin for a role on one")
        return self.spec_for(environments[0])

    def select(self, names: Sequence[str] | None) -> builtins.list[EnvironmentSpec]:
        """As :meth:`EnvironmentRegistry.select`, over the gateway's environments."""
        return super().select(names)

    def health(self) -> dict[str, EnvironmentHealth]:
        """Nothing is remembered: the gateway, not this session, watches its engines."""
        return {}

    def record_health(self, outcomes: Iterable[tuple[str, str, BaseException | None]], *,
                      now: datetime | None = None) -> None:
        """Nothing to record (see :meth:`health`)."""

    # -- changes belong to the hub's admins ------------------------------------------

    def _read_only(self, what: str) -> NoReturn:
        raise ValueError(f"cannot {what} in a hub session: the environments are the "
                         f"gateway's ({self.gateway.url}); a hub admin registers them on "
                         "the hub's host, and roles decide who sees which")

    def add(self, name: str, url: str, **options: Any) -> EnvironmentSpec:
        """Refused: see the class docstring."""
        self._read_only(f"register {name!r}")

    def remove(self, name: str) -> None:
        """Refused: see the class docstring."""
        self._read_only(f"remove {name!r}")

    def use(self, name: str) -> None:
        """Refused; set ``GHOSTPANEL_ENVIRONMENT`` to choose the default instead."""
        raise ValueError(f"cannot make {name!r} the default in a hub session: set "
                         f"GHOSTPANEL_ENVIRONMENT={name} instead (the environments are the "
                         f"gateway's, {self.gateway.url})")

    def close(self) -> None:
        """Nothing is held between calls."""

    def __repr__(self) -> str:
        return f"<GatewayRegistry {self.gateway.url}>"


def session_registry(environ: Mapping[str, str] | None = None) -> EnvironmentRegistry:
    """The registry this process should use: the gateway's in a hub session, else local.

    Examples
    --------
    >>> registry = session_registry()     # doctest: +SKIP
    """
    gateway = HubGateway.from_environ(environ)
    if gateway is None:
        return EnvironmentRegistry()
    return GatewayRegistry(gateway, default=(
        (os.environ if environ is None else environ).get("GHOSTPANEL_ENVIRONMENT") or None))

"""An environment: one named engine endpoint with its collections."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ._client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_RESPONSE_TIMEOUT,
    DEFAULT_TIMEOUT,
    EngineClient,
    EngineVersion,
)
from ._containers import ContainerCollection
from ._endpoint import TLSConfig
from ._images import ImageCollection
from ._networks import NetworkCollection
from ._system import Event, SystemAPI
from ._times import Timestamp
from ._volumes import VolumeCollection

if TYPE_CHECKING:
    from ..metrics._history import EnvironmentMetrics

__all__ = ["Environment"]


class Environment:
    """A named engine (a Bolt host) and everything on it.

    Parameters
    ----------
    url
        Engine endpoint: ``unix:///run/podman/podman.sock``, ``tcp://host:2375`` or
        ``https://host:2376``.
    name
        The environment's name, carried by every object it returns.
    tls
        Certificates for TLS endpoints (or an agent's pinned fingerprint).
    token
        Bearer token of a GhostPanel agent (``https://`` or ``h3://``), sent with
        every request.
    labels
        Free labels such as ``{"region": "us-east"}``.
    transport
        An httpx transport to use instead of the socket one (tests).
    timeout
        Seconds a non-streaming request may take, answer included (streams: no limit
        once their answer has begun).
    connect_timeout
        Seconds to open a connection (and finish the TLS handshake).
    response_timeout
        Seconds from a request sent to the head of its answer: a host that accepts
        connections but never answers fails in this time. Calls that are slow by
        nature (``stop``, ``wait``) wait with their own ``timeout`` instead, and
        streams without limit (Podman sends a log follow's head with its first line).

    Examples
    --------
    >>> env = Environment("unix:///run/podman/podman.sock", name="laptop")  # doctest: +SKIP
    >>> [c.name for c in await env.containers.list()]                      # doctest: +SKIP
    """

    _sync_wrap = True

    def __init__(self, url: str, *, name: str = "local", tls: TLSConfig | None = None,
                 token: str | None = None, labels: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = DEFAULT_TIMEOUT,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 response_timeout: float = DEFAULT_RESPONSE_TIMEOUT) -> None:
        self.name = name
        self.labels: dict[str, str] = dict(labels or {})
        try:
            self.client = EngineClient(url, tls=tls, token=token, transport=transport,
                                       timeout=timeout,
                                       connect_timeout=connect_timeout,
                                       response_timeout=response_timeout)
        except ValueError as error:
            # A bad URL or certificate file: say which environment it belongs to.
            raise ValueError(f"environment {name!r}: {error}") from error
        self.containers = ContainerCollection(self.client, environment=name)
        self.images = ImageCollection(self.client, environment=name)
        self.volumes = VolumeCollection(self.client, environment=name)
        self.networks = NetworkCollection(self.client, environment=name)
        self.system = SystemAPI(self.client, environment=name)
        self._metrics: EnvironmentMetrics | None = None

    @property
    def metrics(self) -> EnvironmentMetrics:
        """The environment's metrics history as pandas (``await env.metrics.history()``).

        Imported on first use: the agent imports this module, and never pandas.
        """
        if self._metrics is None:
            from ..metrics._history import EnvironmentMetrics

            self._metrics = EnvironmentMetrics(self)
        return self._metrics

    @property
    def url(self) -> str:
        """The engine endpoint."""
        return self.client.url

    async def ping(self) -> bool:
        """True when the engine answers; raises :class:`EngineConnectionError` if not."""
        return await self.system.ping()

    async def version(self) -> EngineVersion:
        """Engine kind and versions (negotiated once)."""
        return await self.client.version()

    def events(self, *, filters: Mapping[str, Any] | None = None,
               since: Timestamp | None = None,
               until: Timestamp | None = None) -> AsyncIterator[Event]:
        """Engine events as an async iterator (see :meth:`SystemAPI.events`)."""
        return self.system.events(filters=filters, since=since, until=until)

    async def aclose(self) -> None:
        """Close the engine connections."""
        await self.client.aclose()

    async def __aenter__(self) -> Environment:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<Environment {self.name} {self.url}>"

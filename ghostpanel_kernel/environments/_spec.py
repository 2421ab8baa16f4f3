"""What the registry knows about an environment, before any connection is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from ..engine import Environment, TLSConfig

__all__ = ["EnvironmentSpec"]


@dataclass(frozen=True)
class EnvironmentSpec:
    """A named engine endpoint as registered (or auto-detected): no connection yet.

    Parameters
    ----------
    name
        The environment's name (``local``, ``us-east-1``...).
    url
        Engine endpoint: ``unix:///run/podman/podman.sock``, ``tcp://host:2375``,
        ``https://host:2376``.
    tls
        Certificates for TLS endpoints, or None.
    labels
        Free labels such as ``{"region": "us-east"}``. Not part of the hash.
    detected
        True for the ``local`` environment found by probing the usual sockets rather
        than read from the registry.

    Examples
    --------
    >>> spec = EnvironmentSpec("us-east-1", "tcp://10.0.0.5:2375", labels={"region": "us-east"})
    >>> spec.region
    'us-east'
    >>> env = spec.open()                   # doctest: +SKIP
    """

    name: str
    url: str
    tls: TLSConfig | None = None
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    detected: bool = False

    def __post_init__(self) -> None:
        # A private copy: the spec is frozen, so the caller's dict must not change it.
        object.__setattr__(self, "labels", dict(self.labels))

    @property
    def region(self) -> str | None:
        """The ``region`` label, or None."""
        return self.labels.get("region")

    def open(self, *, transport: httpx.AsyncBaseTransport | None = None,
             timeout: float | None = None,
             connect_timeout: float | None = None) -> Environment:
        """Make an :class:`Environment` for this endpoint (connects on first request).

        Parameters
        ----------
        transport
            An httpx transport to use instead of the socket one (tests).
        timeout, connect_timeout
            Seconds for a request and for connecting; the :class:`Environment`
            defaults when None.

        Examples
        --------
        >>> async with spec.open() as env:      # doctest: +SKIP
        ...     await env.ping()
        True
        """
        # Only the values given are passed on, so Environment's defaults stay the one
        # place where the default timeouts are decided.
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = timeout
        if connect_timeout is not None:
            extra["connect_timeout"] = connect_timeout
        return Environment(self.url, name=self.name, tls=self.tls, labels=self.labels,
                           transport=transport, **extra)

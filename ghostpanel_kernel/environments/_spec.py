"""What the registry knows about an environment, before any connection is made."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
        ``https://host:2376``; an agent's ``https://host:port`` or ``h3://host:port``.
    tls
        Certificates for TLS endpoints (or an agent's pinned fingerprint), or None.
    token
        An agent's bearer token, or None. Never shown: not in ``repr``, not part of
        equality or the hash.
    labels
        Free labels such as ``{"region": "us-east"}``. Not part of the hash.
    detected
        True for the ``local`` environment found by probing the usual sockets rather
        than read from the registry.
    connect_timeout, response_timeout
        Seconds :meth:`open` gives the environment to connect, and to start answering a
        request (see :class:`Environment`); its defaults when None. Not part of the
        hash: see :meth:`with_timeouts`.

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
    token: str | None = field(default=None, compare=False, repr=False, kw_only=True)
    detected: bool = False
    connect_timeout: float | None = field(default=None, compare=False, repr=False)
    response_timeout: float | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # A private copy: the spec is frozen, so the caller's dict must not change it.
        object.__setattr__(self, "labels", dict(self.labels))

    @property
    def region(self) -> str | None:
        """The ``region`` label, or None."""
        return self.labels.get("region")

    def with_timeouts(self, *, connect: float | None = None,
                      response: float | None = None) -> EnvironmentSpec:
        """This spec, opened with these timeouts (those given) by :meth:`open`.

        For callers that hand specs to code that opens them, such as :func:`fan_out`:
        a command listing many hosts wants a dead one to cost seconds, not a minute.

        Examples
        --------
        >>> spec = EnvironmentSpec("gpu-1", "tcp://10.0.0.9:2375").with_timeouts(connect=2)
        >>> spec.connect_timeout, spec.response_timeout
        (2, None)
        """
        return replace(
            self, connect_timeout=self.connect_timeout if connect is None else connect,
            response_timeout=self.response_timeout if response is None else response)

    def open(self, *, transport: httpx.AsyncBaseTransport | None = None,
             timeout: float | None = None, connect_timeout: float | None = None,
             response_timeout: float | None = None) -> Environment:
        """Make an :class:`Environment` for this endpoint (connects on first request).

        Parameters
        ----------
        transport
            An httpx transport to use instead of the socket one (tests).
        timeout, connect_timeout, response_timeout
            Seconds for a whole request, for connecting and for the head of an answer
            (as :class:`Environment` takes them). When None: the spec's own
            :attr:`connect_timeout` and :attr:`response_timeout`, else the
            :class:`Environment` defaults.

        Examples
        --------
        >>> async with spec.open() as env:      # doctest: +SKIP
        ...     await env.ping()
        True
        """
        # Only the values given are passed on, so Environment's defaults stay the one
        # place where the default timeouts are decided.
        chosen = {"timeout": timeout,
                  "connect_timeout": self.connect_timeout if connect_timeout is None
                  else connect_timeout,
                  "response_timeout": self.response_timeout if response_timeout is None
                  else response_timeout}
        extra: dict[str, Any] = {key: value for key, value in chosen.items()
                                 if value is not None}
        return Environment(self.url, name=self.name, tls=self.tls, token=self.token,
                           labels=self.labels, transport=transport, **extra)

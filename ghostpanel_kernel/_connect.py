"""``connect``: the one call that turns a URL or an environment name into an Environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from .engine import Environment, SyncBridge, SyncProxy, TLSConfig

__all__ = ["connect", "connect_sync"]

_SCHEMES = ("unix://", "tcp://", "http://", "https://", "h3://")


def connect(target: str | None = None, *, name: str | None = None,
            tls: TLSConfig | None = None, token: str | None = None,
            fingerprint: str | None = None, labels: Mapping[str, str] | None = None,
            transport: httpx.AsyncBaseTransport | None = None,
            timeout: float | None = None, connect_timeout: float | None = None,
            response_timeout: float | None = None) -> Environment:
    """Open an environment by URL or by registered name.

    Parameters
    ----------
    target
        An engine URL (``unix:///run/podman/podman.sock``, ``tcp://host:2375``,
        ``https://host:2376``), an agent's (``https://host:port``, or ``h3://host:port``
        for HTTP/3), the name of a registered environment, or None for the default one
        (chosen with ``ghostpanel env use``, else the auto-detected ``local``). Inside a
        JupyterHub single-user server the names are the GhostPanel gateway's
        environments, reached with the user's own hub token; None is
        ``GHOSTPANEL_ENVIRONMENT``, else the first one the user may see.
    name
        Name for an environment opened by URL (default ``"local"``).
    tls, labels, transport
        As :class:`Environment` takes them; ``tls``/``labels`` default to the registered
        ones when ``target`` is a name.
    token
        An agent's bearer token (default: the registered one when ``target`` is a name).
    fingerprint
        SHA-256 fingerprint of the agent's self-signed certificate (``AB:CD:...`` or
        hex): that certificate is accepted, and no other (see :class:`TLSConfig`).
    timeout
        Seconds a non-streaming request may take, answer included (default 60).
    connect_timeout
        Seconds to open a connection and finish the TLS handshake (default 3).
    response_timeout
        Seconds from a request sent to the head of its answer (default 10): a host that
        accepts connections but never answers fails this fast. Calls slow by nature
        (``stop``, ``wait``) use their own ``timeout`` instead; streams (logs, events,
        stats, pulls) wait for their head without limit.

    Raises
    ------
    EnvironmentNotFound
        ``target`` is neither a URL nor a registered name, or there is no default and no
        engine socket answers (in a hub session: the gateway shows no such environment).

    Examples
    --------
    >>> env = connect("unix:///run/podman/podman.sock")   # doctest: +SKIP
    >>> env = connect("us-east-1")                        # doctest: +SKIP
    >>> env = connect("h3://10.0.0.7:7443", token="...", fingerprint="AB:CD:...")
    ...                                                   # doctest: +SKIP
    """
    # Only what was given: the defaults live in one place, Environment's signature.
    extra: dict[str, Any] = {key: value for key, value in (
        ("timeout", timeout), ("connect_timeout", connect_timeout),
        ("response_timeout", response_timeout)) if value is not None}
    if target is not None and target.startswith(_SCHEMES):
        return Environment(target, name=name or "local", tls=_pinned(tls, fingerprint),
                           token=token, labels=labels, transport=transport, **extra)
    # Only a name needs the registry (SQLAlchemy): a URL never pays for importing it.
    # In a JupyterHub session the names are the gateway's (docs/gateway-client.md).
    from .environments import session_registry

    spec = session_registry().resolve(target)
    return Environment(spec.url, name=name or spec.name,
                       tls=_pinned(tls or spec.tls, fingerprint),
                       token=token if token is not None else spec.token,
                       labels=labels if labels is not None else spec.labels,
                       transport=transport, **extra)


def _pinned(tls: TLSConfig | None, fingerprint: str | None) -> TLSConfig | None:
    """``tls`` with ``fingerprint`` pinned (a pin replaces any CA: see TLSConfig)."""
    if fingerprint is None:
        return tls
    if tls is None:
        return TLSConfig(fingerprint=fingerprint)
    return replace(tls, ca_cert=None, fingerprint=fingerprint)


def connect_sync(target: str | None = None, **options: Any) -> SyncProxy:
    """Like :func:`connect`, for scripts without an event loop: every call blocks.

    Examples
    --------
    >>> env = connect_sync()                                    # doctest: +SKIP
    >>> print([c.name for c in env.containers.list(all=True)])  # doctest: +SKIP
    """
    return SyncProxy(connect(target, **options), SyncBridge(), owns_bridge=True)

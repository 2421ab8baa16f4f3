"""Engine endpoints: where an engine listens and how to reach it securely."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["Endpoint", "TLSConfig"]

Scheme = Literal["unix", "tcp", "https"]


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings for a ``https://`` (or TLS ``tcp://``) engine.

    Parameters
    ----------
    ca_cert
        PEM file of the CA that signed the engine's certificate; the system store when None.
    client_cert, client_key
        PEM files of the client certificate the engine requires (Docker's ``--tlsverify``).
    verify
        Check the engine's certificate. Turning it off is for throwaway test hosts only.

    Examples
    --------
    >>> TLSConfig(ca_cert="ca.pem", client_cert="cert.pem", client_key="key.pem")
    TLSConfig(ca_cert='ca.pem', client_cert='cert.pem', client_key='key.pem', verify=True)
    """

    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool = True

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("TLSConfig needs both client_cert and client_key, or neither")

    def ssl_context(self) -> ssl.SSLContext:
        """Build the client-side :class:`ssl.SSLContext` these settings describe."""
        context = ssl.create_default_context(cafile=self.ca_cert)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert is not None:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


@dataclass(frozen=True)
class Endpoint:
    """A parsed engine URL.

    Accepted forms: ``unix:///run/podman/podman.sock``, ``tcp://host:2375``
    (``http://`` is an alias), ``https://host:2376``. A ``tcp://`` endpoint with a
    :class:`TLSConfig` speaks TLS, as Docker's ``DOCKER_TLS_VERIFY`` does.

    Examples
    --------
    >>> Endpoint.parse("tcp://127.0.0.1:2375").port
    2375
    """

    url: str
    scheme: Scheme
    socket_path: str | None = None
    host: str | None = None
    port: int | None = None
    tls: TLSConfig | None = None

    @classmethod
    def parse(cls, url: str, *, tls: TLSConfig | None = None) -> Endpoint:
        """Parse ``url`` into an :class:`Endpoint`; raise ``ValueError`` when malformed."""
        if not isinstance(url, str):
            raise TypeError(f"engine URL must be a str, not {type(url).__name__}")
        parts = urlsplit(url)
        if parts.scheme == "unix":
            path = parts.path if not parts.netloc else f"/{parts.netloc}{parts.path}"
            if not path.startswith("/"):
                raise ValueError(f"unix endpoint needs an absolute socket path: {url!r}")
            return cls(url=url, scheme="unix", socket_path=path, tls=tls)
        if parts.scheme in ("tcp", "http", "https"):
            if not parts.hostname:
                raise ValueError(f"endpoint has no host: {url!r}")
            try:
                port = parts.port
            except ValueError as exc:
                raise ValueError(f"endpoint has an invalid port: {url!r}") from exc
            secure = parts.scheme == "https" or tls is not None
            if port is None:
                port = 2376 if secure else 2375
            return cls(url=url, scheme="https" if secure else "tcp", host=parts.hostname,
                       port=port, tls=tls or (TLSConfig() if secure else None))
        raise ValueError(
            f"unsupported engine URL {url!r}: use unix:///path.sock, tcp://host:port "
            "or https://host:port"
        )

    @property
    def host_header(self) -> str:
        """The ``Host`` header to send: the TCP authority, or a placeholder for sockets."""
        return f"{self.host}:{self.port}" if self.host else "localhost"

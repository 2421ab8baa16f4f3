"""Engine endpoints: where an engine listens and how to reach it securely."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

__all__ = ["Endpoint", "TLSConfig", "certificate_fingerprint", "fingerprint_mismatch",
           "is_loopback_host", "normalize_fingerprint"]

#: ``h3`` is an agent reached over HTTP/3 (QUIC); ``https`` an engine or agent over TLS.
Scheme = Literal["unix", "tcp", "https", "h3"]

#: Longest engine URL taken; a host name is at most 253 characters (RFC 1035).
_MAX_URL = 1024
_MAX_HOST = 253
#: ``sun_path`` holds 108 bytes on Linux, the terminating NUL included.
_MAX_SOCKET_PATH = 107
#: One DNS label: letters, digits, hyphens inside (underscores are seen in the wild).
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)", re.ASCII)


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` is this machine's loopback: ``localhost`` or a loopback IP.

    Names are not resolved: only what is loopback by its text counts (a token or an
    unencrypted request is let go there and stays on this machine).

    Parameters
    ----------
    host : str or None
        A host name or IP literal, without brackets; None or empty for none.

    Returns
    -------
    bool
        True for ``localhost``, ``127.0.0.0/8`` and ``::1``.

    Examples
    --------
    >>> is_loopback_host("127.0.0.1"), is_loopback_host("::1"), is_loopback_host("gpu-box")
    (True, True, False)
    """
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_host(host: str, url: str) -> None:
    """Refuse a host that no resolver would take, with the reason, at parse time.

    An IP literal passes as it is. A name must be at most 253 characters of labels of
    1 to 63; a non-ASCII name must have an IDNA form (what the resolver is given).
    """
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if len(host) > _MAX_HOST:
        raise ValueError(f"engine host name is {len(host)} characters long; a host name "
                         f"has at most {_MAX_HOST}: {url[:60]!r}...")
    ascii_host = host
    if not host.isascii():
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"engine host {host!r} is not a valid international domain "
                             f"name: {url!r}") from None
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > _MAX_HOST or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"engine host {host!r} is not a valid host name (dot-separated labels of 1-63 "
            f"letters, digits or '-') or IP address: {url!r}")


_HEX_DIGEST = re.compile(r"[0-9A-F]{64}")


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint in ``AB:CD:...`` form (upper case, 32 pairs).

    Takes what tools print: ``AB:CD:...``, bare hex, either case, with an optional
    ``sha256:`` (or ``SHA256=``, as ``openssl x509 -fingerprint`` prints) prefix.

    Raises
    ------
    ValueError
        ``text`` is not 32 bytes of hex; the message shows what was given.

    Examples
    --------
    >>> normalize_fingerprint("sha256:" + "ab" * 32)[:8]
    'AB:AB:AB'
    """
    if not isinstance(text, str):
        raise TypeError(f"fingerprint must be a str, not {type(text).__name__}")
    digits = text.strip()
    head, sep, tail = digits.partition("=") if "=" in digits else digits.partition(":")
    if sep and head.lower().replace("-", "").replace(" ", "") in ("sha256", "sha256fingerprint"):
        digits = tail
    digits = digits.replace(":", "").replace(" ", "").upper()
    if not _HEX_DIGEST.fullmatch(digits):
        raise ValueError(f"{text[:120]!r} is not a SHA-256 fingerprint: give 64 hex digits, "
                         "as AB:CD:... or plain hex")
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2))


def certificate_fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, in ``AB:CD:...`` form."""
    return normalize_fingerprint(hashlib.sha256(der).hexdigest())


def fingerprint_mismatch(expected: str, seen: str, where: str) -> str:
    """The one line that says a pinned certificate is not the one the peer showed."""
    return (f"the certificate of {where} does not match the pinned fingerprint: expected "
            f"SHA-256 {expected}, seen {seen} (a different host, or the agent's "
            "certificate was replaced: check it and register the environment again)")


class _PinnedSSLObject(ssl.SSLObject):
    """An :class:`ssl.SSLObject` that checks the peer's certificate against a pin.

    asyncio (and anything else using ``SSLContext.wrap_bio``) makes its TLS objects
    from the context's ``sslobject_class``: checking the digest right after the
    handshake, here, refuses a wrong certificate before a single request byte is sent,
    whatever transport opened the connection.
    """

    expected: ClassVar[str] = ""

    def do_handshake(self) -> None:
        super().do_handshake()  # SSLWantReadError until it is done: nothing to check yet
        der = self.getpeercert(binary_form=True)
        seen = certificate_fingerprint(der) if der else "no certificate"
        if seen != self.expected:
            raise ssl.SSLCertVerificationError(
                fingerprint_mismatch(self.expected, seen, self.server_hostname or "the peer"))


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings for a ``https://`` or ``h3://`` (or TLS ``tcp://``) endpoint.

    Parameters
    ----------
    ca_cert
        PEM file of the CA that signed the engine's certificate; the system store when None.
    client_cert, client_key
        PEM files of the client certificate the engine requires (Docker's ``--tlsverify``).
    verify
        Check the engine's certificate. Turning it off is for throwaway test hosts only.
    fingerprint
        SHA-256 fingerprint of the peer's own certificate (an agent's self-signed one,
        which ``ghostpanel agent`` prints at start), ``AB:CD:...`` or hex. When given,
        that certificate and no other is accepted: the CA chain and host name are not
        checked (a self-signed certificate has neither), the digest is. Excludes
        ``ca_cert``.

    Examples
    --------
    >>> TLSConfig(ca_cert="ca.pem", client_cert="cert.pem", client_key="key.pem")
    TLSConfig(ca_cert='ca.pem', client_cert='cert.pem', client_key='key.pem', verify=True, \
fingerprint=None)
    """

    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool = True
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("TLSConfig needs both client_cert and client_key, or neither")
        if self.fingerprint is not None:
            if self.ca_cert is not None:
                raise ValueError("TLSConfig takes a CA certificate or a pinned fingerprint, "
                                 "not both")
            object.__setattr__(self, "fingerprint", normalize_fingerprint(self.fingerprint))

    def ssl_context(self) -> ssl.SSLContext:
        """Build the client-side :class:`ssl.SSLContext` these settings describe.

        With a :attr:`fingerprint`, chain and host name checks are off and the peer's
        certificate digest is compared after the handshake instead; a mismatch fails
        the handshake with an :class:`ssl.SSLCertVerificationError` naming both.

        Raises
        ------
        ValueError
            A certificate or key file is missing, unreadable, empty or not PEM; the
            message names the file and the setting (OpenSSL's own words name neither).
        """
        try:
            context = ssl.create_default_context(cafile=self.ca_cert)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(_file_problem("ca_cert", self.ca_cert, error,
                                           "a CA certificate")) from None
        if not self.verify or self.fingerprint is not None:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.fingerprint is not None:
            pinned: dict[str, Any] = {"expected": self.fingerprint}
            context.sslobject_class = type("PinnedSSLObject", (_PinnedSSLObject,), pinned)
        if self.client_cert is not None:
            try:
                context.load_cert_chain(self.client_cert, self.client_key)
            except (OSError, ssl.SSLError) as error:
                # Either file may be the culprit: name the one that is not readable PEM.
                label, path = "client_cert", self.client_cert
                if _readable(self.client_cert) and not _readable(self.client_key):
                    label, path = "client_key", self.client_key or ""
                raise ValueError(_file_problem(
                    label, path, error, "a client certificate and its matching key")
                    ) from None
        return context


def _readable(path: str | None) -> bool:
    try:
        with open(path or "", "rb") as handle:
            return b"-----BEGIN" in handle.read(1 << 20)
    except OSError:
        return False


def _file_problem(label: str, path: str | None, error: BaseException, wanted: str) -> str:
    """One line naming the TLS setting, its file and what is wrong with it."""
    # OpenSSL reports a missing key file as "PEM lib": look at the file itself.
    file = path or ""
    if isinstance(error, FileNotFoundError) or not os.path.lexists(file):
        problem = "does not exist"
    elif isinstance(error, IsADirectoryError) or os.path.isdir(file):
        problem = "is a directory"
    elif isinstance(error, PermissionError) or not os.access(file, os.R_OK):
        problem = "cannot be read (permission denied)"
    elif os.path.isfile(file) and os.path.getsize(file) == 0:
        problem = "is empty"
    else:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        problem = f"does not hold {wanted} in PEM form ({reason})"
    return f"TLS {label} file {path!r} {problem}"


@dataclass(frozen=True)
class Endpoint:
    """A parsed engine URL.

    Accepted forms: ``unix:///run/podman/podman.sock``, ``tcp://host:2375``
    (``http://`` is an alias), ``https://host:2376``, and ``h3://host:port`` for an
    agent over HTTP/3 (QUIC, so always TLS). A ``tcp://`` endpoint with a
    :class:`TLSConfig` speaks TLS, as Docker's ``DOCKER_TLS_VERIFY`` does. A path
    (``http://hub:8000/services/ghostpanel/env/prod``) is the base of an environment
    behind the GhostPanel gateway: its Engine API is under ``PATH/engine`` and its REST
    API under ``PATH/api/v1`` (``docs/gateway-client.md``).

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
    #: Base path of an endpoint served below a URL path (an environment behind the
    #: GhostPanel gateway, ``/services/ghostpanel/env/prod``), without its trailing
    #: slash; ``""`` for engines and agents served at the root.
    path: str = ""

    @classmethod
    def parse(cls, url: str, *, tls: TLSConfig | None = None) -> Endpoint:
        """Parse ``url`` into an :class:`Endpoint`; raise ``ValueError`` when malformed."""
        if not isinstance(url, str):
            raise TypeError(f"engine URL must be a str, not {type(url).__name__}")
        if len(url) > _MAX_URL:
            raise ValueError(f"engine URL is too long ({len(url)} characters; at most "
                             f"{_MAX_URL}): {url[:60]!r}...")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
            raise ValueError(f"engine URL contains control characters: {url!r}")
        parts = urlsplit(url)
        if parts.scheme == "unix":
            # unix://run/x.sock would name host "run": the path needs the third slash.
            if parts.netloc or not parts.path.startswith("/"):
                raise ValueError(
                    f"a unix socket URL needs an absolute socket path, as in "
                    f"unix:///run/podman/podman.sock: {url!r}")
            if len(parts.path.encode()) > _MAX_SOCKET_PATH:
                raise ValueError(f"unix socket path is too long for the system "
                                 f"({len(parts.path.encode())} bytes; at most "
                                 f"{_MAX_SOCKET_PATH}): {url!r}")
            return cls(url=url, scheme="unix", socket_path=parts.path, tls=tls)
        if parts.scheme in ("tcp", "http", "https", "h3"):
            if not parts.hostname:
                raise ValueError(f"endpoint has no host: {url!r}")
            _check_host(parts.hostname, url)
            try:
                port = parts.port
            except ValueError as exc:
                raise ValueError(f"endpoint has an invalid port: {url!r}") from exc
            if port == 0:
                raise ValueError(f"endpoint has an invalid port: {url!r}")
            secure = parts.scheme in ("https", "h3") or tls is not None
            if port is None:
                port = 2376 if secure else 2375
            scheme: Scheme = "h3" if parts.scheme == "h3" else "https" if secure else "tcp"
            return cls(url=url, scheme=scheme, host=parts.hostname,
                       port=port, tls=tls or (TLSConfig() if secure else None),
                       path=parts.path.rstrip("/"))
        raise ValueError(
            f"unsupported engine URL {url!r}: use unix:///path.sock, tcp://host:port, "
            "https://host:port or h3://host:port"
        )

    @property
    def host_header(self) -> str:
        """The ``Host`` header to send: the TCP authority, or a placeholder for sockets."""
        return f"{self.host}:{self.port}" if self.host else "localhost"

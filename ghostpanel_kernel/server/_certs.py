"""The agent's TLS certificate: self-signed on first run, kept, and its fingerprint.

A self-signed certificate is what an agent on a fresh host can have without a CA;
clients pin it (``--tls-ca`` with the certificate file, or ``--fingerprint``), so it is
made once and kept: a new one at every start would break every pinned client.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import re
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CERT_NAME", "KEY_NAME", "ensure_self_signed", "fingerprint", "subject_names"]

CERT_NAME = "agent.crt"
KEY_NAME = "agent.key"
#: How long a self-signed certificate is valid; it is renewed at a start after that.
_VALIDITY = datetime.timedelta(days=825)


def subject_names(listen_host: str) -> list[str]:
    """The names the certificate is made for: the listen host, loopback in both
    families, ``localhost`` and this machine's host name, without duplicates."""
    names = [listen_host, "127.0.0.1", "::1", "localhost", socket.gethostname()]
    unspecified = {"", "0.0.0.0", "::"}  # a bind-all address names no host
    seen: list[str] = []
    for name in names:
        if name not in unspecified and name not in seen:
            seen.append(name)
    return seen


def _general_names(names: Iterable[str]) -> list[object]:
    from cryptography import x509

    general: list[object] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return general


def _still_valid(cert_path: Path, names: list[str]) -> bool:
    """Whether the kept certificate has not expired and covers ``names``.

    Answered from the note :func:`_write_note` left beside the certificate when it made
    it, when the note describes this very certificate (same fingerprint): reading the
    certificate itself needs ``cryptography``, whose extension (with its own OpenSSL)
    is about 8 MB of resident memory that an agent serving HTTPS never needs otherwise
    (the agent's budget is 50 MB). A certificate without a matching note (made by an
    older agent, or put there by hand) is read with ``cryptography``, and noted.
    """
    try:
        seen = fingerprint(cert_path)
        note = json.loads(_note_path(cert_path).read_text(encoding="utf-8"))
        if note.get("fingerprint") == seen:
            not_after = datetime.datetime.fromisoformat(note["not_after"])
            covered = {_normal_name(name) for name in note["names"]}
            return not_after > datetime.datetime.now(datetime.UTC) and all(
                _normal_name(name) in covered for name in names)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no usable note: read the certificate
    return _still_valid_read(cert_path, names)


def _normal_name(name: str) -> str:
    """An address in one spelling (``::1`` and ``0:0::1`` are one), a DNS name as is."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def _note_path(cert_path: Path) -> Path:
    return cert_path.with_name(cert_path.name + ".json")


def _write_note(cert_path: Path, names: list[str], not_after: datetime.datetime) -> None:
    """Record what :func:`_still_valid` needs to know about ``cert_path``."""
    note = {"fingerprint": fingerprint(cert_path), "names": names,
            "not_after": not_after.astimezone(datetime.UTC).isoformat()}
    _write_new(_note_path(cert_path), json.dumps(note).encode(), mode=0o644)


def _still_valid_read(cert_path: Path, names: list[str]) -> bool:
    """:func:`_still_valid` from the certificate itself (``cryptography``)."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        covered = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    now = datetime.datetime.now(datetime.UTC)
    wanted = _general_names(names)
    valid = cert.not_valid_after_utc > now and all(name in covered for name in wanted)
    if valid:
        with contextlib.suppress(OSError):
            # Everything it covers, so that a later start asks the note, not cryptography.
            _write_note(cert_path, [str(getattr(name, "value", name)) for name in covered],
                        cert.not_valid_after_utc)
    return valid


def ensure_self_signed(directory: Path, listen_host: str) -> tuple[Path, Path]:
    """The self-signed certificate and key in ``directory``, made when missing.

    A kept certificate is reused as long as it is valid and names ``listen_host``;
    otherwise a new key and certificate replace it. The key is written with mode 0600
    from its creation (never readable by others, even for a moment).

    Parameters
    ----------
    directory
        Where ``agent.crt`` and ``agent.key`` live (created with mode 0700).
    listen_host
        The address the agent listens on; a SAN besides loopback, ``localhost`` and
        the host name.

    Returns
    -------
    (Path, Path)
        The certificate and the key.
    """
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    names = subject_names(listen_host)
    if key_path.exists() and _still_valid(cert_path, names):
        return cert_path, key_path
    # Imported only to make one: see _still_valid.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ghostpanel agent"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, names[-1])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks a little behind
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)),  # type: ignore[arg-type]
                       critical=False)
        # A CA for itself: clients load it as the trust anchor (--tlscacert).
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    # Written to temporary names and renamed: a crash never leaves a key without its
    # certificate, nor a half-written file that the next start would take as valid.
    _write_new(key_path, key_bytes, mode=0o600)
    _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    _write_note(cert_path, names, now + _VALIDITY)
    return cert_path, key_path


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def fingerprint(cert_path: Path) -> str:
    """The SHA-256 fingerprint of the (first) certificate in a PEM file, as
    colon-separated upper-case hex pairs (the form ``openssl x509 -fingerprint`` and
    browsers show).

    Examples
    --------
    >>> fingerprint(Path("agent.crt"))          # doctest: +SKIP
    'AB:CD:...'
    """
    # The standard library's decoding, not cryptography's: see _still_valid.
    text = cert_path.read_text(encoding="ascii", errors="replace")
    block = _PEM_CERTIFICATE.search(text)
    if block is None:
        raise ValueError(f"{cert_path} holds no PEM certificate")
    der = ssl.PEM_cert_to_DER_cert(block.group(0))
    return hashlib.sha256(der).digest().hex(":").upper()


#: The first certificate of a PEM file (a chain, or text around it, may follow).
_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?"
                              r"-----END CERTIFICATE-----")

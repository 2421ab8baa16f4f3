"""A throwaway PKI for tests: CAs, a server certificate and client certificates.

Made with the ``openssl`` CLI (the project has no Python crypto dependency) in a
temporary folder; nothing here is ever committed or used outside a test session.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["copy_client_files", "make_test_pki"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
             cwd=directory)


def _make_signed(directory: Path, name: str, ca: str, *, server: bool) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
    ext = directory / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" if server
                   else "extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "1", "-extfile", ext.name, "-out", f"{name}.pem",
             cwd=directory)


def make_test_pki(directory: Path) -> Path:
    """Fill ``directory`` with ``ca``, ``other-ca``, ``server`` (for 127.0.0.1, signed by
    ``ca``), ``client`` (signed by ``ca``) and ``stranger`` (signed by ``other-ca``), each
    as ``NAME.pem`` and ``NAME.key``; return ``directory``."""
    _make_ca(directory, "ca")
    _make_ca(directory, "other-ca")
    _make_signed(directory, "server", "ca", server=True)
    _make_signed(directory, "client", "ca", server=False)
    _make_signed(directory, "stranger", "other-ca", server=False)
    return directory


def copy_client_files(pki: Path, into: Path) -> tuple[Path, Path, Path]:
    """Copy the CA and the client's certificate and key into ``into`` as ``ca.pem``,
    ``cert.pem`` and ``key.pem`` (Docker's names), for a test that moves or deletes them.
    """
    into.mkdir(parents=True, exist_ok=True)
    copies = (into / "ca.pem", into / "cert.pem", into / "key.pem")
    for source, target in zip(("ca.pem", "client.pem", "client.key"), copies, strict=True):
        shutil.copyfile(pki / source, target)
    return copies

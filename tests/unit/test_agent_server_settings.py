"""The agent's settings (listen addresses, its home) and its self-signed certificate."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from ghostpanel_kernel.server._certs import ensure_self_signed, fingerprint, subject_names
from ghostpanel_kernel.server._serve import hypercorn_config
from ghostpanel_kernel.server._settings import AgentSettings, parse_listen
from ghostpanel_kernel.store import data_dir, database_url

ENGINE = "unix:///run/podman/podman.sock"


@pytest.mark.parametrize(("listen", "parsed"), [
    ("127.0.0.1:9443", ("127.0.0.1", 9443)),
    ("0.0.0.0:1", ("0.0.0.0", 1)),
    ("[::1]:9443", ("::1", 9443)),
    ("agent.example:443", ("agent.example", 443)),
    ("unix:///run/gp/agent.sock", Path("/run/gp/agent.sock")),
])
def test_listen_addresses(listen: str, parsed: object) -> None:
    assert parse_listen(listen) == parsed


@pytest.mark.parametrize("listen", ["nowhere", ":9443", "host:0", "host:70000", "::1:9443",
                                    "[nope]:1", "unix://relative.sock", "host:port"])
def test_bad_listen_addresses(listen: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(listen)


def test_settings_checks() -> None:
    with pytest.raises(ValueError, match="both"):
        AgentSettings(engine_url=ENGINE, cert_file=Path("c.pem"))
    with pytest.raises(ValueError, match="unix listen"):
        AgentSettings(engine_url=ENGINE, listen="unix:///a.sock", quic_bind="127.0.0.1:1")
    settings = AgentSettings(engine_url=ENGINE, listen="[::1]:9443", home=Path("/h"))
    assert settings.url == "https://[::1]:9443" and settings.http3_bind == "[::1]:9443"
    assert settings.tls_dir == Path("/h/agent/tls")
    unix = AgentSettings(engine_url=ENGINE, listen="unix:///a.sock")
    assert unix.url == "unix:///a.sock" and unix.http3_bind is None and unix.port == 0


@pytest.mark.parametrize("home", [None, "relative-home"])
def test_home_and_store_match_the_store_module(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path, home: str | None) -> None:
    # _settings does without importing the store (SQLAlchemy): it must agree with it.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GHOSTPANEL_DATABASE_URL", raising=False)
    if home is None:
        monkeypatch.delenv("GHOSTPANEL_HOME", raising=False)
    else:
        monkeypatch.setenv("GHOSTPANEL_HOME", home)
    settings = AgentSettings(engine_url=ENGINE)
    assert settings.home == data_dir()
    assert settings.store_url == database_url()
    monkeypatch.setenv("GHOSTPANEL_DATABASE_URL", "postgresql+psycopg://h/db")
    assert AgentSettings(engine_url=ENGINE).store_url == database_url()


def test_tls_is_1_3_only_and_client_certificates_are_required_with_a_ca(
        tmp_path: Path) -> None:
    settings = AgentSettings(engine_url=ENGINE, listen="127.0.0.1:9443", home=tmp_path)
    config = hypercorn_config(settings)
    context = config.create_ssl_context()
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_NONE
    assert config.quic_bind == ["127.0.0.1:9443"] and not config.insecure_bind
    ca = tmp_path / "agent" / "tls" / "agent.crt"  # any CA file will do here
    with_ca = hypercorn_config(AgentSettings(engine_url=ENGINE, listen="127.0.0.1:9443",
                                             home=tmp_path, client_ca=ca))
    ca_context = with_ca.create_ssl_context()
    assert ca_context is not None and ca_context.verify_mode == ssl.CERT_REQUIRED
    unix = hypercorn_config(AgentSettings(engine_url=ENGINE, listen="unix:///x/a.sock",
                                          home=tmp_path))
    assert unix.bind == ["unix:/x/a.sock"] and not unix.ssl_enabled and not unix.quic_bind


def test_the_self_signed_certificate(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    cert, key = ensure_self_signed(directory, "10.1.2.3")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    addresses = {str(address) for address in names.get_values_for_type(x509.IPAddress)}
    assert {"10.1.2.3", "127.0.0.1", "::1"} <= addresses
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    # The fingerprint is the SHA-256 of the DER certificate, as openssl shows it.
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert fingerprint(cert).replace(":", "") == hashlib.sha256(der).hexdigest().upper()
    # Kept while it covers the listen host; remade when the host is a new one.
    first = fingerprint(cert)
    assert fingerprint(ensure_self_signed(directory, "10.1.2.3")[0]) == first
    assert fingerprint(ensure_self_signed(directory, "127.0.0.1")[0]) == first
    second = fingerprint(ensure_self_signed(directory, "10.9.9.9")[0])
    assert second != first
    # A certificate whose key is gone is remade too.
    os.unlink(key)
    assert fingerprint(ensure_self_signed(directory, "10.9.9.9")[0]) not in (first, second)


def test_a_kept_certificate_is_reused_without_cryptography(tmp_path: Path) -> None:
    """cryptography's extension is ~8 MB of the agent's 50 MB: a restart that keeps the
    certificate must not load it (the note beside the certificate answers)."""
    directory = tmp_path / "tls"
    cert, _ = ensure_self_signed(directory, "10.1.2.3")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ghostpanel_kernel.server._certs import ensure_self_signed, fingerprint\n"
        f"cert, _ = ensure_self_signed(Path({str(directory)!r}), '10.1.2.3')\n"
        "print(fingerprint(cert))\n"
        "print(sorted(m for m in sys.modules if m.startswith('cryptography'))[:1])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.splitlines() == [fingerprint(cert), "[]"]


def test_a_certificate_the_note_does_not_describe_is_read(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    cert, _ = ensure_self_signed(directory, "10.1.2.3")
    note = cert.with_name(cert.name + ".json")
    first = fingerprint(cert)
    # A note that lies about the expiry of *this* certificate is believed (it is the
    # agent's own, in a 0700 folder)...
    data = json.loads(note.read_text())
    data["not_after"] = "2000-01-01T00:00:00+00:00"
    note.write_text(json.dumps(data))
    assert fingerprint(ensure_self_signed(directory, "10.1.2.3")[0]) != first
    # ...but one about another certificate is not: the certificate itself is read, and
    # the note made anew from it.
    second = fingerprint(cert)
    data = json.loads(note.read_text())
    assert data["fingerprint"] == second
    data["fingerprint"] = first
    note.write_text(json.dumps(data))
    assert fingerprint(ensure_self_signed(directory, "10.1.2.3")[0]) == second
    assert json.loads(note.read_text())["fingerprint"] == second
    note.unlink()  # made by an older agent: read, kept, noted
    assert fingerprint(ensure_self_signed(directory, "::1")[0]) == second
    assert note.exists()


def test_the_fingerprint_of_a_chain_file_is_its_first_certificate(tmp_path: Path,
                                                                  test_pki: Path) -> None:
    chain = tmp_path / "chain.pem"
    server = (test_pki / "server.pem").read_text()
    chain.write_text("Bag Attributes: text before\n" + server
                     + (test_pki / "ca.pem").read_text())
    der = ssl.PEM_cert_to_DER_cert(server.strip())
    assert fingerprint(chain) == hashlib.sha256(der).digest().hex(":").upper()


def test_bind_all_addresses_name_no_host() -> None:
    assert "0.0.0.0" not in subject_names("0.0.0.0")
    assert "::" not in subject_names("::")

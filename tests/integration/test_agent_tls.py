"""The agent's TLS: 1.3 only, no plaintext listener, its kept self-signed certificate,
a certificate of the operator's own, and client certificates with ``--client-ca``."""

from __future__ import annotations

import os
import socket
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from ghostpanel_kernel.server._certs import fingerprint
from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401

pytestmark = pytest.mark.integration


def _handshake(agent: RunningAgent, context: ssl.SSLContext) -> str | None:
    with socket.create_connection(("127.0.0.1", agent.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.version()


def test_tls_1_3_is_spoken_and_1_2_refused(agent: RunningAgent) -> None:
    assert _handshake(agent, agent.ssl_context()) == "TLSv1.3"
    old = agent.ssl_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):  # the server ends the handshake (an EOF, here)
        _handshake(agent, old)


def test_there_is_no_plaintext_listener(agent: RunningAgent) -> None:
    with socket.create_connection(("127.0.0.1", agent.port), timeout=10) as raw:
        raw.sendall(b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    assert b"HTTP/1." not in answer and b"OK" not in answer


def test_answers_advertise_http3_on_the_same_port(agent: RunningAgent) -> None:
    with agent.client() as http:
        response = http.get("/api/v1/health")
    assert response.http_version in ("HTTP/1.1", "HTTP/2")
    assert f'h3=":{agent.port}"' in response.headers["alt-svc"]


def test_the_self_signed_certificate_is_kept_across_restarts(agent: RunningAgent) -> None:
    first = agent.fingerprint
    assert first is not None and first == fingerprint(agent.ca_cert)
    key = agent.ca_cert.with_name("agent.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(agent.ca_cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", socket.gethostname()} <= set(names.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "::1"} <= {str(address) for address in
                                    names.get_values_for_type(x509.IPAddress)}
    agent.restart()
    assert agent.fingerprint == first
    with agent.client() as http:  # a client that pinned the certificate still connects
        assert http.get("/api/v1/health").status_code == 200


def test_a_certificate_of_ones_own(agent_factory: Callable[..., RunningAgent],
                                   test_pki: Path) -> None:
    running = agent_factory(extra_args=["--cert", str(test_pki / "server.pem"),
                                        "--key", str(test_pki / "server.key")],
                            server_ca=test_pki / "ca.pem")
    assert running.fingerprint == fingerprint(test_pki / "server.pem")
    assert not (running.home / "agent" / "tls").exists()  # nothing self-signed made
    with running.client() as http:
        assert http.get("/api/v1/health").status_code == 200


def test_client_certificates_with_client_ca(agent_factory: Callable[..., RunningAgent],
                                            test_pki: Path) -> None:
    running = agent_factory(extra_args=["--client-ca", str(test_pki / "ca.pem")])
    client = (test_pki / "client.pem", test_pki / "client.key")
    with running.client(token=False, client_cert=client) as http:
        assert http.get("/api/v1/health").status_code == 200  # no token needed
    stranger = (test_pki / "stranger.pem", test_pki / "stranger.key")
    for refused in (stranger, None):
        with running.client(client_cert=refused) as http, \
                pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            http.get("/api/v1/health")


def test_key_file_is_never_readable_by_others(agent: RunningAgent) -> None:
    tls_dir = agent.ca_cert.parent
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    assert not os.access(tls_dir / "agent.key", os.R_OK) or os.geteuid() == \
        (tls_dir / "agent.key").stat().st_uid

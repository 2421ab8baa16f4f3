"""Find the engine on this machine: the ``local`` environment nobody had to register.

Detection runs from synchronous code (``connect()``), and often inside Jupyter's running
event loop, where ``asyncio.run`` is not allowed. So it probes with blocking stdlib
sockets, each bounded by a short timeout, and skips a socket file that is absent without
trying it: on a machine with no engine the whole detection costs a few ``stat`` calls
and one refused connection to ``127.0.0.1:2375``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..engine import Endpoint, TLSConfig
from ._spec import EnvironmentSpec

__all__ = ["BOLT_COMPAT_URL", "detect_local", "local_candidates"]

#: Where Bolt serves its Docker-compatible API when it has no socket file.
BOLT_COMPAT_URL = "tcp://127.0.0.1:2375"

_DETECTED_LABELS = {"detected": "true"}
_PING_REQUEST = b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def _docker_tls() -> TLSConfig | None:
    """The TLS settings Docker's CLI would use with ``$DOCKER_HOST``, if any."""
    # Docker treats any non-empty DOCKER_TLS_VERIFY as "on", and reads ca.pem, cert.pem
    # and key.pem from DOCKER_CERT_PATH (default ~/.docker).
    if not os.environ.get("DOCKER_TLS_VERIFY"):
        return None
    cert_dir = Path(os.environ.get("DOCKER_CERT_PATH") or "~/.docker").expanduser()
    ca, cert, key = (cert_dir / "ca.pem", cert_dir / "cert.pem", cert_dir / "key.pem")
    has_client = cert.exists() and key.exists()
    return TLSConfig(ca_cert=str(ca) if ca.exists() else None,
                     client_cert=str(cert) if has_client else None,
                     client_key=str(key) if has_client else None)


def local_candidates() -> list[EnvironmentSpec]:
    """The endpoints :func:`detect_local` tries, in order, as ``local`` specs.

    ``$DOCKER_HOST`` (with Docker's ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``),
    ``$CONTAINER_HOST``, rootful Podman (``/run/podman/podman.sock``), rootless Podman
    (``$XDG_RUNTIME_DIR/podman/podman.sock``), Docker (``/var/run/docker.sock``), then
    Bolt's compatibility port (``tcp://127.0.0.1:2375``). Duplicates are dropped.

    Examples
    --------
    >>> [spec.url for spec in local_candidates()]       # doctest: +SKIP
    ['unix:///run/podman/podman.sock', 'unix:///run/user/1000/podman/podman.sock',
     'unix:///var/run/docker.sock', 'tcp://127.0.0.1:2375']
    """
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    found: list[tuple[str, TLSConfig | None]] = []
    if docker_host := os.environ.get("DOCKER_HOST"):
        found.append((docker_host, _docker_tls()))
    if container_host := os.environ.get("CONTAINER_HOST"):
        found.append((container_host, None))
    found += [
        ("unix:///run/podman/podman.sock", None),
        (f"unix://{runtime_dir}/podman/podman.sock", None),
        ("unix:///var/run/docker.sock", None),
        (BOLT_COMPAT_URL, None),
    ]
    seen: set[str] = set()
    candidates = []
    for url, tls in found:
        if url not in seen:
            seen.add(url)
            candidates.append(EnvironmentSpec("local", url, tls=tls,
                                              labels=_DETECTED_LABELS, detected=True))
    return candidates


def detect_local(*, timeout: float = 0.5,
                 candidates: Sequence[EnvironmentSpec] | None = None) -> EnvironmentSpec | None:
    """The first local engine that answers ``GET /_ping``, or None.

    Synchronous and safe to call inside a running event loop. A candidate whose socket
    file is missing is skipped without connecting; one that refuses, is not an engine,
    or stays silent for ``timeout`` seconds is skipped too.

    Parameters
    ----------
    timeout
        Seconds one candidate may take (connect, send, first line of the answer).
    candidates
        Specs to try in order; :func:`local_candidates` when None.

    Returns
    -------
    EnvironmentSpec or None
        The answering candidate, named ``local``, labelled ``{"detected": "true"}``.

    Examples
    --------
    >>> spec = detect_local()       # doctest: +SKIP
    >>> spec.url if spec else "no engine here"      # doctest: +SKIP
    'unix:///run/podman/podman.sock'
    """
    for spec in local_candidates() if candidates is None else candidates:
        try:
            endpoint = Endpoint.parse(spec.url, tls=spec.tls)
        except ValueError:
            continue  # ssh://, npipe://...: not something this probe can reach
        if _answers_ping(endpoint, timeout=timeout):
            return spec
    return None


def _answers_ping(endpoint: Endpoint, *, timeout: float) -> bool:
    """Whether ``endpoint`` answers ``/_ping`` with HTTP 200 within ``timeout`` seconds."""
    if endpoint.socket_path is not None:
        try:
            if not stat.S_ISSOCK(os.stat(endpoint.socket_path).st_mode):
                return False
        except OSError:  # absent, or a directory we may not enter
            return False
    deadline = time.monotonic() + timeout
    try:
        with _open_socket(endpoint, deadline) as sock:
            sock.sendall(_PING_REQUEST)
            head = b""
            while b"\r\n" not in head and len(head) < 1024:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                data = sock.recv(1024)
                if not data:
                    break
                head += data
    except (OSError, ValueError):  # refused, timed out, TLS failure, bad cert files
        return False
    status = head.split(b"\r\n", 1)[0].split(b" ")
    return len(status) >= 2 and status[0].startswith(b"HTTP/1.") and status[1] == b"200"


@contextlib.contextmanager
def _open_socket(endpoint: Endpoint, deadline: float) -> Iterator[socket.socket]:
    if endpoint.socket_path is not None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.connect(endpoint.socket_path)
            yield sock
        return
    assert endpoint.host is not None and endpoint.port is not None
    # Built before connecting: unreadable certificate files end the probe right here.
    context = endpoint.tls.ssl_context() if endpoint.tls is not None else None
    remaining = max(deadline - time.monotonic(), 0.001)
    with socket.create_connection((endpoint.host, endpoint.port), timeout=remaining) as raw:
        if context is None:
            yield raw
            return
        raw.settimeout(max(deadline - time.monotonic(), 0.001))
        with context.wrap_socket(raw, server_hostname=endpoint.host) as secure:
            yield secure

"""Detecting the local engine: real sockets, answered or not, by the unit tests' fake engine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ghostpanel_kernel.engine import TLSConfig
from ghostpanel_kernel.environments import EnvironmentSpec, detect_local, local_candidates
from tests.unit.fake_engine import FakeEngine, Route, empty, serve_on_socket

# An HTTP server that answers 404 to /_ping: listening, but not an engine.
NOT_AN_ENGINE = {("GET", "/_ping"): empty(404)}


def candidate(url: str) -> EnvironmentSpec:
    return EnvironmentSpec("local", url, labels={"detected": "true"}, detected=True)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory short enough for unix socket paths (107 bytes at most)."""
    path = Path(tempfile.mkdtemp(prefix="gp-det-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


@dataclass
class Served:
    """A fake engine answering on a real socket, and its URL."""

    engine: FakeEngine
    url: str

    @property
    def requests(self) -> list[str]:
        """``METHOD path`` of every request it got, in order."""
        return [f"{request.method} {request.url.path}" for request in self.engine.log]


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start fake engines: ``serve(path)`` on a unix socket, ``serve()`` on 127.0.0.1.

    Each runs in a thread; all are shut down, closed and joined after the test.
    """
    with contextlib.ExitStack() as servers:

        def start(path: Path | None = None, *,
                  routes: dict[tuple[str, str], Route] | None = None) -> Served:
            engine = FakeEngine(routes or {})
            return Served(engine, servers.enter_context(serve_on_socket(engine, path)))

        yield start


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_unix_socket_engine_is_detected(short_dir: Path,
                                          serve: Callable[..., Served]) -> None:
    engine = serve(short_dir / "engine.sock")
    found = detect_local(candidates=[candidate(engine.url)])
    assert found == candidate(engine.url)
    assert found is not None and found.labels == {"detected": "true"} and found.detected
    assert engine.requests == ["GET /_ping"]


def test_a_tcp_engine_is_detected(serve: Callable[..., Served]) -> None:
    engine = serve()
    assert detect_local(candidates=[candidate(engine.url)]) == candidate(engine.url)
    assert engine.requests == ["GET /_ping"]


def test_candidates_are_tried_in_order(short_dir: Path,
                                       serve: Callable[..., Served]) -> None:
    first, second = serve(short_dir / "first.sock"), serve(short_dir / "second.sock")
    found = detect_local(candidates=[candidate(second.url), candidate(first.url)])
    assert found is not None and found.url == second.url
    assert first.requests == []  # the first answer ends the search


def test_missing_stale_and_foreign_candidates_are_skipped(
        short_dir: Path, serve: Callable[..., Served]) -> None:
    stale = short_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:  # bound, closed, file left behind
        dead.bind(str(stale))
    assert stale.is_socket()
    regular_file = short_dir / "file.sock"
    regular_file.write_text("not a socket")
    foreign = serve(short_dir / "foreign.sock", routes=NOT_AN_ENGINE)
    engine = serve(short_dir / "engine.sock")

    found = detect_local(candidates=[
        candidate(f"unix://{short_dir}/missing.sock"),
        candidate(f"unix://{stale}"),
        candidate(f"unix://{regular_file}"),
        candidate(foreign.url),
        candidate("ssh://core@host/run/podman/podman.sock"),  # not probed at all
        candidate(engine.url),
    ])
    assert found is not None and found.url == engine.url
    assert foreign.requests == ["GET /_ping"]


def test_nothing_answering_gives_none(short_dir: Path) -> None:
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]  # bound but not listening: refused
        started = time.monotonic()
        found = detect_local(candidates=[candidate(f"unix://{short_dir}/none.sock"),
                                         candidate(f"tcp://127.0.0.1:{port}")])
    assert found is None
    assert time.monotonic() - started < 1.0
    assert detect_local(candidates=[]) is None


def test_a_silent_engine_is_skipped_within_the_timeout(
        silent_listener: int, serve: Callable[..., Served]) -> None:
    engine = serve()
    started = time.monotonic()
    found = detect_local(timeout=0.3, candidates=[
        candidate(f"tcp://127.0.0.1:{silent_listener}"),
        candidate(engine.url),
    ])
    elapsed = time.monotonic() - started
    assert found is not None and found.url == engine.url
    assert 0.25 <= elapsed < 2.0


def test_detection_works_inside_a_running_event_loop(
        short_dir: Path, serve: Callable[..., Served]) -> None:
    engine = serve(short_dir / "engine.sock")

    async def in_loop() -> EnvironmentSpec | None:
        return detect_local(candidates=[candidate(engine.url)])  # as Jupyter would

    found = asyncio.run(in_loop())
    assert found is not None and found.url == engine.url


def test_default_candidates_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DOCKER_HOST", "CONTAINER_HOST", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/4242")
    assert [spec.url for spec in local_candidates()] == [
        "unix:///run/podman/podman.sock",
        "unix:///run/user/4242/podman/podman.sock",
        "unix:///var/run/docker.sock",
        "tcp://127.0.0.1:2375",
    ]
    assert all(spec.name == "local" and spec.detected and spec.labels == {"detected": "true"}
               for spec in local_candidates())

    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    monkeypatch.setenv("CONTAINER_HOST", "unix:///var/run/docker.sock")  # a duplicate
    assert [spec.url for spec in local_candidates()] == [
        "tcp://10.0.0.5:2375",
        "unix:///var/run/docker.sock",
        "unix:///run/podman/podman.sock",
        "unix:///run/user/4242/podman/podman.sock",
        "tcp://127.0.0.1:2375",
    ]


def test_rootless_socket_without_xdg_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    urls = [spec.url for spec in local_candidates()]
    assert f"unix:///run/user/{os.getuid()}/podman/podman.sock" in urls


def test_docker_host_takes_docker_tls_settings(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("PEM")
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.9:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    first = local_candidates()[0]
    assert first.url == "tcp://10.0.0.9:2376"
    assert first.tls == TLSConfig(ca_cert=str(tmp_path / "ca.pem"),
                                  client_cert=str(tmp_path / "cert.pem"),
                                  client_key=str(tmp_path / "key.pem"))

    monkeypatch.delenv("DOCKER_TLS_VERIFY")
    assert local_candidates()[0].tls is None


def test_unreadable_tls_files_skip_the_candidate(tmp_path: Path,
                                                 serve: Callable[..., Served]) -> None:
    engine = serve()
    broken = EnvironmentSpec("local", engine.url,
                             tls=TLSConfig(ca_cert=str(tmp_path / "missing-ca.pem")),
                             detected=True)
    assert detect_local(candidates=[broken]) is None
    assert engine.requests == []  # given up before connecting

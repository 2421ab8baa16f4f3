"""Fixtures shared by every test: an isolated environment and real Podman engines.

Engines are private ``podman system service`` processes, each with its own storage
under a short ``/tmp/gp-*`` directory (a unix socket path must fit in 107 bytes), so
that tests never see the host's containers, nor the host's engine theirs:

- ``podman_engine`` and ``podman_engine_b`` live for the whole session: two "hosts"
  for the multi-environment tests, each with ``localhost/busybox:latest``;
- ``extra_podman_engine`` starts throwaway engines that a test may kill mid-stream.

Tests remove the containers they create; teardown removes whatever is left, stops the
engines and checks that nothing stays mounted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ghostpanel_kernel.engine.podman_service import (
    PodmanService,
    build_busybox_archive,
    mounts_under,
)

# Variables that would point a client, or the podman CLI, at the developer's engine.
_ENGINE_VARIABLES = (
    "CONTAINER_CONNECTION",
    "CONTAINER_HOST",
    "DOCKER_CERT_PATH",
    "DOCKER_CONTEXT",
    "DOCKER_HOST",
    "DOCKER_TLS_VERIFY",
)

_SETUP_HINT = "run `make test` as root from the repository root: it installs what is missing"

_environment = pytest.MonkeyPatch()


def pytest_configure(config: pytest.Config) -> None:
    """Isolate the whole session from the user's GhostPanel data and engine settings."""
    home = tempfile.mkdtemp(prefix="gp-home-")
    _environment.setenv("GHOSTPANEL_HOME", home)
    for name in _ENGINE_VARIABLES:
        _environment.delenv(name, raising=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = os.environ.get("GHOSTPANEL_HOME")
    _environment.undo()
    if home is not None and Path(home).name.startswith("gp-home-"):
        shutil.rmtree(home)


def _require_podman() -> None:
    if shutil.which("podman") is None:
        pytest.fail(f"podman is not installed: {_SETUP_HINT}", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail(
            "the integration tests start private rootful Podman engines: run them as root "
            f"({_SETUP_HINT})",
            pytrace=False,
        )


def _processes_using(base_dir: Path) -> list[str]:
    """Command lines that name ``base_dir``: the service, conmon, ``container cleanup``."""
    needle = os.fsencode(base_dir) + b"/"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:  # the process ended while we looked
                continue
            if needle in command:
                words = command.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name}: {words}")
    return found


def _dispose(engine: PodmanService) -> None:
    """Remove everything the engine holds, stop it, check nothing is left, delete it."""
    try:
        engine.reset()
    finally:
        engine.stop()
    # conmon runs `podman container cleanup` when a container exits; give it time to end.
    deadline = time.monotonic() + 10
    while (left := _processes_using(engine.base_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes of {engine.base_dir} outlived the engine: {left}"
    # Never delete through a mount point: reset() has unmounted, this makes sure.
    mounted = mounts_under(engine.base_dir)
    assert not mounted, f"still mounted under {engine.base_dir}: {mounted}"
    shutil.rmtree(engine.base_dir)


def _start_engine(archive: Path | None) -> PodmanService:
    _require_podman()
    engine = PodmanService(Path(tempfile.mkdtemp(prefix="gp-", dir="/tmp")))
    try:
        engine.start()
        if archive is not None:
            engine.import_image(archive)
    except BaseException:
        _dispose(engine)
        raise
    return engine


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox rootfs tarball, built once per session from the host's busybox."""
    try:
        return build_busybox_archive(tmp_path_factory.mktemp("busybox") / "busybox.tar")
    except RuntimeError as error:
        pytest.fail(f"{error} ({_SETUP_HINT})", pytrace=False)


@pytest.fixture(scope="session")
def podman_engine(busybox_archive: Path) -> Iterator[PodmanService]:
    """A private Podman engine for the session, with ``localhost/busybox:latest``."""
    engine = _start_engine(busybox_archive)
    yield engine
    _dispose(engine)


@pytest.fixture(scope="session")
def podman_engine_b(busybox_archive: Path) -> Iterator[PodmanService]:
    """A second, separate engine (another "host"), with ``localhost/busybox:latest``."""
    engine = _start_engine(busybox_archive)
    yield engine
    _dispose(engine)


@pytest.fixture
def engine_url(podman_engine: PodmanService) -> str:
    """The session engine's address, ``unix:///tmp/gp-.../podman.sock``."""
    return podman_engine.url


@pytest.fixture
def extra_podman_engine(busybox_archive: Path) -> Iterator[Callable[..., PodmanService]]:
    """Start throwaway engines, for tests that kill or stop an engine.

    Call it as ``extra_podman_engine()`` for an engine with the busybox image, or
    ``extra_podman_engine(import_busybox=False)`` for an empty one. Each engine is
    reset, stopped and deleted after the test, whatever the test did to it.
    """
    with contextlib.ExitStack() as teardown:

        def start(*, import_busybox: bool = True) -> PodmanService:
            engine = _start_engine(busybox_archive if import_busybox else None)
            teardown.callback(_dispose, engine)
            return engine

        yield start

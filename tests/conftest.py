"""Fixtures shared by every test: an isolated environment and real Podman engines.

Engines are private ``podman system service`` processes, each with its own storage
under a short ``/tmp/gp-*`` directory (a unix socket path must fit in 107 bytes), so
that tests never see the host's containers, nor the host's engine theirs:

- ``podman_engine`` and ``podman_engine_b`` live for the whole session: two "hosts"
  for the multi-environment tests, each with ``localhost/busybox:latest``;
- ``extra_podman_engine`` starts throwaway engines that a test may kill mid-stream.

Tests remove the containers they create; teardown removes whatever is left, stops the
engines and checks that nothing stays mounted.

Pulls need a registry, and none is reachable from here: ``image_registry`` is a private
``docker-registry`` (Debian's Distribution 2.8) on a free loopback port, with a slow door
(a relay that passes its answers at a set rate) so that a pull lasts long enough for
the engine to report its bytes. ``podman_engine`` trusts both over plain HTTP; the
registry starts before it because Podman reads registries.conf once, at its first pull
or short-name lookup. ``registry_images`` pushes the images to pull, from
``podman_engine``, only for the tests that ask for them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.certificates import make_test_pki
from tests.image_registry import (
    REGISTRY_COMMAND,
    ImageRegistry,
    RegistryImages,
    payload_archive,
)
from tests.orphans import claim, processes_using, sweep_orphans
from tests.podman_service import (
    BUSYBOX_REFERENCE,
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
    """Isolate the whole session from the user's GhostPanel data and engine settings,
    and remove what killed sessions left running (see ``tests/orphans.py``)."""
    home = os.fspath(claim(Path(tempfile.mkdtemp(prefix="gp-home-", dir="/tmp"))))
    _environment.setenv("GHOSTPANEL_HOME", home)
    for name in _ENGINE_VARIABLES:
        _environment.delenv(name, raising=False)
    removed, failures = sweep_orphans()
    for line in [f"removed {path}, left by a killed test session" for path in removed] + [
            f"could not remove what a killed test session left: {why}" for why in failures]:
        print(f"conftest: {line}", file=sys.stderr)


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


def _dispose(engine: PodmanService) -> None:
    """Remove everything the engine holds, stop it, check nothing is left, delete it."""
    try:
        engine.reset()
    finally:
        engine.stop()
    # conmon runs `podman container cleanup` when a container exits; give it time to end.
    deadline = time.monotonic() + 10
    while (left := processes_using(engine.base_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes of {engine.base_dir} outlived the engine: {left}"
    # Never delete through a mount point: reset() has unmounted, this makes sure.
    mounted = mounts_under(engine.base_dir)
    assert not mounted, f"still mounted under {engine.base_dir}: {mounted}"
    shutil.rmtree(engine.base_dir)


def _start_engine(archive: Path | None, *,
                  insecure_registries: tuple[str, ...] = ()) -> PodmanService:
    _require_podman()
    engine = PodmanService(claim(Path(tempfile.mkdtemp(prefix="gp-", dir="/tmp"))),
                           insecure_registries=insecure_registries)
    try:
        engine.start()
        if archive is not None:
            engine.import_image(archive)
    except BaseException:
        _dispose(engine)
        raise
    return engine


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway PKI for the session (see :func:`tests.certificates.make_test_pki`)."""
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox rootfs tarball, built once per session from the host's busybox."""
    try:
        return build_busybox_archive(tmp_path_factory.mktemp("busybox") / "busybox.tar")
    except RuntimeError as error:
        pytest.fail(f"{error} ({_SETUP_HINT})", pytrace=False)


@pytest.fixture(scope="session")
def podman_engine(busybox_archive: Path,
                  image_registry: ImageRegistry) -> Iterator[PodmanService]:
    """A private Podman engine for the session, with ``localhost/busybox:latest``; it
    pulls from ``image_registry`` (both doors) over plain HTTP."""
    engine = _start_engine(busybox_archive, insecure_registries=image_registry.locations)
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


# -- a private image registry --------------------------------------------------------

def _require_registry() -> None:
    if shutil.which(REGISTRY_COMMAND) is None:
        pytest.fail(f"{REGISTRY_COMMAND} is not installed (Debian package docker-registry): "
                    f"run scripts/setup.sh as root ({_SETUP_HINT})", pytrace=False)


@pytest.fixture(scope="session")
def image_registry() -> Iterator[ImageRegistry]:
    """A private registry on loopback for the session, empty (``registry_images`` fills
    it). Starting it costs about 0.1 s."""
    _require_registry()
    registry = ImageRegistry(claim(Path(tempfile.mkdtemp(prefix="gp-registry-", dir="/tmp"))))
    try:
        registry.start()
    except BaseException:
        registry.stop()
        raise
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def registry_images(image_registry: ImageRegistry, podman_engine: PodmanService,
                    tmp_path_factory: pytest.TempPathFactory) -> RegistryImages:
    """Push the demo image and a payload image into ``image_registry``, from
    ``podman_engine``, which keeps no copy of the payload's layer."""
    busybox, payload, size = "ghostpanel/busybox:latest", "ghostpanel/payload:latest", 3 << 20
    image_registry.push(podman_engine, BUSYBOX_REFERENCE, busybox)
    archive = payload_archive(tmp_path_factory.mktemp("payload") / "payload.tar", size)
    staged = f"localhost/gp-payload-{secrets.token_hex(4)}:latest"
    podman_engine.import_image(archive, staged, changes=())
    try:
        image_registry.push(podman_engine, staged, payload)
    finally:
        podman_engine.podman("rmi", staged)
    archive.unlink()
    return RegistryImages(image_registry, busybox, payload, size)

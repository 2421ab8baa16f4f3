"""The private Podman engines the test suite runs on, checked against a real Podman."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.podman_service import (
    BUSYBOX_REFERENCE,
    PodmanService,
    build_busybox_archive,
)

pytestmark = pytest.mark.integration


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _mount_points_under(base: Path) -> list[str]:
    """Read /proc/mounts directly, independently of the module under test."""
    root = os.path.realpath(base)
    with open("/proc/mounts", encoding="utf-8") as table:
        points = [line.split()[1].replace("\\040", " ") for line in table]
    return [point for point in points if point == root or point.startswith(root + "/")]


def _container_names(engine: PodmanService) -> set[str]:
    status, body = engine.api_get("/v1.41/containers/json?all=1")
    assert status == 200, body
    return {name.lstrip("/") for container in json.loads(body) for name in container["Names"]}


def _network_names(engine: PodmanService) -> set[str]:
    status, body = engine.api_get("/v1.41/networks")
    assert status == 200, body
    return {network["Name"] for network in json.loads(body)}


def _events_naming(engine: PodmanService, name: str, since: int) -> list[str]:
    status, body = engine.api_get(f"/v1.41/events?since={since}&stream=false")
    assert status == 200, body
    events = [json.loads(line) for line in body.splitlines() if line.strip()]
    return [
        event["Action"]
        for event in events
        if event.get("Actor", {}).get("Attributes", {}).get("name") == name
    ]


def test_engine_url_is_the_session_engine_socket(
    engine_url: str, podman_engine: PodmanService
) -> None:
    assert engine_url == f"unix://{podman_engine.socket_path}"
    assert engine_url.startswith("unix:///tmp/gp-")
    assert podman_engine.ping()


def test_two_engines_are_separate(
    podman_engine: PodmanService, podman_engine_b: PodmanService
) -> None:
    assert podman_engine.socket_path != podman_engine_b.socket_path
    container, network = _unique("gp-sep"), _unique("gp-sep-net")
    since = int(time.time()) - 1
    podman_engine.podman("create", "--name", container, BUSYBOX_REFERENCE, "true")
    try:
        podman_engine.podman("network", "create", network)
        try:
            assert container in _container_names(podman_engine)
            assert container not in _container_names(podman_engine_b)
            exists_in_b = podman_engine_b.podman("container", "exists", container, check=False)
            assert exists_in_b.returncode == 1
            assert network in _network_names(podman_engine)
            assert network not in _network_names(podman_engine_b)
            # Each engine keeps its own event log: b never hears of a's container.
            assert "create" in _events_naming(podman_engine, container, since)
            assert _events_naming(podman_engine_b, container, since) == []
        finally:
            podman_engine.podman("network", "rm", network)
    finally:
        podman_engine.podman("rm", "--force", container)
    assert container not in _container_names(podman_engine)


def test_busybox_image_runs_and_archive_is_reused(
    busybox_archive: Path, podman_engine: PodmanService
) -> None:
    built_at = busybox_archive.stat().st_mtime_ns
    assert build_busybox_archive(busybox_archive) == busybox_archive
    assert busybox_archive.stat().st_mtime_ns == built_at
    with tarfile.open(busybox_archive) as archive:
        shell = archive.getmember("bin/sh")
        assert archive.getmember("bin/busybox").isfile()
    assert shell.issym() and shell.linkname == "busybox"

    name = _unique("gp-run")
    result = podman_engine.podman(
        "run", "--rm", "--name", name, BUSYBOX_REFERENCE, "sh", "-c", "echo $((6 * 7))"
    )
    assert result.stdout == "42\n"
    config = podman_engine.podman(
        "image", "inspect", "--format", "{{json .Config.Cmd}}", BUSYBOX_REFERENCE
    )
    assert json.loads(config.stdout) == ["sh"]
    assert name not in _container_names(podman_engine)


def test_stop_makes_the_socket_stop_answering(
    extra_podman_engine: Callable[..., PodmanService],
) -> None:
    engine = extra_podman_engine(import_busybox=False)
    pid = engine.pid
    assert pid is not None
    assert engine.ping()

    engine.stop()

    assert not engine.ping()
    assert not engine.socket_path.exists()
    with pytest.raises(OSError):
        engine.api_get("/_ping")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert engine.pid is None
    engine.stop()  # a second stop is a no-op
    assert not engine.running


@pytest.mark.parametrize("service", ["running", "killed"])
def test_reset_removes_everything_and_leaves_no_mounts(
    extra_podman_engine: Callable[..., PodmanService], service: str
) -> None:
    engine = extra_podman_engine()
    engine.podman(
        "run",
        "--detach",
        "--name",
        "gp-reset",
        "--volume",
        "gp-reset-vol:/data",
        BUSYBOX_REFERENCE,
        "sleep",
        "600",
    )
    engine.podman("network", "create", "gp-reset-net")
    container_pid = int(engine.podman("inspect", "--format", "{{.State.Pid}}", "gp-reset").stdout)
    mounted = _mount_points_under(engine.base_dir)
    assert any(point.endswith("/merged") for point in mounted), mounted
    assert any(point.endswith("/userdata/shm") for point in mounted), mounted
    if service == "killed":
        engine.kill()  # as in a crash: conmon and the container outlive the service
        assert not engine.ping()
        os.kill(container_pid, 0)

    engine.reset()

    assert _mount_points_under(engine.base_dir) == []
    with pytest.raises(ProcessLookupError):
        os.kill(container_pid, 0)
    assert engine.podman("ps", "--all", "--quiet").stdout == ""
    assert engine.podman("volume", "ls", "--quiet").stdout == ""
    assert engine.podman("images", "--quiet").stdout == ""
    assert engine.podman("network", "ls", "--format", "{{.Name}}").stdout.split() == ["podman"]
    engine.reset()  # a second reset finds nothing to do and does not fail
    assert _mount_points_under(engine.base_dir) == []


def test_start_on_a_socket_in_use_fails_clearly(podman_engine: PodmanService) -> None:
    intruder = PodmanService(podman_engine.base_dir)
    with pytest.raises(RuntimeError, match="already in use"):
        intruder.start()
    assert not intruder.running
    with pytest.raises(RuntimeError, match="already started"):
        podman_engine.start()
    assert podman_engine.ping()


def test_restart_after_a_kill_reuses_the_stale_socket(
    extra_podman_engine: Callable[..., PodmanService],
) -> None:
    engine = extra_podman_engine()
    engine.kill()
    assert engine.socket_path.exists()
    assert not engine.ping()

    engine.start()

    assert engine.ping()
    assert engine.podman("image", "exists", BUSYBOX_REFERENCE, check=False).returncode == 0


def test_a_service_that_exits_reports_its_log(tmp_path: Path) -> None:
    fake_podman = tmp_path / "podman"
    fake_podman.write_text("#!/bin/sh\necho 'simulated engine failure' >&2\nexit 3\n")
    fake_podman.chmod(0o755)
    engine = PodmanService(tmp_path / "engine", podman=os.fspath(fake_podman))

    with pytest.raises(RuntimeError, match=r"exited with status 3(?s:.*)simulated engine failure"):
        engine.start(timeout=10)

    assert not engine.running
    assert engine.pid is None


def test_a_socket_path_too_long_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="longer than 107 bytes"):
        PodmanService(tmp_path / ("x" * 120))


def test_the_context_manager_starts_then_resets_and_stops(busybox_archive: Path) -> None:
    base_dir = Path(tempfile.mkdtemp(prefix="gp-", dir="/tmp"))
    try:
        with PodmanService(base_dir) as engine:
            assert engine.ping()
            engine.import_image(busybox_archive)
            engine.podman("run", "--detach", "--name", "gp-ctx", BUSYBOX_REFERENCE, "sleep", "600")
            assert _mount_points_under(base_dir)
        assert not engine.running
        assert not engine.ping()
        assert _mount_points_under(base_dir) == []
        assert engine.podman("ps", "--all", "--quiet").stdout == ""
        assert engine.podman("images", "--quiet").stdout == ""
    finally:
        shutil.rmtree(base_dir)

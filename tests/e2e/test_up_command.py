"""``ghostpanel up`` and ``ghostpanel lab`` as a user runs them: a URL printed, pages
served, and Ctrl-C stopping everything they started, with exit status 0."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    ROOT,
    Server,
    alive,
    descendants,
    registered_environment,
    start_server,
)
from tests.podman_service import PodmanService

ENV_NAME = "e2e-up"


@pytest.fixture(scope="module")
def registered(podman_engine: PodmanService) -> Iterator[str]:
    with registered_environment(ENV_NAME, podman_engine.url) as name:
        yield name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, *, timeout: float = 90) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode(errors="replace")


def stop_and_check(server: Server) -> None:
    """Ctrl-C: exit status 0, and no process the server started is left."""
    below = descendants(server.pid)
    assert below, "the server started no process"
    status = server.interrupt()
    left = {pid: command for pid, command in below.items() if alive(pid)}
    assert status == 0, f"exit status {status}:\n{server.output()}"
    assert not left, f"processes outlived `ghostpanel`: {left}"
    assert server.lines[-1] == "Stopped.", server.output()


def test_up_serves_the_dashboard_and_stops_on_ctrl_c(registered: str) -> None:
    port = free_port()
    server = start_server(["up", "--port", str(port), "--env", registered, "--no-browser"],
                          banner="GhostPanel dashboard:")
    try:
        assert server.url == f"http://127.0.0.1:{port}/"
        status, page = get(server.url)
        assert status == 200
        assert "ops_dashboard" in page or "GhostPanel" in page
        # The page ran the notebook in a kernel; with no browser to close it, the kernel
        # is still there and Ctrl-C must end it too (with the pool's kernel: --pool).
        assert len(server.kernels()) >= 1
        stop_and_check(server)
    finally:
        server.ensure_stopped()


def test_up_serves_the_fleet_health_dashboard_with_app(registered: str) -> None:
    server = start_server(["up", "--app", "fleet-health", "--env", registered,
                           "--no-browser"], banner="GhostPanel dashboard:")
    try:
        status, page = get(server.url)
        assert status == 200
        assert "Fleet health" in page, page[:2000]
        assert "ops_dashboard" not in page
        stop_and_check(server)
    finally:
        server.ensure_stopped()


def test_up_picks_a_free_port_without_port(registered: str) -> None:
    server = start_server(["up", "--env", registered, "--no-browser"],
                          banner="GhostPanel dashboard:")
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with socket.create_connection(("127.0.0.1", int(server.url.split(":")[2].rstrip("/"))),
                                      timeout=5):
            pass
        # SIGTERM (a service manager's stop) is a clean stop as well.
        server.process.terminate()
        assert server.process.wait(timeout=40) == 0, server.output()
    finally:
        server.ensure_stopped()


def test_up_warns_about_an_engine_that_does_not_answer(tmp_path: Path) -> None:
    # The dashboard still starts: it says so itself, and recovers when the engine is back.
    with registered_environment("e2e-down", f"unix://{tmp_path}/nothing.sock"):
        server = start_server(["up", "--env", "e2e-down", "--no-browser"],
                              banner="GhostPanel dashboard:")
        try:
            assert "Warning: environment 'e2e-down' does not answer now" in server.output()
            server.process.terminate()
            assert server.process.wait(timeout=40) == 0, server.output()
        finally:
            server.ensure_stopped()


def run_cli(*arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", *arguments],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_up_refuses_a_port_in_use(registered: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run_cli("up", "--port", str(port), "--env", registered, "--no-browser")
    assert result.returncode == 1, result
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert time.monotonic() - started < 30


def test_up_names_an_unknown_environment() -> None:
    result = run_cli("up", "--env", "no-such-env", "--no-browser")
    assert result.returncode == 1, result
    assert "no-such-env" in result.stderr
    assert "GhostPanel dashboard:" not in result.stdout


def test_up_help_lists_its_options() -> None:
    result = run_cli("up", "--help")
    assert result.returncode == 0
    for option in ("--port", "--env", "--no-browser", "--app"):
        assert option in result.stdout


def test_lab_serves_the_notebooks_with_a_token(registered: str) -> None:
    server = start_server(["lab", "--env", registered, "--no-browser"],
                          banner="GhostPanel notebooks:")
    try:
        assert "/lab?token=" in server.url
        base, _, token = server.url.partition("/lab?token=")
        status, _ = get(f"{base}/api/contents?token={token}", timeout=30)
        assert status == 200
        _, listing = get(f"{base}/api/contents?token={token}", timeout=30)
        assert "01_quickstart.ipynb" in listing
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(f"{base}/api/contents", timeout=30)  # no token: refused
        assert refused.value.code == 403
        refused.value.close()
        stop_and_check(server)
    finally:
        server.ensure_stopped()

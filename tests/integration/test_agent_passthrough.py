"""The Engine API passthrough on the session's Podman engine, driven by the real docker CLI.

The docker CLI reaches a real ``ghostpanel agent`` (``tests/agent_process.py``) as a
user would: ``docker -H tcp://127.0.0.1:PORT --tlsverify --tlscacert AGENT_CERT`` with
the agent's token in the ``HttpHeaders`` of ``$DOCKER_CONFIG/config.json``.

The tests of what happens when a client leaves mid-request serve the passthrough alone
with Hypercorn over TLS, in a thread of the test process, so that they can watch its
``in_flight`` count fall back to zero: the engine request ended with the client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from ghostpanel_kernel import connect
from ghostpanel_kernel.server._passthrough import EnginePassthrough
from tests.agent_process import (  # noqa: F401 (fixtures)
    RunningAgent,
    agent_factory_fixture,
    agent_fixture,
)
from tests.image_registry import RegistryImages
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

#: Prints a numbered line every 0.1 s, for ever.
TICKER = ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done"]


@dataclass
class Served:
    """A passthrough served over TLS on ``127.0.0.1:port``."""

    app: EnginePassthrough
    port: int
    ca_cert: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(
            cafile=os.fspath(self.ca_cert)), **options)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no request is being forwarded; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.app.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.app.in_flight == 0, f"{self.app.in_flight} requests still forwarded"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: EnginePassthrough, pki: Path) -> Iterator[Served]:
    """Serve ``app`` alone with Hypercorn over TLS, in a thread, until the block ends."""
    config = Config()
    port = _free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile = os.fspath(pki / "server.pem")
    config.keyfile = os.fspath(pki / "server.key")
    config.accesslog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()

    async def run() -> None:
        ready.set()
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
        await app.aclose()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    ready.wait(5)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert time.monotonic() < deadline, "Hypercorn did not listen in 10 s"
        time.sleep(0.02)
    try:
        yield Served(app, port, pki / "ca.pem")
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        assert not thread.is_alive(), "Hypercorn did not stop in 15 s"
        loop.close()


@pytest.fixture
def served(engine_url: str, test_pki: Path) -> Iterator[Served]:
    """The passthrough on the session engine, mounted as the agent mounts it."""
    with serve_in_thread(EnginePassthrough(engine_url, prefix="/engine"), test_pki) as served:
        yield served


def docker_cli(agent: RunningAgent, config_dir: Path
               ) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run(*args)``: the docker CLI on ``agent``, its token in ``config_dir``'s
    ``config.json``; ``run.popen(*args)`` starts one with its stdout piped."""
    executable = shutil.which("docker")
    if executable is None:
        pytest.fail("no docker client on the PATH: run scripts/setup.sh as root",
                    pytrace=False)
    config_dir.mkdir(exist_ok=True)
    (config_dir / "config.json").write_text(json.dumps(
        {"HttpHeaders": {"Authorization": f"Bearer {agent.token}"}}))
    environment = {**os.environ, "DOCKER_CONFIG": os.fspath(config_dir)}
    prefix = [executable, "-H", f"tcp://127.0.0.1:{agent.port}", "--tlsverify",
              "--tlscacert", os.fspath(agent.ca_cert)]

    def run(*args: str, check: bool = True, timeout: float = 60, tty: bool = False,
            ) -> subprocess.CompletedProcess[str]:
        # ``-it`` wants a terminal on stdin: a pseudo-terminal's, for ``tty``.
        terminal, stdin = pty.openpty() if tty else (None, subprocess.DEVNULL)
        try:
            result = subprocess.run([*prefix, *args], capture_output=True, text=True,
                                    env=environment, timeout=timeout, check=False,
                                    stdin=stdin)
        finally:
            if terminal is not None:
                os.close(terminal)
                os.close(stdin)
        if check:
            assert result.returncode == 0, (
                f"docker {' '.join(args)} exited {result.returncode}: {result.stderr}"
                f"\n{agent.log()[-3000:]}")
        return result

    run.popen = lambda *args: subprocess.Popen(  # type: ignore[attr-defined]
        [*prefix, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment)
    return run


@pytest.fixture
def docker(agent: RunningAgent, tmp_path: Path, podman_engine: PodmanService
           ) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """The docker CLI on an agent on the session engine; ``gp-dk-*`` containers are
    removed afterwards, whatever the test did."""
    yield docker_cli(agent, tmp_path / "docker-config")
    names = podman_engine.podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    leftovers = [name for name in names if name.startswith("gp-dk-")]
    if leftovers:
        podman_engine.podman("rm", "-f", "-t", "0", *leftovers)


def _name() -> str:
    return f"gp-dk-{uuid.uuid4().hex[:8]}"


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """One line of ``process``'s stdout, or fail after ``timeout`` seconds."""
    found: list[bytes] = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    reader.join(timeout)
    assert found, f"no line from {process.args!r} within {timeout} s"
    return found[0]


def test_docker_cli_container_lifecycle(docker: Any) -> None:
    name = _name()
    started = time.time()
    assert docker("ps", "-a").stdout.startswith("CONTAINER ID")
    container_id = docker("run", "-d", "--name", name, BUSYBOX_REFERENCE, *TICKER).stdout.strip()
    assert len(container_id) == 64
    assert name in docker("ps", "-a").stdout

    deadline = time.monotonic() + 10
    while "line 2" not in (logs := docker("logs", name).stdout):
        assert time.monotonic() < deadline, f"no 'line 2' in the logs: {logs!r}"
        time.sleep(0.1)
    assert logs.startswith("line 0\nline 1\n")

    # logs -f: lines arrive while the container runs (nothing waits for the end of the
    # stream), and ending the client ends the engine request.
    with docker.popen("logs", "-f", "--since", "0", name) as follow:
        try:
            first = _read_line(follow, 15)
            later = _read_line(follow, 15)
            assert first.startswith(b"line ") and later.startswith(b"line ")
            # Lines written after the follow began come through too, as they are written.
            seen = int(later.split()[1])
            deadline = time.monotonic() + 10
            while int(_read_line(follow, 10).split()[1]) < seen + 5:
                assert time.monotonic() < deadline
        finally:
            follow.terminate()

    # By ID: the CLI cuts the first character of the name, which Docker sends as
    # "/name" and Podman 4.3's stats as "name" ("p-dk-..." would show).
    stats = docker("stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}}", name).stdout
    assert stats.startswith(container_id[:12] + " ") and "B / " in stats, stats
    inspected = json.loads(docker("inspect", name).stdout)
    assert inspected[0]["Id"] == container_id
    assert inspected[0]["State"]["Running"] is True

    docker("stop", "-t", "1", name)
    assert json.loads(docker("inspect", name).stdout)[0]["State"]["Running"] is False
    docker("rm", name)
    assert name not in docker("ps", "-a").stdout

    # The daemon's clock is this machine's: a window around the test holds its events.
    # Podman 4.3 answers a window whose end has passed with nothing (docs/engine-facts.md),
    # so the end lies far enough ahead for the CLI to start on a loaded machine; the
    # command then lasts until it.
    events = docker("events", "--since", str(int(started) - 1), "--until",
                    str(int(time.time()) + 5), "--filter", f"container={name}",
                    "--format", "{{.Action}}", timeout=30).stdout.split()
    # Podman reports a stop as the container's death ("die"), with no "stop" event.
    for action in ("create", "start", "die"):
        assert action in events, events
    assert "remove" in events or "destroy" in events, events


def test_docker_cli_listings(docker: Any) -> None:
    images = docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert BUSYBOX_REFERENCE in images
    volume = _name()
    docker("volume", "create", volume)
    try:
        assert volume in docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    finally:
        docker("volume", "rm", volume)
    network = _name()
    docker("network", "create", network)
    try:
        networks = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        # Podman's compat API calls its default network "bridge", as Docker does.
        assert network in networks and "bridge" in networks, networks
    finally:
        docker("network", "rm", network)


def test_docker_cli_pull_from_registry(docker: Any, registry_images: RegistryImages,
                                       podman_engine: PodmanService) -> None:
    reference = registry_images.reference(registry_images.payload)
    try:
        pulled = docker("pull", reference, timeout=120)
        assert "Download complete" in pulled.stdout or "Pull complete" in pulled.stdout \
            or reference in pulled.stdout, pulled.stdout
        listed = docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        assert reference in listed
    finally:
        podman_engine.podman("rmi", "-f", reference)


def test_docker_cli_exec_and_attach_answer_with_the_websocket_route(
        docker: Any, agent: RunningAgent) -> None:
    name = _name()
    docker("run", "-d", "--name", name, BUSYBOX_REFERENCE, *TICKER)
    for args in (("exec", "-it", name, "sh"), ("exec", "-i", name, "sh"),
                 ("attach", "--no-stdin", name)):
        result = docker(*args, check=False, timeout=30, tty="-it" in args)
        assert result.returncode != 0, result
        # The CLI shows only the status of a refused upgrade, never its body.
        assert "unable to upgrade to tcp, received 501" in result.stderr, result.stderr
    # The answer itself, as any HTTP client sees it.
    with agent.client() as http:
        answer = http.post(f"/engine/v1.41/containers/{name}/attach?stream=1",
                           headers={"Connection": "Upgrade", "Upgrade": "tcp"})
    assert answer.status_code == 501
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["websocket"] == f"/api/v1/containers/{name}/exec"
    assert f"ws /api/v1/containers/{name}/exec" in problem["detail"]
    docker("rm", "-f", name)


def test_engine_down_is_a_502_naming_the_socket(
        agent_factory: Callable[..., RunningAgent], tmp_path: Path) -> None:
    socket_path = tmp_path / "gone.sock"
    running = agent_factory(engine_url=f"unix://{socket_path}")
    with running.client() as http:
        for path in ("/engine/v1.41/containers/json", "/v1.41/containers/json"):
            answer = http.get(path)
            assert answer.status_code == 502
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert str(socket_path) in problem["detail"]
            assert problem["engine"] == str(socket_path)
    # The docker CLI prints the body of an error answer that is not application/json.
    result = docker_cli(running, tmp_path / "docker-config")("ps", check=False)
    assert result.returncode != 0 and str(socket_path) in result.stderr, result.stderr


def test_the_ghostpanel_client_lists_containers_through_the_agent(
        docker: Any, agent: RunningAgent) -> None:
    name = _name()
    docker("create", "--name", name, BUSYBOX_REFERENCE, "true")

    async def listed() -> list[str]:
        env = connect(agent.url, token=agent.token, fingerprint=agent.fingerprint)
        try:
            return [container.name for container in await env.containers.list(all=True)]
        finally:
            await env.aclose()

    assert name in asyncio.run(listed())
    docker("rm", name)


@pytest.fixture
def sleeper(podman_engine: PodmanService) -> Iterator[str]:
    """A running container that prints nothing; removed afterwards."""
    name = _name()
    podman_engine.podman("run", "-d", "--name", name, BUSYBOX_REFERENCE, "sleep", "600")
    yield name
    podman_engine.podman("rm", "-f", "-t", "0", name)


async def test_client_gone_closes_the_engine_request(served: Served, sleeper: str,
                                                     podman_engine: PodmanService) -> None:
    """A client that leaves while the engine is silent, before the answer's head (Podman
    sends none for ``logs -f`` until a line comes) or mid-stream: the engine request
    ends with it."""
    context = ssl.create_default_context(cafile=os.fspath(served.ca_cert))
    async with httpx.AsyncClient(base_url=served.url, verify=context) as http:
        follow = asyncio.ensure_future(http.get(
            f"/engine/v1.41/containers/{sleeper}/logs", params={"follow": "1", "stdout": "1"}))
        await _until(lambda: served.app.in_flight == 1)
        follow.cancel()  # httpx closes the connection
        with contextlib.suppress(asyncio.CancelledError):
            await follow
        await _until(lambda: served.app.in_flight == 0)

        # Mid-stream: the events of the container, left after the first one.
        async with http.stream("GET", "/v1.41/events", params={
                "filters": json.dumps({"container": [sleeper]})}) as events:
            await asyncio.to_thread(podman_engine.podman, "pause", sleeper)
            lines = events.aiter_lines()
            assert json.loads(await anext(lines))["status"] == "pause"
            assert served.app.in_flight == 1
        await _until(lambda: served.app.in_flight == 0)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not true after {timeout} s: {condition}"
        await asyncio.sleep(0.02)


def test_upload_cut_short_is_not_left_hanging(served: Served, sleeper: str) -> None:
    """A client that sends half an archive and leaves: the engine request is closed."""
    context = ssl.create_default_context(cafile=os.fspath(served.ca_cert))
    head = (f"PUT /v1.41/containers/{sleeper}/archive?path=/tmp HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nContent-Type: application/x-tar\r\n"
            "Content-Length: 10485760\r\n\r\n")
    with socket.create_connection(("127.0.0.1", served.port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(head.encode() + b"\0" * (1 << 20))
        deadline = time.monotonic() + 5
        while served.app.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert served.app.in_flight == 1
    served.wait_idle()
    # The engine connections left are sound: the next request is answered.
    with served.client(timeout=10) as http:
        assert http.get(f"/v1.41/containers/{sleeper}/json").json()["Name"] in (
            sleeper, f"/{sleeper}")


def test_streamed_upload_and_download_round_trip(docker: Any, tmp_path: Path) -> None:
    """``docker cp`` both ways: a body larger than what is buffered, streamed in and out."""
    name = _name()
    docker("run", "-d", "--name", name, BUSYBOX_REFERENCE, "sleep", "600")
    try:
        payload = tmp_path / "payload.bin"
        payload.write_bytes(os.urandom(3 << 20))
        docker("cp", os.fspath(payload), f"{name}:/tmp/payload.bin")
        back = tmp_path / "back"
        back.mkdir()
        docker("cp", f"{name}:/tmp/payload.bin", os.fspath(back))
        assert (back / "payload.bin").read_bytes() == payload.read_bytes()
    finally:
        docker("rm", "-f", name)

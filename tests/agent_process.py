"""A real ``ghostpanel agent`` process for integration tests, and the ``agent`` fixture.

Interface (for every test that needs an agent)::

    from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401

    def test_something(agent: RunningAgent) -> None:
        agent.url          # "https://127.0.0.1:PORT" (HTTPS and HTTP/3 on that port)
        agent.port         # PORT (TCP for HTTPS, UDP for HTTP/3)
        agent.token        # a valid bearer token, made with `ghostpanel agent token create`
        agent.ca_cert      # Path of the agent's self-signed certificate (PEM): verify with it
        agent.ssl_context()                              # an ssl.SSLContext trusting it
        agent.fingerprint  # its SHA-256 fingerprint, "AB:CD:..." as the agent printed it
        agent.home         # the agent's own GHOSTPANEL_HOME (fresh per agent)
        agent.engine_url   # the engine it forwards to (the session's ``engine_url``)
        agent.headers      # {"Authorization": "Bearer <token>"}
        with agent.client() as http:                    # httpx.Client: base_url, CA, token
            http.get("/api/v1/health")
        agent.create_token("other")                      # another token, printed once
        agent.revoke_token("other")
        agent.restart()    # stop (SIGTERM) and start again: same home, port and certificate
        agent.stop()       # SIGTERM, waits, returns the exit status (the fixture does it)

    def test_custom(agent_factory) -> None:
        running = agent_factory(extra_args=["--client-ca", str(ca)])   # more CLI options
        running = agent_factory(listen="unix")                          # a unix socket
        # running.url is then "unix:///tmp/gp-agent-.../agent.sock"; client() uses it.
        running = agent_factory(engine_url="unix:///nowhere.sock")      # another engine
        running = agent_factory(extra_args=["--cert", c, "--key", k], server_ca=ca_pem)
        running.client(token=False, client_cert=(cert_pem, key_pem))    # no token, mTLS
        running.log()      # what it printed (stdout, stderr), for assertion messages

``agent`` and ``agent_factory`` are pytest fixtures defined here as ``agent_fixture``
and ``agent_factory_fixture`` (``@pytest.fixture(name=...)``, so that a test's
``agent`` parameter does not shadow an import): import those two names into the test
module, as above, for pytest to find them. Every agent started through them is
stopped at teardown, and teardown fails if the process did not exit with status 0.

Each agent gets a fresh home under ``/tmp/gp-agent-*`` (short, for unix socket paths),
claimed like the engines' directories (``tests/orphans.py``): the agent is started as
``ghostpanel --home DIR agent ...``, so a killed session's agents, whose command lines
name that directory, are ended by the next session's sweep. Its stdout and stderr go to
``agent.out`` and ``agent.err`` in that home (no pipe to fill); :meth:`RunningAgent.log`
returns both, for assertion messages.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from tests.orphans import claim

__all__ = [
    "AgentStartError",
    "RunningAgent",
    "agent_factory_fixture",
    "agent_fixture",
    "cli_environment",
    "free_port",
    "ghostpanel_command",
    "problem_answer",
    "run_cli",
    "signal_and_wait",
    "start_agent",
]

#: Seconds an agent may take to print its "ready" line (the target is under 1 s; a
#: loaded test machine with seven sessions beside it is given much more).
START_TIMEOUT = 30.0
#: Seconds an agent may take to exit after SIGTERM.
STOP_TIMEOUT = 15.0

_READY = re.compile(r"^ghostpanel agent ready", re.MULTILINE)
_FINGERPRINT = re.compile(r"fingerprint \(SHA-256\): ([0-9A-F]{2}(?::[0-9A-F]{2}){31})")


#: The media type of the agent's error answers (RFC 9457).
PROBLEM = "application/problem+json"


def problem_answer(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of an agent's answer, asserting its status and shape.

    Raises
    ------
    AssertionError
        Another status (the message has the body), another media type, or a document
        without the same ``status`` or without a ``detail``.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


class AgentStartError(RuntimeError):
    """The agent process ended, or did not say "ready", in time; the message has its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` for both TCP (HTTPS) and UDP (HTTP/3) right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both TCP and UDP on {host}")


def ghostpanel_command(home: Path, *args: str) -> list[str]:
    """The command line of ``ghostpanel --home HOME ARGS...`` with this interpreter."""
    return [sys.executable, "-m", "ghostpanel_kernel.cli", "--home", os.fspath(home), *args]


def cli_environment(home: Path) -> dict[str, str]:
    """This process's environment for a ``ghostpanel`` run in ``home`` (and no database URL
    inherited from the caller)."""
    environment = dict(os.environ)
    environment["GHOSTPANEL_HOME"] = os.fspath(home)
    environment.pop("GHOSTPANEL_DATABASE_URL", None)
    return environment


def run_cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``ghostpanel --home HOME ARGS...`` to its end; its output as text."""
    return subprocess.run(ghostpanel_command(home, *args), capture_output=True, text=True,
                          env=cli_environment(home), timeout=timeout, check=False)


def signal_and_wait(process: subprocess.Popen[Any], sig: int, *, what: str,
                    log: Callable[[], str], timeout: float = STOP_TIMEOUT) -> int:
    """Send ``sig`` to a running server process and wait for its exit status.

    The agent's and the gateway's test harnesses stop their process the same way.

    Parameters
    ----------
    process : subprocess.Popen
        The server, still running.
    sig : int
        The signal to send.
    what : str
        The server's name in the failure message (``"agent"``, ``"gateway"``).
    log : Callable[[], str]
        The server's output so far, for the failure message.
    timeout : float
        Seconds it may take to exit.

    Returns
    -------
    int
        The exit status.

    Raises
    ------
    AssertionError
        When it has not exited within ``timeout`` (it is then killed, so that no test
        leaves it behind).
    """
    process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"the {what} ignored signal {sig}:\n{log()}") from None


@dataclass
class RunningAgent:
    """One ``ghostpanel agent`` process and what a client needs to reach it."""

    home: Path
    engine_url: str
    listen: str
    extra_args: tuple[str, ...]
    token: str
    #: The CA to verify the agent with when it serves a certificate of its own
    #: (``--cert``); None for its self-signed one.
    server_ca: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    fingerprint: str | None = None
    _exits: list[int] = field(default_factory=list)

    # -- addresses -------------------------------------------------------------------

    @property
    def unix_socket(self) -> Path | None:
        """The socket path when the agent listens on a unix socket, else None."""
        return Path(self.listen.removeprefix("unix://")) if self.listen.startswith(
            "unix://") else None

    @property
    def port(self) -> int:
        """The TCP (HTTPS) and UDP (HTTP/3) port."""
        if self.unix_socket is not None:
            raise AttributeError("this agent listens on a unix socket, not a port")
        return int(self.listen.rpartition(":")[2])

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``, or ``unix:///path.sock``."""
        return self.listen if self.unix_socket is not None else f"https://{self.listen}"

    @property
    def ca_cert(self) -> Path:
        """What clients verify the agent with: its self-signed certificate, or the
        ``server_ca`` given for a ``--cert`` of its own."""
        return self.server_ca or self.home / "agent" / "tls" / "agent.crt"

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header carrying :attr:`token`."""
        return {"Authorization": f"Bearer {self.token}"}

    def ssl_context(self, *, client_cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        """A client context that trusts only :attr:`ca_cert`, presenting ``client_cert``
        (certificate, key) when given."""
        context = ssl.create_default_context(cafile=os.fspath(self.ca_cert))
        if client_cert is not None:
            context.load_cert_chain(os.fspath(client_cert[0]), os.fspath(client_cert[1]))
        return context

    def client(self, *, token: str | Literal[False] | None = None,
               timeout: float = 10.0,
               client_cert: tuple[Path, Path] | None = None) -> httpx.Client:
        """An ``httpx.Client`` on the agent (HTTPS, or HTTP over its unix socket).

        ``token``: None for :attr:`token`, a string for another, False for no header.
        ``client_cert``: (certificate, key) to present in the TLS handshake.
        """
        headers = {} if token is False else {
            "Authorization": f"Bearer {self.token if token is None else token}"}
        if self.unix_socket is not None:
            return httpx.Client(transport=httpx.HTTPTransport(uds=os.fspath(self.unix_socket)),
                                base_url="http://agent", headers=headers, timeout=timeout)
        return httpx.Client(base_url=self.url, verify=self.ssl_context(client_cert=client_cert),
                            headers=headers, timeout=timeout)

    # -- tokens ----------------------------------------------------------------------

    def create_token(self, name: str) -> str:
        """``ghostpanel agent token create NAME`` in this agent's home; the new token."""
        result = run_cli(self.home, "agent", "token", "create", name)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def revoke_token(self, name: str) -> None:
        """``ghostpanel agent token revoke NAME`` in this agent's home."""
        result = run_cli(self.home, "agent", "token", "revoke", name)
        assert result.returncode == 0, result.stderr

    # -- the process -----------------------------------------------------------------

    def log(self) -> str:
        """What the agent printed so far: stdout, then stderr."""
        parts = []
        for name in ("agent.out", "agent.err"):
            with contextlib.suppress(OSError):
                parts.append(f"--- {name}\n{(self.home / name).read_text(errors='replace')}")
        return "\n".join(parts)

    def start(self) -> None:
        """Start the process and wait for its "ready" line."""
        assert self.process is None or self.process.poll() is not None, "already running"
        out = self.home / "agent.out"
        err = self.home / "agent.err"
        offset = out.stat().st_size if out.exists() else 0
        with out.open("ab") as stdout, err.open("ab") as stderr:
            self.process = subprocess.Popen(
                ghostpanel_command(self.home, "agent", "--listen", self.listen,
                                   "--engine", self.engine_url, *self.extra_args),
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                env=cli_environment(self.home))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            printed = out.read_bytes()[offset:].decode(errors="replace")
            if _READY.search(printed):
                match = _FINGERPRINT.search(printed)
                self.fingerprint = match.group(1) if match else None
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                status = self.process.poll()
                if status is None:
                    self.stop(expect_clean=False)
                raise AgentStartError(
                    f"the agent did not become ready (exit status {status}):\n{self.log()}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, *, expect_clean: bool = True) -> int | None:
        """Send ``sig`` and wait for the exit; SIGKILL after :data:`STOP_TIMEOUT`.

        Returns the exit status (None when it was not running).
        """
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        status = signal_and_wait(process, sig, what="agent", log=self.log)
        self._exits.append(status)
        if expect_clean:
            assert status == 0, f"the agent exited with {status}:\n{self.log()}"
        return status

    def restart(self) -> None:
        """Stop (SIGTERM, exit 0 expected) and start again with the same settings."""
        self.stop()
        self.start()


def start_agent(engine_url: str, *, listen: str = "tcp",
                extra_args: Sequence[str] = (), token_name: str = "test",
                home: Path | None = None, server_ca: Path | None = None) -> RunningAgent:
    """Make a home, a token in it, and start an agent on ``engine_url``.

    Parameters
    ----------
    engine_url
        The engine the agent forwards to (``unix:///...podman.sock``).
    listen
        ``"tcp"`` for a free loopback port, ``"unix"`` for a socket in the home, or an
        explicit ``--listen`` value.
    extra_args
        More ``ghostpanel agent`` options (``--client-ca FILE``...).
    token_name
        The name of the token made before the start.
    home
        The home to use (default: a new claimed ``/tmp/gp-agent-*``).
    server_ca
        The CA that signed a ``--cert`` passed in ``extra_args`` (for :attr:`ca_cert`).
    """
    if home is None:
        home = claim(Path(tempfile.mkdtemp(prefix="gp-agent-", dir="/tmp")))
    if listen == "tcp":
        listen = f"127.0.0.1:{free_port()}"
    elif listen == "unix":
        listen = f"unix://{home / 'agent.sock'}"
    result = run_cli(home, "agent", "token", "create", token_name)
    if result.returncode != 0:
        raise AgentStartError(f"`agent token create` failed: {result.stderr}")
    running = RunningAgent(home=home, engine_url=engine_url, listen=listen,
                           extra_args=tuple(extra_args), server_ca=server_ca,
                           token=result.stdout.strip().splitlines()[-1])
    running.start()
    return running


@pytest.fixture(name="agent_factory")
def agent_factory_fixture(engine_url: str) -> Iterator[Callable[..., RunningAgent]]:
    """Start agents on the session engine with :func:`start_agent`'s options; all are
    stopped (SIGTERM, exit status 0 asserted) and their homes deleted at teardown."""
    with contextlib.ExitStack() as teardown:

        def start(*, engine_url: str = engine_url, **options: object) -> RunningAgent:
            home = claim(Path(tempfile.mkdtemp(prefix="gp-agent-", dir="/tmp")))
            teardown.callback(shutil.rmtree, home, ignore_errors=True)
            running = start_agent(engine_url, home=home, **options)  # type: ignore[arg-type]
            teardown.callback(running.stop)
            return running

        yield start


@pytest.fixture(name="agent")
def agent_fixture(agent_factory: Callable[..., RunningAgent]) -> RunningAgent:
    """An agent on the session engine, HTTPS + HTTP/3 on a free loopback port, with a
    fresh home and one token; stopped at teardown."""
    return agent_factory()

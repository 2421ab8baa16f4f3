"""A real gateway process for integration tests, with a token table standing in for the hub.

Interface::

    from tests.gateway_process import (  # noqa: F401 (fixtures)
        RunningGateway, gateway_factory_fixture, gateway_fixture)

    def test_something(gateway: RunningGateway) -> None:
        gateway.url                 # "http://127.0.0.1:PORT/services/ghostpanel/"
        gateway.engine_url("prod")  # ".../env/prod/engine" (an Engine API base URL)
        with gateway.engine("op-blue") as http:     # httpx.Client on that base, token set
            http.post("/v1.41/containers/ID/stop")
        with gateway.client("admin") as http:       # httpx.Client on gateway.url
            http.get("api/v1/whoami")
        gateway.audit()             # the audit log's entries (AuditLog.entries())
        gateway.grant("@blue", "viewer", "prod"); gateway.revoke(...)
        gateway.set_identity("op-blue", name="olga", groups=["blue"])  # change the table
        gateway.log()               # what it printed, for assertion messages

The gateway runs as ``python -m tests.gateway_stand_in`` (the real app, Hypercorn,
store and engines; only token -> identity comes from a JSON table instead of a hub), on
a free loopback port, with a fresh ``GHOSTPANEL_HOME`` under ``/tmp/gp-gw-*`` (claimed:
a killed session's gateways are swept, ``tests/orphans.py``). Environment ``prod`` is
registered for the session's Podman engine. The default table (:data:`TOKENS`) and
bindings (:data:`BINDINGS`) give, on ``prod``:

========== ====== ======= ============================================
token      user   teams   role
========== ====== ======= ============================================
op-blue    olga   blue    operator (bound to the user)
view-blue  vic    blue    viewer
dep-blue   dora   blue    deployer
op-red     rick   red     operator (bound to the group ``@red``)
dep-red    rex    red     deployer
scoped     sam    blue    none bound; hub scope custom:ghostpanel:prod:read
admin      ada    --      hub admin
========== ====== ======= ============================================

Teardown stops the process with SIGINT (as the hub does), asserts exit status 0, and
removes the home.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent_process import cli_environment, free_port, run_cli, signal_and_wait
from tests.orphans import claim

__all__ = ["BINDINGS", "TOKENS", "RunningGateway", "gateway_factory_fixture",
           "gateway_fixture", "start_gateway"]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
PREFIX = "/services/ghostpanel/"

TOKENS: dict[str, dict[str, Any]] = {
    "op-blue": {"name": "olga", "groups": ["blue"]},
    "view-blue": {"name": "vic", "groups": ["blue"]},
    "dep-blue": {"name": "dora", "groups": ["blue"]},
    "op-red": {"name": "rick", "groups": ["red"]},
    "dep-red": {"name": "rex", "groups": ["red"]},
    "scoped": {"name": "sam", "groups": ["blue"], "scopes": ["custom:ghostpanel:prod:read"]},
    "admin": {"name": "ada", "groups": [], "admin": True},
}
BINDINGS: tuple[tuple[str, str, str], ...] = (
    ("olga", "operator", "prod"),
    ("vic", "viewer", "prod"),
    ("dora", "deployer", "prod"),
    ("@red", "operator", "prod"),
    ("rex", "deployer", "prod"),
)


@dataclass
class RunningGateway:
    """One gateway process and what a client needs to reach it."""

    home: Path
    port: int
    tokens: dict[str, dict[str, Any]]
    process: subprocess.Popen[bytes] | None = None
    _exits: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The gateway's base URL, with the hub's prefix and a trailing slash."""
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    @property
    def database_url(self) -> str:
        """The store the gateway reads (SQLite in its home)."""
        return f"sqlite:///{self.home / 'ghostpanel.db'}"

    def engine_url(self, env: str = "prod") -> str:
        """The Engine API base URL of environment ``env`` through the gateway."""
        return f"{self.url}env/{env}/engine"

    def client(self, token: str | None, *, timeout: float = 20.0) -> httpx.Client:
        """An ``httpx.Client`` on :attr:`url` sending ``token`` (None: no header)."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def engine(self, token: str | None, env: str = "prod", *,
               timeout: float = 20.0) -> httpx.Client:
        """An ``httpx.Client`` on the Engine API of ``env`` through the gateway."""
        headers = {} if token is None else {"Authorization": f"token {token}"}
        return httpx.Client(base_url=self.engine_url(env), headers=headers, timeout=timeout)

    # -- the store -------------------------------------------------------------------

    def _store(self) -> Any:
        from ghostpanel_kernel.store import open_database

        return open_database(self.database_url)

    def grant(self, subject: str, role: str, env: str = "prod") -> None:
        """Bind ``role`` on ``env`` to a user or ``@group`` (the gateway sees it ≤ 2 s later)."""
        from ghostpanel_kernel.gateway._roles import RoleStore

        engine = self._store()
        try:
            RoleStore(engine).grant(subject, role, env)
        finally:
            engine.dispose()

    def revoke(self, subject: str, role: str, env: str = "prod") -> None:
        """Remove a binding made with :meth:`grant`."""
        from ghostpanel_kernel.gateway._roles import RoleStore

        engine = self._store()
        try:
            RoleStore(engine).revoke(subject, role, env)
        finally:
            engine.dispose()

    def audit(self, **filters: Any) -> list[Any]:
        """The audit log's entries (``AuditLog.entries(**filters)``), oldest first."""
        from ghostpanel_kernel.gateway._audit import AuditLog

        engine = self._store()
        try:
            return list(AuditLog(engine).entries(**filters))
        finally:
            engine.dispose()

    def set_identity(self, token: str, **identity: Any) -> None:
        """Change (or add) what the stand-in hub says about ``token``; {} removes it."""
        if identity:
            self.tokens[token] = identity
        else:
            self.tokens.pop(token, None)
        path = self.home / "identities.json"
        path.write_text(json.dumps(self.tokens))
        # The table is re-read on a change of modification time: make sure it moves.
        stamp = time.time_ns()
        os.utime(path, ns=(stamp, stamp))

    # -- the process -----------------------------------------------------------------

    def log(self) -> str:
        """What the gateway printed so far: stdout, then stderr."""
        parts = []
        for name in ("gateway.out", "gateway.err"):
            with contextlib.suppress(OSError):
                parts.append(f"--- {name}\n{(self.home / name).read_text(errors='replace')}")
        return "\n".join(parts)

    def start(self) -> None:
        """Start the process and wait for its "ready" line."""
        out, err = self.home / "gateway.out", self.home / "gateway.err"
        offset = out.stat().st_size if out.exists() else 0
        with out.open("ab") as stdout, err.open("ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.gateway_stand_in",
                 "--bind", f"127.0.0.1:{self.port}", "--prefix", PREFIX,
                 "--identities", os.fspath(self.home / "identities.json")],
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                env=cli_environment(self.home), cwd=Path(__file__).resolve().parent.parent)
        deadline = time.monotonic() + START_TIMEOUT
        while "ghostpanel gateway ready" not in out.read_bytes()[offset:].decode(
                errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                status = self.process.poll()
                if status is None:
                    self.stop(expect_clean=False)
                raise RuntimeError(f"the gateway did not become ready (exit status "
                                   f"{status}):\n{self.log()}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGINT, *, expect_clean: bool = True) -> int | None:
        """Send ``sig`` (SIGINT: what the hub sends) and wait; SIGKILL after a timeout."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        status = signal_and_wait(process, sig, what="gateway", log=self.log,
                                 timeout=STOP_TIMEOUT)
        self._exits.append(status)
        if expect_clean:
            assert status == 0, f"the gateway exited with {status}:\n{self.log()}"
        return status


def start_gateway(engine_url: str, *, home: Path,
                  tokens: Mapping[str, Mapping[str, Any]] | None = None,
                  bindings: Sequence[tuple[str, str, str]] = BINDINGS,
                  environments: Mapping[str, str | Sequence[str]] | None = None
                  ) -> RunningGateway:
    """Register the environments, bind the roles, write the token table, start.

    ``environments`` maps a name to its URL, or to the arguments of ``ghostpanel env add
    NAME ...`` (``(url, "--token", T, "--fingerprint", F)`` for an agent); by default
    ``prod`` is the session engine.
    """
    for name, spec in (environments or {"prod": engine_url}).items():
        arguments = [spec] if isinstance(spec, str) else list(spec)
        result = run_cli(home, "env", "add", name, *arguments)
        if result.returncode != 0:
            raise RuntimeError(f"`env add {name}` failed: {result.stderr}")
    running = RunningGateway(home=home, port=free_port(),
                             tokens={k: dict(v) for k, v in (tokens or TOKENS).items()})
    for subject, role, env in bindings:
        running.grant(subject, role, env)
    (home / "identities.json").write_text(json.dumps(running.tokens))
    running.start()
    return running


@pytest.fixture(name="gateway_factory")
def gateway_factory_fixture(engine_url: str) -> Iterator[Callable[..., RunningGateway]]:
    """Start gateways on the session engine (:func:`start_gateway`'s options); all are
    stopped with SIGINT (exit status 0 asserted) and their homes removed at teardown."""
    with contextlib.ExitStack() as teardown:

        def start(**options: Any) -> RunningGateway:
            home = claim(Path(tempfile.mkdtemp(prefix="gp-gw-", dir="/tmp")))
            teardown.callback(shutil.rmtree, home, ignore_errors=True)
            running = start_gateway(options.pop("engine_url", engine_url), home=home,
                                    **options)
            teardown.callback(running.stop)
            return running

        yield start


@pytest.fixture(name="gateway")
def gateway_fixture(gateway_factory: Callable[..., RunningGateway]) -> RunningGateway:
    """A gateway on the session engine with the default tokens and bindings."""
    return gateway_factory()

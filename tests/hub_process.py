"""A real JupyterHub (``ghostpanel hub``) for integration tests: the ``hub`` fixtures.

Interface (for every test that needs a hub, its proxy and the gateway)::

    from tests.hub_process import RunningHub, hub_factory_fixture, hub_fixture  # noqa: F401

    def test_something(hub: RunningHub) -> None:
        hub.url            # "http://127.0.0.1:PORT/" (the proxy: what users and docker use)
        hub.api_url        # hub.url + "hub/api"
        hub.gateway_url    # hub.url + "services/ghostpanel/"
        hub.home           # its own GHOSTPANEL_HOME (fresh, /tmp/gp-hub-*)
        hub.database_url   # the GhostPanel store the gateway reads (SQLite in home, or
                           # the PostgreSQL URL the factory was given)
        hub.add_user("ada", groups=("blue",))          # through the hub's REST API
        hub.add_user("root", admin=True)
        token = hub.token("ada")                        # a new API token for ada
        hub.headers(token)                              # {"Authorization": "token ..."}
        with hub.client(token) as http:                 # httpx.Client on hub.url
            http.get("services/ghostpanel/api/v1/whoami")
        hub.grant("@blue", "operator", "prod")          # gateway role bindings (the store)
        hub.revoke("@blue", "operator", "prod")
        hub.define_role("auditor", ["read", "logs"])
        hub.register_environment("prod", engine_url)    # before or after start
        hub.wait_for_gateway()                          # until the gateway answers
        hub.cli("hub", "user", "ls", "--json")          # `ghostpanel` with this home
        hub.log()                                       # what the hub printed (stdout, stderr)
        hub.part_pids()    # {"ghostpanel hub": PID, "jupyterhub":, "proxy":, "gateway":}
        hub.admin_headers  # the admin service's Authorization header (a hub admin)
        hub.stop()         # SIGTERM; returns the exit status (the fixtures do it)

    def test_custom(hub_factory) -> None:
        running = hub_factory(database_url=postgresql_url,           # a PostgreSQL store
                              environments={"prod": engine_url},     # registered first
                              extra_env={"GHOSTPANEL_HUB_PASSWORD": "demo-password"},
                              roles_toml='[[binding]]\ngroup = "blue"\n...')  # hub roles

``hub`` is module-scoped (one hub per test module: use user, group and environment
names of your own); ``hub_factory`` starts fresh hubs for one test. Both are defined
here as ``hub_fixture`` and ``hub_factory_fixture`` (``@pytest.fixture(name=...)``):
import those names into the test module for pytest to find them.

Each hub runs as ``ghostpanel --home HOME/ hub --port FREE`` in a fresh home under
``/tmp/gp-hub-*``, claimed like the engines' folders (``tests/orphans.py``): every
process of the hub (JupyterHub, the gateway, single-user servers) names that folder on
its command line, so a killed session's hubs are ended by the next session's sweep.
Teardown sends SIGTERM to the ``ghostpanel hub`` process, requires exit status 0, and
fails if the hub, its proxy, the gateway or any single-user server still runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel._procfs import command_line, is_running
from ghostpanel_kernel.hub._admin import HubAdmin
from ghostpanel_kernel.hub._config import free_port
from ghostpanel_kernel.hub._launch import PROXY_COMMAND, leftover_processes
from ghostpanel_kernel.hub._paths import HubPaths
from tests.orphans import claim

__all__ = ["HubStartError", "RunningHub", "hub_factory_fixture", "hub_fixture", "start_hub"]

#: Seconds a hub gets to answer (a loaded CI machine starts Python processes slowly).
START_TIMEOUT = 120.0
#: Seconds a hub gets to stop its proxy, gateway and servers after SIGTERM.
STOP_TIMEOUT = 60.0


class HubStartError(RuntimeError):
    """The hub did not come up; the message carries its log."""


@dataclass
class RunningHub:
    """One ``ghostpanel hub`` process and what tests do with it (module docstring)."""

    home: Path
    port: int
    process: subprocess.Popen[bytes]
    database_url: str
    environment: dict[str, str]
    #: PIDs seen while it ran (hub, proxy, gateway...): all must be gone at teardown.
    seen_pids: set[int] = field(default_factory=set)
    _admin: HubAdmin | None = None

    @property
    def url(self) -> str:
        """The proxy's URL, with a trailing ``/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        """The hub's REST API."""
        return f"{self.url}hub/api"

    @property
    def gateway_url(self) -> str:
        """The gateway through the proxy, with a trailing ``/``."""
        return f"{self.url}services/ghostpanel/"

    @property
    def paths(self) -> HubPaths:
        """The hub's state files."""
        return HubPaths(self.home)

    @property
    def admin(self) -> HubAdmin:
        """A REST client with the admin service's token."""
        if self._admin is None:
            self._admin = HubAdmin(self.api_url, self.paths.admin_token.read_text().strip())
        return self._admin

    @property
    def admin_headers(self) -> dict[str, str]:
        """The admin service's ``Authorization`` header (a hub admin)."""
        return self.headers(self.paths.admin_token.read_text().strip())

    def part_pids(self) -> dict[str, int]:
        """The PIDs of the running hub's parts: ``ghostpanel hub``, ``jupyterhub``,
        ``proxy`` and ``gateway`` (call :meth:`wait_for_gateway` first)."""
        state = self.paths.read_state()
        assert state is not None, "the hub wrote no hub.json"
        parts = {"ghostpanel hub": self.process.pid, "jupyterhub": state.hub_pid,
                 "proxy": int(self.paths.proxy_pid.read_text().split()[0])}
        marker = ["--home", f"{self.home}/", "gateway"]
        for pid in leftover_processes(self.paths):
            arguments = command_line(pid) or []
            if arguments[-3:] == marker:
                parts["gateway"] = pid
        self.seen_pids.update(parts.values())
        return parts

    # -- users and tokens --------------------------------------------------------

    def add_user(self, name: str, groups: Iterable[str] = (), admin: bool = False
                 ) -> dict[str, Any]:
        """Make hub user ``name`` (groups made as needed); returns the user's model."""
        model, _ = self.admin.add_user(name, admin=admin, groups=groups)
        return model

    def token(self, name: str, *, note: str | None = None,
              expires_in: int | None = None) -> str:
        """A new API token for user ``name``."""
        return self.admin.create_token(name, note=note, expires_in=expires_in)

    @staticmethod
    def headers(token: str) -> dict[str, str]:
        """The ``Authorization`` header for ``token``."""
        return {"Authorization": f"token {token}"}

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client on :attr:`url`, with ``token``'s header when given."""
        headers = self.headers(token) if token else {}
        return httpx.Client(base_url=self.url, headers=headers,
                            timeout=kwargs.pop("timeout", 30.0), **kwargs)

    # -- the gateway's store -----------------------------------------------------

    @contextlib.contextmanager
    def _roles(self) -> Iterator[Any]:
        from ghostpanel_kernel.gateway._roles import RoleStore
        from ghostpanel_kernel.store import open_database

        engine = open_database(self.database_url)
        try:
            yield RoleStore(engine)
        finally:
            engine.dispose()

    def grant(self, subject: str, role: str, env: str) -> None:
        """Bind ``role`` on ``env`` to ``subject`` (``"ada"`` or ``"@blue"``)."""
        with self._roles() as roles:
            roles.grant(subject, role, env)

    def revoke(self, subject: str, role: str, env: str) -> None:
        """Remove that binding."""
        with self._roles() as roles:
            roles.revoke(subject, role, env)

    def define_role(self, name: str, permissions: Iterable[str]) -> None:
        """Define custom role ``name``."""
        with self._roles() as roles:
            roles.define_role(name, permissions)

    def register_environment(self, name: str, url: str, **kwargs: Any) -> None:
        """Register environment ``name`` in the store the gateway reads (any time).

        Environments registered before the hub starts also get hub scopes
        (``custom:ghostpanel:<name>:<permission>``); later ones only gateway bindings.
        """
        register_environment(self.database_url, name, url, **kwargs)

    # -- running -----------------------------------------------------------------

    def cli(self, *args: str, check: bool = True, timeout: float = 60.0,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``ghostpanel ARGS`` with this hub's home; fails on a non-zero status
        unless ``check`` is False."""
        result = subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", *args],
                                env=self.environment, capture_output=True, text=True,
                                timeout=timeout, input=input_text, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"ghostpanel {' '.join(args)} exited {result.returncode}:"
                                 f"\n{result.stdout}\n{result.stderr}")
        return result

    def log(self) -> str:
        """What the hub printed so far: stdout, then stderr."""
        return "\n".join(path.read_text(errors="replace") if path.exists() else ""
                         for path in (self.home / "hub.out", self.home / "hub.err"))

    def wait_for_gateway(self, timeout: float = 60.0) -> None:
        """Wait until the gateway answers through the proxy (any status but 502/503/404
        from the proxy: the gateway's own 401 for no token counts)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._note_pids()
            try:
                response = httpx.get(f"{self.gateway_url}api/v1/openapi.json", timeout=5)
                if response.status_code < 500 and response.status_code != 404:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                last = repr(error)
            time.sleep(0.3)
        raise AssertionError(f"the gateway did not answer at {self.gateway_url} within "
                             f"{timeout:.0f} s (last: {last})\n{self.log()}")

    def _note_pids(self) -> None:
        self.seen_pids.update(leftover_processes(self.paths))

    def stop(self) -> int:
        """SIGTERM to ``ghostpanel hub``; waits and returns its exit status."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.process.poll() is None:
            self._note_pids()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def still_running(self) -> list[str]:
        """Command lines of this hub's processes that still run (none after a stop)."""
        pids = set(leftover_processes(self.paths))
        pids.update(pid for pid in self.seen_pids if is_running(pid))
        pids.discard(os.getpid())
        return [" ".join(command_line(pid) or [str(pid)]) for pid in sorted(pids)]


def register_environment(database_url: str, name: str, url: str, **kwargs: Any) -> None:
    """Register environment ``name`` at ``url`` in the store ``database_url``."""
    from ghostpanel_kernel.environments import EnvironmentRegistry

    registry = EnvironmentRegistry(database_url)
    try:
        registry.add(name, url, **kwargs)
    finally:
        registry.close()


def _wait_ready(running: RunningHub) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    out = running.home / "hub.out"
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise HubStartError(f"ghostpanel hub exited with {running.process.returncode} "
                                f"before it was ready:\n{running.log()}")
        if out.exists() and "ready" in out.read_text().splitlines():
            running._note_pids()
            return
        time.sleep(0.2)
    raise HubStartError(f"ghostpanel hub was not ready within {START_TIMEOUT:.0f} s:\n"
                        f"{running.log()}")


@contextlib.contextmanager
def start_hub(*, database_url: str | None = None,
              environments: Mapping[str, str] | None = None,
              extra_env: Mapping[str, str] | None = None,
              extra_args: Iterable[str] = (), roles_toml: str | None = None,
              check_stop: bool = True) -> Iterator[RunningHub]:
    """Start a hub in a fresh home; stop it and check that nothing is left on exit.

    Parameters
    ----------
    database_url
        The GhostPanel store (PostgreSQL...); SQLite in the home when None.
    environments
        Name -> engine URL, registered before the hub starts (so they get hub scopes).
    extra_env
        More environment variables for ``ghostpanel hub`` (and, through it, the gateway).
    extra_args
        More ``ghostpanel hub`` options (``--config FILE``).
    roles_toml
        The text of ``HOME/hub/roles.toml`` (static group -> role bindings, loaded as
        hub roles at start; ``docs/hub.md``).
    check_stop
        Require exit status 0 and no process left (tests of failures turn it off).
    """
    if shutil.which(PROXY_COMMAND) is None:
        pytest.fail(f"{PROXY_COMMAND} is not on PATH: run scripts/setup.sh")
    home = Path(tempfile.mkdtemp(prefix="gp-hub-", dir="/tmp"))
    claim(home)
    url = database_url or f"sqlite:///{home / 'ghostpanel.db'}"
    environment = {**os.environ, "GHOSTPANEL_HOME": str(home),
                   "GHOSTPANEL_DATABASE_URL": url, **(extra_env or {})}
    environment.pop("JUPYTERHUB_API_TOKEN", None)  # never a session's own hub token
    for name, engine_url in (environments or {}).items():
        register_environment(url, name, engine_url)
    if roles_toml is not None:
        HubPaths(home).ensure()
        HubPaths(home).roles_toml.write_text(roles_toml)
    port = free_port()
    with (home / "hub.out").open("wb") as out, (home / "hub.err").open("wb") as err:
        # `--home HOME/`: the trailing slash makes this process's command line name
        # "HOME/", which is what the orphan sweep looks for.
        process = subprocess.Popen(
            [sys.executable, "-m", "ghostpanel_kernel.cli", "--home", f"{home}/", "hub",
             "--port", str(port), *extra_args],
            env=environment, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    running = RunningHub(home=home, port=port, process=process, database_url=url,
                         environment=environment)
    try:
        _wait_ready(running)
        yield running
    finally:
        status = running.stop()
        left = running.still_running()
        log = running.log()
        for pid in leftover_processes(running.paths):  # never leave them, even on failure
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)
    if check_stop:
        assert status == 0, f"ghostpanel hub exited with {status}\n{log}"
        assert not left, f"still running after the hub stopped: {left}\n{log}"


@pytest.fixture(name="hub", scope="module")
def hub_fixture() -> Iterator[RunningHub]:
    """One hub for the test module (SQLite store in its home)."""
    with start_hub() as running:
        yield running


@pytest.fixture(name="hub_factory")
def hub_factory_fixture() -> Iterator[Callable[..., RunningHub]]:
    """Start hubs with :func:`start_hub`'s options; all are stopped after the test."""
    with contextlib.ExitStack() as stack:
        def start(**kwargs: Any) -> RunningHub:
            return stack.enter_context(start_hub(**kwargs))

        yield start

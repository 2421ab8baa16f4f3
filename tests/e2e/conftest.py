"""Fixtures for the end-to-end tests: notebooks run by nbclient, the dashboard served by
``ghostpanel up`` and driven by Chromium through Playwright.

Isolation: every Jupyter, IPython and XDG directory points into a temporary folder for
the whole e2e run (Voila, IPython and Chromium would otherwise write into the home
directory), on top of the session's private ``GHOSTPANEL_HOME`` (tests/conftest.py).

Browser: Debian's ``/usr/bin/chromium`` (no ``playwright install``), headless, with
every non-loopback request sent to a dead proxy (docs/jupyter-facts.md): a page that needs
the network fails here rather than quietly fetching from a CDN.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from ghostpanel_kernel import _procfs as procfs
from tests.orphans import claim
from tests.podman_service import PodmanService, mounts_under

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Chromium never proxies loopback; every other request goes to a dead port.
    "--proxy-server=http://127.0.0.1:9",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so that fixtures can tell how it went."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test that ``request`` belongs to has failed so far."""
    return any(getattr(getattr(request.node, f"report_{when}", None), "failed", False)
               for when in ("setup", "call"))


# -- isolation ---------------------------------------------------------------------------

_DIRECTORY_VARIABLES = ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR",
                        "JUPYTER_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
                        "XDG_DATA_HOME", "MPLCONFIGDIR")


@pytest.fixture(scope="session", autouse=True)
def jupyter_dirs() -> Iterator[Path]:
    """Temporary Jupyter/IPython/XDG directories for everything the e2e tests start."""
    base = Path(tempfile.mkdtemp(prefix="gp-jupyter-"))
    with pytest.MonkeyPatch.context() as patch:
        for name in _DIRECTORY_VARIABLES:
            folder = base / name.lower()
            folder.mkdir()
            patch.setenv(name, str(folder))
        # The test engine, not whatever the developer's default environment is.
        patch.delenv("GHOSTPANEL_ENV", raising=False)
        patch.delenv("GHOSTPANEL_ENGINE", raising=False)
        yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder each browser test saves its screenshot in (``tests/e2e/screenshots``)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


# -- environments ------------------------------------------------------------------------


@contextlib.contextmanager
def registered_environment(name: str, url: str, **options: Any) -> Iterator[str]:
    """``url`` registered as ``name`` in the session's registry while inside; ``name``.
    ``options`` go to ``EnvironmentRegistry.add`` (``token=``, ``tls=`` for an agent)."""
    from ghostpanel_kernel.environments import EnvironmentRegistry

    registry = EnvironmentRegistry(detect=lambda: None)
    try:
        registry.add(name, url, **options)
        yield name
    finally:
        with contextlib.suppress(Exception):  # a test may have removed it itself
            registry.remove(name)
        registry.close()


@pytest.fixture(scope="module")
def spare_engine() -> Iterator[PodmanService]:
    """A private engine of the module's own, empty: no image, no container.

    For the tests that need an engine with nothing on it (the dashboard's empty state:
    the demo containers then import their image from the host's busybox) or one they
    may stop and start again (an engine that goes away).
    """
    if shutil.which("podman") is None or os.geteuid() != 0:
        pytest.fail("the e2e tests start private rootful Podman engines: run `make test` "
                    "as root", pytrace=False)
    engine = PodmanService(claim(Path(tempfile.mkdtemp(prefix="gp-", dir="/tmp"))))
    try:
        engine.start()
        yield engine
    finally:
        try:
            engine.reset()
        finally:
            engine.stop()
        assert not mounts_under(engine.base_dir), f"still mounted under {engine.base_dir}"
        shutil.rmtree(engine.base_dir, ignore_errors=True)


# -- processes ---------------------------------------------------------------------------


def descendants(pid: int) -> dict[int, str]:
    """PID -> command line of every process below ``pid`` (that still runs)."""
    found: dict[int, str] = {}
    for entry in procfs.descendants(pid):
        arguments = procfs.command_line(entry.pid)
        if arguments is not None:
            found[entry.pid] = " ".join(arguments)
    return found


def kernel_pids(pid: int) -> list[int]:
    """The IPython kernels running below ``pid`` (a Voila or Jupyter server)."""
    return sorted(child for child, command in descendants(pid).items()
                  if "ipykernel_launcher" in command)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    return procfs.is_running(pid)


@dataclass
class Server:
    """A ``ghostpanel up`` (or ``lab``) process and what it printed."""

    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def kernels(self) -> list[int]:
        """PIDs of the kernels the server runs now."""
        return kernel_pids(self.pid)

    def wait_for_kernels(self, count: int, *, timeout: float = 20) -> list[int]:
        """Wait until exactly ``count`` kernels run; the PIDs (fails on timeout)."""
        deadline = time.monotonic() + timeout
        while len(kernels := self.kernels()) != count and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(kernels) == count, (f"{len(kernels)} kernels run under the server "
                                       f"after {timeout} s, expected {count}: {kernels}")
        return kernels

    def output(self) -> str:
        return "\n".join(self.lines)

    def interrupt(self, *, timeout: float = 40) -> int:
        """Send SIGINT (Ctrl-C) and wait; the exit status."""
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout=timeout)
        self._close_output()
        return status

    def _close_output(self) -> None:
        """Read the output to its end, then close the pipe."""
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()

    def ensure_stopped(self) -> None:
        """Stop the server and everything below it, whatever state it is in (teardown)."""
        below = descendants(self.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in below:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._close_output()


_URL = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")


def start_server(arguments: list[str], *, banner: str, timeout: float = 90,
                 extra_env: dict[str, str] | None = None) -> Server:
    """Run ``ghostpanel ARGUMENTS`` and wait for the line starting with ``banner``.

    The server's output is read by a thread into :attr:`Server.lines` for as long as
    it runs.
    """
    environment = dict(os.environ)
    environment.update(extra_env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "ghostpanel_kernel.cli", *arguments],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, env=environment, cwd=ROOT)
    server = Server(process)
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line.rstrip("\n"))
            match = _URL.search(line)
            if line.startswith(banner) and match:
                server.url = match.group(1)
                found.set()

    server.reader = threading.Thread(target=read, daemon=True)
    server.reader.start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            server.ensure_stopped()
            pytest.fail(f"`ghostpanel {' '.join(arguments)}` printed no {banner!r} line "
                        f"(exit status {process.poll()}):\n{server.output()}")
    return server



@contextlib.contextmanager
def serving(arguments: list[str], *, banner: str,
            extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """:func:`start_server` for the block; then Ctrl+C, which must exit 0.

    The server is stopped whatever happened, so that a failed exit status is reported
    and no server outlives its test.
    """
    server = start_server(arguments, banner=banner, extra_env=extra_env)
    try:
        yield server
    finally:
        try:
            assert server.interrupt() == 0, server.output()
        finally:
            server.ensure_stopped()

def wait_until(condition: Any, *, timeout: float = 20, interval: float = 0.2,
               message: str = "condition") -> Any:
    """Poll ``condition()`` until it is truthy; its value (fails on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


@contextlib.contextmanager
def voila_notebook(notebook: Path) -> Iterator[Server]:
    """``python -m voila NOTEBOOK`` with ``ghostpanel up``'s settings, on a free loopback
    port, for the block: a one-widget page of a test's own. Its settings go to
    ``voila-config/`` and its output to ``voila.log`` beside the notebook (a file: a pipe
    nobody reads could fill and block); ``server.lines`` holds that output afterwards.
    """
    import json
    import socket

    from ghostpanel_kernel.cli._up import _VOILA_CONFIG
    from tests.agent_process import free_port

    port = free_port()
    config = notebook.parent / "voila-config"
    config.mkdir(exist_ok=True)
    (config / "voila.json").write_text(json.dumps(_VOILA_CONFIG), encoding="utf-8")
    log = notebook.parent / "voila.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "voila", str(notebook), "--no-browser",
             "--Voila.ip=127.0.0.1", f"--Voila.port={port}", "--Voila.port_retries=0",
             f"--Voila.config_file_paths={config}"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            cwd=notebook.parent)
    server = Server(process)
    server.url = f"http://127.0.0.1:{port}/"
    try:
        def answers() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(lambda: answers() or process.poll() is not None, timeout=90,
                   message="Voila listening")
        assert process.poll() is None, \
            f"Voila ended with {process.returncode}:\n{log.read_text(errors='replace')}"
        yield server
    finally:
        server.ensure_stopped()  # Voila, and the kernel below it
        server.lines = log.read_text(encoding="utf-8", errors="replace").splitlines()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright, headless, every non-loopback request sent to
    the dead proxy (``CHROMIUM_ARGS``); one per test module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()

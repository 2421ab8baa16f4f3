"""``ghostpanel up`` (the dashboard, served by Voila) and ``ghostpanel lab`` (JupyterLab).

Both run their server as a child process (``python -m voila``, ``python -m jupyterlab``)
on 127.0.0.1 and stay in the foreground until Ctrl-C, SIGTERM or SIGHUP. The child runs
in its own session, so the terminal's Ctrl-C reaches only this process, which then stops
the server in order: SIGTERM to the server's PID (Voila and Jupyter Server shut their
kernels down on it), a wait, SIGKILL if it hangs, and finally SIGKILL to any process
the server had started that is still there (a kernel it failed to shut down). The
command then exits 0.

The operator's dashboard is served from *preheated* kernels (``--pool``, default 1):
Voila keeps that many kernels that have already run the dashboard's notebook up to its
``voila.utils.wait_for_request()``, and a page view takes one of them and gets its page
as soon as the cells after the wait have run; the pool refills behind it. The command
prints its URL once the first pooled kernel is ready (it says so through the file named
by ``GHOSTPANEL_VOILA_READY``). docs/dashboard-performance.md has the figures.

Nothing here imports Jupyter: the servers are other processes, so ``ghostpanel`` stays
light and its own ``--help`` fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import click

from .._procfs import descendants as _procfs_descendants
from .._procfs import read_process
from ._output import CommandError, warn

__all__ = ["dashboard_notebook", "lab", "notebooks_folder", "up", "voila_config"]

#: Seconds the server gets to stop (and stop its kernels) after SIGTERM.
_STOP_GRACE = 20.0
#: Seconds to wait for the server to listen.
_START_TIMEOUT = 60.0
#: Kernels a page left behind (a page closed without its unload beacon getting through)
#: and that nothing talks to any more are shut down after this many idle seconds.
_CULL_IDLE_SECONDS = 900
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_DASHBOARD = ("voila_apps", "ops_dashboard.ipynb")
#: The Voila apps `ghostpanel up --app` serves, by name.
APPS: dict[str, tuple[str, str]] = {
    "ops": _DASHBOARD,
    "fleet-health": ("voila_apps", "fleet_health.ipynb"),
}

# Voila's settings for the dashboard, written to a voila.json that only this server reads
# (a file, not `--Voila.tornado_settings={...}`: traitlets 5 warns about a dict given on
# the command line).
_VOILA_CONFIG: dict[str, Any] = {
    "Voila": {
        # voila#1458: the page's unload beacon carries no _xsrf token, is refused, and
        # every page view would leave its kernel running. The server listens on
        # 127.0.0.1 only.
        "tornado_settings": {"disable_check_xsrf": True},
    },
    "KernelManager": {
        # Unix sockets in Voila's private connection folder rather than TCP ports on
        # 127.0.0.1, which every local user could reach (ipykernel warns about TCP).
        "transport": "ipc",
    },
    "MappingKernelManager": {
        # A second guard: a kernel no page is connected to any more is shut down once
        # idle. A page that is open keeps its kernel (cull_connected is off).
        "cull_idle_timeout": _CULL_IDLE_SECONDS,
        "cull_interval": 60,
        "cull_connected": False,
    },
}
_NOTEBOOKS = ("notebooks",)
#: The apps whose notebook waits for its page request (``voila.utils.wait_for_request``)
#: and can therefore run in a preheated kernel; the others get a kernel per view.
_PREHEATED_APPS = frozenset({"ops"})
#: Kernels kept ready ahead of page views, by default.
DEFAULT_POOL = 1
#: Seconds Voila waits after a view took a pooled kernel before starting its
#: replacement: the new kernel's imports (a few CPU seconds) then do not compete with
#: the page that is being shown.
_FILL_DELAY = 2.0
#: JupyterLab extensions the dashboard's page does without (:func:`voila_config`).
_UNUSED_EXTENSIONS = ("@pyviz/jupyterlab_pyviz", "jupyterlab_pygments")
#: The environment variable naming the file a pooled kernel writes its PID to once it
#: is ready (``ghostpanel_widgets._preheat.READY_VARIABLE``).
_READY_VARIABLE = "GHOSTPANEL_VOILA_READY"
#: The most seconds the command waits, after the server listens, for the first pooled
#: kernel before printing its URL anyway (a notebook that failed never says "ready").
_POOL_READY_TIMEOUT = 45.0


def voila_config(pool: int) -> dict[str, Any]:
    """Voila's settings for ``ghostpanel up``: :data:`_VOILA_CONFIG`, with a pool of
    ``pool`` preheated kernels when ``pool`` is above 0.

    Parameters
    ----------
    pool
        Kernels Voila keeps started, with the notebook run up to its wait for the page
        request. 0: a kernel is started for each page view instead.

    Returns
    -------
    dict
        The content of the ``voila.json`` the server reads.

    Examples
    --------
    >>> voila_config(2)["VoilaConfiguration"]["default_pool_size"]
    2
    >>> "preheat_kernel" in voila_config(0)["VoilaConfiguration"]
    False
    """
    config: dict[str, Any] = json.loads(json.dumps(_VOILA_CONFIG))
    # Front-end extensions every page would fetch and run for nothing: code cells are
    # hidden (no highlighting needed), and PyViz's JupyterLab extension fails to load in
    # Voila's page anyway (it needs JupyterLab's document manager); the widgets bring
    # BokehJS and Panel themselves (widgets/_panel_loader.py).
    config["VoilaConfiguration"] = {"extension_denylist": list(_UNUSED_EXTENSIONS)}
    if pool > 0:
        # Preheating rules out progressive rendering and a prelaunch hook (Voila refuses
        # the mix); neither is set here.
        config["VoilaConfiguration"].update(preheat_kernel=True, default_pool_size=pool)
        config["VoilaKernelManager"] = {"fill_delay": _FILL_DELAY}
    return config


# -- where the dashboard and notebooks are ----------------------------------------------


def _shipped_path(*parts: str) -> Path:
    """A file or folder that ships beside the package (``voila_apps/``, ``notebooks/``).

    An editable install (``pip install -e .``, what ``make run`` does) finds it in the
    source tree above ``ghostpanel_kernel/``; a wheel built with them as data files finds
    it under ``<prefix>/share/ghostpanel/``.
    """
    package = Path(__file__).resolve().parents[1]
    candidates = [package.parent.joinpath(*parts),
                  Path(sys.prefix, "share", "ghostpanel").joinpath(*parts)]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise CommandError(
        f"cannot find {'/'.join(parts)} (looked in {', '.join(map(str, candidates))}): "
        "it ships with GhostPanel's source tree; install GhostPanel from a clone with "
        "`pip install -e .` (make run does)")


def dashboard_notebook(app: str = "ops") -> Path:
    """The notebook Voila serves for ``app`` (:data:`APPS`): by default
    ``voila_apps/ops_dashboard.ipynb``, the operator's dashboard."""
    return _shipped_path(*APPS[app])


def notebooks_folder() -> Path:
    """The folder of curated notebooks ``ghostpanel lab`` opens: ``notebooks/``."""
    return _shipped_path(*_NOTEBOOKS)


# -- ports ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _check_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server will bind: connections of an earlier server in TIME_WAIT do not
        # make the port busy, a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CommandError(f"port {port} on 127.0.0.1 is already in use: choose "
                                   "another with --port, or leave --port out for a free "
                                   "one") from None
            raise CommandError(f"cannot listen on 127.0.0.1:{port}: "
                               f"{error.strerror or error}") from None


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


# -- the server's process tree ----------------------------------------------------------


def descendants(pid: int) -> list[tuple[int, str]]:
    """The processes below ``pid`` (children, their children...) as (PID, start time).

    The start time tells a process from a later one that reuses its PID. Empty where
    there is no ``/proc``.
    """
    return [(entry.pid, entry.started) for entry in _procfs_descendants(pid)]


def _still_there(pid: int, started: str) -> bool:
    entry = read_process(pid)
    return entry is not None and entry.started == started


def _end_leftovers(processes: Sequence[tuple[int, str]]) -> None:
    """SIGKILL, by PID, whichever of ``processes`` outlived the server."""
    for pid, started in processes:
        if _still_there(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
            _still_there(pid, started) for pid, started in processes):
        time.sleep(0.05)


# -- running a server in the foreground -------------------------------------------------


class _Stop(Exception):
    """A stop signal arrived."""


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[list[int]]:
    """While inside, SIGINT/SIGTERM/SIGHUP raise :class:`_Stop`; yields the signals seen."""
    seen: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        if len(seen) == 1:  # a second Ctrl-C during the shutdown must not cut it short
            raise _Stop

    previous: dict[signal.Signals, Any] = {}
    for stop_signal in _STOP_SIGNALS:
        previous[stop_signal] = signal.signal(stop_signal, handler)
    try:
        yield seen
    finally:
        for stop_signal, old in previous.items():
            signal.signal(stop_signal, old)


def _stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and everything it started, by PID."""
    tree = descendants(process.pid)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_GRACE)
        except subprocess.TimeoutExpired:
            warn(f"the server (pid {process.pid}) did not stop within {_STOP_GRACE:.0f} s "
                 "of SIGTERM; killing it")
            tree = descendants(process.pid) or tree
            process.kill()
            process.wait()
    _end_leftovers(tree)


def _serve(command: Sequence[str], *, port: int, url: str, banner: str,
           environment: dict[str, str], cwd: Path, open_browser: bool,
           ready: Callable[[int], bool] = _listening) -> None:
    """Run ``command`` as a server until a stop signal, printing ``banner`` once it listens.

    Raises
    ------
    CommandError
        The server exited by itself, or never listened.
    """
    with _stop_signals_raise():
        process = subprocess.Popen(list(command), env=environment, cwd=cwd,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while not ready(port):
                status = process.poll()
                if status is not None:
                    raise CommandError(f"the server exited with status {status} before "
                                       "listening (its messages are above)")
                if time.monotonic() > deadline:
                    raise CommandError(f"the server did not listen on 127.0.0.1:{port} "
                                       f"within {_START_TIMEOUT:.0f} s")
                time.sleep(0.1)
            click.echo(banner)
            click.echo("Press Ctrl-C to stop.")
            if open_browser and _has_display():
                webbrowser.open(url)
            status = process.wait()
            raise CommandError(f"the server exited with status {status} (its messages "
                               "are above)")
        except _Stop:
            click.echo("Stopping...")
        finally:
            _stop_server(process)
    click.echo("Stopped.")


class _PoolReady:
    """``ready`` for :func:`_serve`: the server listens and its first pooled kernel has
    said it is ready in ``marker`` (or :data:`_POOL_READY_TIMEOUT` passed since the
    server listened)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.listened_at: float | None = None

    def __call__(self, port: int) -> bool:
        if self.listened_at is None:
            if not _listening(port):
                return False
            self.listened_at = time.monotonic()
        try:
            if self.marker.stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
        if time.monotonic() - self.listened_at > _POOL_READY_TIMEOUT:
            warn(f"no preheated kernel is ready {_POOL_READY_TIMEOUT:.0f} s after the "
                 "server started; pages may be slow (the server's messages are above)")
            return True
        return False


def _has_display() -> bool:
    """Whether a graphical browser could open (not on a headless server or over SSH)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _child_environment(env_name: str | None) -> dict[str, str]:
    environment = dict(os.environ)
    if env_name is not None:
        environment["GHOSTPANEL_ENV"] = env_name
    else:
        environment.pop("GHOSTPANEL_ENV", None)
    # The server's messages interleave with this command's in the order they happen.
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def _resolve_environment(env_name: str | None) -> str:
    """The name of the environment ``--env`` (or the default) means; raises if none."""
    from ..environments import session_registry  # SQLAlchemy: only when needed

    registry = session_registry()
    try:
        return registry.resolve(env_name).name
    finally:
        registry.close()


def _warn_if_unreachable(env_name: str) -> None:
    """Warn (not fail) when the environment's engine does not answer now."""
    import asyncio

    from ..environments import session_registry

    async def ping() -> None:
        registry = session_registry()
        try:
            spec = registry.get(env_name)
        finally:
            registry.close()
        async with spec.open(timeout=3, connect_timeout=3) as environment:
            await environment.ping()

    try:
        asyncio.run(ping())
    except Exception as error:  # any failure gets the same advice
        warn(f"environment {env_name!r} does not answer now ({error}); the dashboard "
             "says so, and recovers when the engine is back")


_PORT = click.option("--port", type=click.IntRange(1, 65535), metavar="N",
                     help="Port on 127.0.0.1 to serve on. Default: a free one.")
_ENV = click.option("--env", "env_name", metavar="NAME",
                    help="Environment to show. Default: the default environment "
                         "(ghostpanel env use).")
_NO_BROWSER = click.option("--no-browser", is_flag=True,
                           help="Do not open a web browser (none is opened without a "
                                "display anyway).")


@click.command()
@_PORT
@_ENV
@_NO_BROWSER
@click.option("--app", type=click.Choice(sorted(APPS)), default="ops", show_default=True,
              help="Which dashboard: ops (containers, logs, stats...) or fleet-health "
                   "(metrics history, right-sizing, leaks, restart loops, alerts).")
@click.option("--pool", type=click.IntRange(0, 32), default=DEFAULT_POOL, show_default=True,
              metavar="N",
              help="Kernels kept ready ahead of page views, each with the dashboard "
                   "already built (about 180 MiB each): a view takes one and the pool "
                   "refills. 0: start a kernel per view (slower pages). The ops "
                   "dashboard only.")
@click.option("--shared", is_flag=True,
              help="Watch-only viewers in ONE Panel server process (the live container "
                   "table, a few MiB per viewer instead of a kernel each).")
def up(port: int | None, env_name: str | None, no_browser: bool, app: str,
       pool: int, shared: bool = False) -> None:
    """Serve the GhostPanel dashboard on 127.0.0.1 until Ctrl-C.

    Containers, logs, stats, images, volumes, networks and events of one environment,
    with a picker for the others; served by Voila from voila_apps/ops_dashboard.ipynb.
    ``--app fleet-health`` serves voila_apps/fleet_health.ipynb instead.
    """
    if app not in _PREHEATED_APPS:
        pool = 0
    notebook = dashboard_notebook(app)
    chosen = _resolve_environment(env_name)
    _warn_if_unreachable(chosen)
    if port is None:
        port = _free_port()
    else:
        _check_port(port)
    if shared:
        from ._up_shared import up_shared

        up_shared(chosen, port, open_browser=not no_browser)
        return
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory(prefix="ghostpanel-voila-") as config_dir:
        Path(config_dir, "voila.json").write_text(json.dumps(voila_config(pool), indent=2),
                                                  encoding="utf-8")
        environment = _child_environment(chosen)
        ready: Callable[[int], bool] = _listening
        if pool > 0:
            marker = Path(config_dir, "ready")
            environment[_READY_VARIABLE] = str(marker)
            ready = _PoolReady(marker)
        command = [
            sys.executable, "-m", "voila", str(notebook),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--Voila.port={port}",
            "--Voila.port_retries=0",  # the port given or printed, never a neighbour
            f"--Voila.config_file_paths={config_dir}",
            "--Voila.log_level=WARN",
        ]
        _serve(command, port=port, url=url, banner=f"GhostPanel dashboard: {url}",
               environment=environment, cwd=notebook.parent,
               open_browser=not no_browser, ready=ready)


@click.command()
@_PORT
@_ENV
@_NO_BROWSER
@click.option("--dir", "folder", metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder to open. Default: GhostPanel's curated notebooks.")
def lab(port: int | None, env_name: str | None, no_browser: bool,
        folder: Path | None) -> None:
    """Open JupyterLab on GhostPanel's notebooks (on 127.0.0.1, with a token) until Ctrl-C.

    The notebooks use --env's environment (default: the default environment). The
    widgets need no set-up cell: each kernel sends the browser the scripts they need,
    inline, from the installed packages (nothing from the Internet).
    """
    folder = notebooks_folder() if folder is None else folder.resolve()
    if env_name is not None:
        env_name = _resolve_environment(env_name)
    if port is None:
        port = _free_port()
    else:
        _check_port(port)
    token = secrets.token_urlsafe(24)
    url = f"http://127.0.0.1:{port}/lab?token={token}"
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={folder}",
        f"--IdentityProvider.token={token}",
        "--log-level=WARN",
        "--LabApp.log_level=WARN",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # make run works as root (Podman's rootful engine); Jupyter refuses root unless told.
        command.append("--allow-root")
    _serve(command, port=port, url=url, banner=f"GhostPanel notebooks: {url}",
           environment=_child_environment(env_name), cwd=folder,
           open_browser=not no_browser)

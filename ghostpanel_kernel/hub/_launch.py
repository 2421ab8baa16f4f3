"""``ghostpanel hub``: run JupyterHub with GhostPanel's configuration in the foreground.

The hub runs as a child process in its own session, with ``$GHOSTPANEL_HOME/hub`` as
its working directory (where its state lands). This process

* refuses to start when a hub of the same home still runs: a second JupyterHub would
  find the first one's proxy through the shared PID file and kill it;
* prints the URL, the demo password and how to add users once the hub answers;
* forwards SIGINT and SIGTERM to the hub (which stops its proxy, the gateway and the
  single-user servers) and, once the hub has exited, ends anything of this home's that
  it left behind (a proxy or a gateway), so that stopping it leaves nothing running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import httpx
import platformdirs

from .._exceptions import GhostPanelError
from .._procfs import command_line, is_running, process_ids
from ._config import GATEWAY_SERVICE, HubPorts, gateway_command, shipped
from ._paths import HubPaths, HubState

__all__ = ["PROXY_COMMAND", "HubError", "HubRunning", "default_config", "leftover_processes",
           "run_hub", "running_hub"]

#: The proxy JupyterHub starts; npm's package of the same name.
PROXY_COMMAND = "configurable-http-proxy"
#: Seconds the hub gets to stop its proxy, services and servers after SIGTERM.
STOP_GRACE = 30.0
#: Seconds to wait for the hub's API to answer before saying it did not start.
START_TIMEOUT = 120.0


class HubError(GhostPanelError):
    """``ghostpanel hub`` cannot start or run; the message says why and what to do."""


class HubRunning(HubError):
    """A hub of this home already runs."""


def default_config() -> Path:
    """``hub_config/jupyterhub_config.py``, as GhostPanel ships it (:func:`shipped`)."""
    return shipped("hub_config") / "jupyterhub_config.py"


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _names(pid: int, *needles: str) -> bool:
    """Whether ``pid`` runs and its command line contains every one of ``needles``."""
    arguments = command_line(pid)
    if not arguments or not is_running(pid):
        return False
    joined = " ".join(arguments)
    return all(needle in joined for needle in needles)


def _runs_hub_command(pid: int) -> bool:
    """Whether ``pid`` runs ``ghostpanel ... hub`` (``hub`` as an argument of its own)."""
    arguments = command_line(pid)
    return bool(arguments) and "hub" in (arguments or []) and is_running(pid)


def running_hub(paths: HubPaths) -> str | None:
    """Why a hub of ``paths``' home counts as running (one line), or None.

    Checked: the ``ghostpanel hub`` process of ``hub.json``, JupyterHub's PID file and
    the proxy's PID file; a PID counts only when its process still runs the program the
    file is about (PIDs are reused).
    """
    state = paths.read_state()
    if state is not None and state.pid != os.getpid() and _runs_hub_command(state.pid):
        return f"`ghostpanel hub` (PID {state.pid}) serves {state.url} from {paths.folder}"
    hub = _pid_in(paths.hub_pid)
    if hub is not None and _names(hub, "jupyterhub"):
        return f"JupyterHub (PID {hub}) runs from {paths.folder}"
    proxy = _pid_in(paths.proxy_pid)
    if proxy is not None and _names(proxy, PROXY_COMMAND):
        return f"its proxy (PID {proxy}) still runs ({paths.proxy_pid})"
    return None


def leftover_processes(paths: HubPaths) -> list[int]:
    """PIDs of processes of this home's hub other than this one: the jupyterhub child,
    its proxy, the gateway and single-user servers (their command lines name the home's
    hub folder, or the gateway's ``--home HOME gateway``)."""
    folder = f"{paths.folder}/"
    gateway = tuple(gateway_command(paths.home)[-3:])
    found = []
    # The proxy's command line names no folder: JupyterHub's PID file says which it is.
    proxy = _pid_in(paths.proxy_pid)
    if proxy is not None and _names(proxy, PROXY_COMMAND):
        found.append(proxy)
    for pid in process_ids():
        if pid == os.getpid():
            continue
        arguments = command_line(pid)
        if not arguments or not is_running(pid):
            continue
        if pid in found:
            continue
        if any(folder in argument or argument == str(paths.folder) for argument in arguments):
            found.append(pid)
        elif any(tuple(arguments[i:i + 3]) == gateway for i in range(len(arguments))):
            found.append(pid)
    return found


def _end(pids: list[int], grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while any(is_running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)


@contextlib.contextmanager
def _home_lock(paths: HubPaths) -> Iterator[None]:
    """Hold ``hub.lock`` for the life of this process: two ``ghostpanel hub`` started
    at the same moment on one home cannot both pass the PID checks."""
    descriptor = os.open(paths.folder / "hub.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HubRunning(f"another `ghostpanel hub` is starting or running from "
                             f"{paths.folder}") from None
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


@dataclass
class _Stop:
    """The signal that asked the hub to stop (0: none yet)."""

    signal: int = 0


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _announce(out: Callable[[str], None], ports: HubPorts, paths: HubPaths) -> None:
    if os.environ.get("GHOSTPANEL_HUB_PASSWORD"):
        password = "the value of GHOSTPANEL_HUB_PASSWORD ("
    else:
        password = f"{paths.password.read_text().strip()}  (kept in {paths.password};"
    # The commands must name the same home as this hub, unless it is the default one.
    default_home = Path(platformdirs.user_data_dir("ghostpanel"))
    home = "" if paths.home == default_home else f"--home {paths.home} "
    out(f"JupyterHub for GhostPanel: {ports.public_url}")
    out(f"  gateway:   {ports.local_url}services/{GATEWAY_SERVICE}/")
    out(f"  password:  {password} every hub user logs in with it)")
    out(f"  add users: ghostpanel {home}hub user add NAME [--admin] [--group TEAM]")
    out(f"  tokens:    ghostpanel {home}hub token NAME")
    out(f"  state:     {paths.folder}")
    out("ready")


def run_hub(paths: HubPaths, ports: HubPorts, *, config: Path | None = None,
            out: Callable[[str], None] = print, log: IO[str] | None = None) -> int:
    """Run the hub until it exits or SIGINT/SIGTERM arrives; returns the exit status.

    Parameters
    ----------
    paths
        The home's hub files.
    ports
        Where the hub, its API, its proxy and the gateway listen.
    config
        The JupyterHub configuration file; :func:`default_config` when None.
    out
        Where the start-up lines go (the last one is ``ready``).
    log
        Where JupyterHub's own log goes; this process's stderr when None.

    Returns
    -------
    int
        0 after a requested stop (or a clean exit), else the hub's exit status.

    Raises
    ------
    HubError
        No proxy on PATH, no configuration file, the hub did not start.
    HubRunning
        A hub of this home runs already.
    """
    config = default_config() if config is None else config
    if shutil.which(PROXY_COMMAND) is None:
        raise HubError(f"{PROXY_COMMAND} is not on PATH: JupyterHub needs it. Install it "
                       "with scripts/setup.sh (it runs `npm install -g "
                       "configurable-http-proxy`, installing Node.js first if needed)")
    if not config.is_file():
        raise HubError(f"no JupyterHub configuration at {config} (pass --config FILE)")
    paths.ensure()
    _refuse_running(paths)  # before the lock: its message names the PID and URL
    with _home_lock(paths):
        _refuse_running(paths)  # again: one may have started while we took the lock
        return _run(paths, ports, config, out, log)


def _refuse_running(paths: HubPaths) -> None:
    reason = running_hub(paths)
    if reason is not None:
        raise HubRunning(f"a hub already runs for this home: {reason}. Stop it first "
                         "(Ctrl-C in its terminal, or SIGTERM to its PID): two hubs on "
                         "one folder would share, and kill, one proxy")


def _run(paths: HubPaths, ports: HubPorts, config: Path, out: Callable[[str], None],
         log: IO[str] | None) -> int:
    environment = {**os.environ, **ports.to_environment(), "GHOSTPANEL_HOME": str(paths.home)}
    command = [sys.executable, "-m", "jupyterhub", "-f", str(config),
               f"--JupyterHub.pid_file={paths.hub_pid}"]
    stop = _Stop()
    # Its own session: a Ctrl-C in the terminal reaches only this process, which
    # forwards one SIGTERM (JupyterHub's clean shutdown) instead of two signals racing.
    # Its log (and the proxy's, which writes to stdout) goes to stderr, keeping stdout
    # for the lines above. umask 077: the hub's database and PID files are private.
    child = subprocess.Popen(command, cwd=paths.folder, env=environment,
                             start_new_session=True, stdin=subprocess.DEVNULL,
                             stdout=log or sys.stderr, stderr=log or sys.stderr,
                             umask=0o077)

    def forward(signum: int, _frame: FrameType | None) -> None:
        stop.signal = signum
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        paths.write_state(HubState(pid=os.getpid(), hub_pid=child.pid, url=ports.public_url,
                                   api_url=f"{ports.local_url}hub/api",
                                   gateway_url=f"{ports.local_url}services/{GATEWAY_SERVICE}/",
                                   gateway_port=ports.gateway_port))
        status = _supervise(child, ports, paths, stop, out)
    finally:
        if child.poll() is None:  # an error in this process: do not leave the hub running
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        _end(leftover_processes(paths), grace=5.0)
        paths.clear_state()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _supervise(child: subprocess.Popen[bytes], ports: HubPorts, paths: HubPaths, stop: _Stop,
               out: Callable[[str], None]) -> int:
    api = f"{ports.local_url}hub/api/"
    deadline = time.monotonic() + START_TIMEOUT
    ready = False
    while child.poll() is None:
        if not ready and not stop.signal:
            if _answers(api):
                ready = True
                _announce(out, ports, paths)
            elif time.monotonic() > deadline:
                child.send_signal(signal.SIGTERM)
                child.wait(STOP_GRACE)
                raise HubError(f"JupyterHub did not answer at {api} within "
                               f"{START_TIMEOUT:.0f} s (its log is above)")
        if stop.signal:
            try:
                child.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                child.kill()
            break
        time.sleep(0.2)
    status = child.wait()
    if stop.signal:
        return 0
    if not ready:
        raise HubError(f"JupyterHub exited with status {status} before it answered "
                       "(its log is above)")
    return status

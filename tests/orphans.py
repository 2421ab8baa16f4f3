"""What a killed test session left behind: its private engines and registries.

A session's fixtures stop their engines and registries at teardown, and teardown runs
only when pytest ends by itself. A run killed from outside (a CI or tool timeout, a
closed terminal) leaves its Podman services, their containers (conmon, the container's
own processes) and overlay mounts under ``/tmp/gp-*``, and they run until the machine
reboots.

Each base directory is therefore *claimed* when it is made: it holds the PID of the
pytest process that owns it. At the start of a session :func:`sweep_orphans` removes
every claimed directory whose owner is gone. A directory whose owner still runs (a
session going on beside this one) is never touched, nor one that was never claimed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

from ghostpanel_kernel._procfs import command_line, process_ids
from tests.podman_service import PodmanService, mounts_under

__all__ = ["OWNER_FILE", "claim", "processes_using", "remove_orphan", "sweep_orphans"]

#: The file, in a base directory, naming the PID of the session that owns it.
OWNER_FILE = "owner.pid"


def claim(base_dir: Path) -> Path:
    """Mark ``base_dir`` as this process's; returns ``base_dir``."""
    (base_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
    return base_dir


def processes_using(base_dir: Path) -> list[tuple[int, str]]:
    """(PID, command line) of the processes whose command line names ``base_dir``:
    an engine's service, conmon, ``container cleanup``; a registry's ``serve``."""
    needle = f"{base_dir}/"
    found = []
    for pid in process_ids():
        arguments = command_line(pid)  # None: the process ended while we looked
        if arguments and any(needle in argument for argument in arguments):
            found.append((pid, " ".join(arguments)))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _owner(base_dir: Path) -> int | None:
    try:
        return int((base_dir / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None


def _end_processes(base_dir: Path, *, grace: float = 5.0) -> None:
    """SIGTERM to every process naming ``base_dir``, SIGKILL to those still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, _ in processes_using(base_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while processes_using(base_dir) and time.monotonic() < deadline:
            time.sleep(0.05)


def remove_orphan(base_dir: Path) -> None:
    """Remove an abandoned engine or registry directory and everything it runs.

    The engine's containers are removed through the CLI first (ending a service or
    conmon does not end a container's own processes), then the remaining processes
    are ended, mounts unmounted, and the directory deleted, never through a mount.

    Raises
    ------
    RuntimeError
        If something stays mounted or running under ``base_dir``.
    """
    engine = PodmanService(base_dir) if (base_dir / "root").exists() else None
    if engine is not None:
        with contextlib.suppress(RuntimeError, OSError):
            engine.reset()  # what fails here is tried again below, after the kill
    _end_processes(base_dir)
    if engine is not None:
        engine.reset()
    left = [command for _, command in processes_using(base_dir)]
    mounted = mounts_under(base_dir)
    if left or mounted:
        raise RuntimeError(f"cannot clean {base_dir}: processes {left}, mounts {mounted}")
    shutil.rmtree(base_dir)


def sweep_orphans(parent: Path = Path("/tmp")) -> tuple[list[Path], list[str]]:
    """Remove the claimed ``gp-*`` directories under ``parent`` whose owner is gone.

    Returns
    -------
    removed : list of Path
        The directories removed.
    failures : list of str
        Why others could not be (one line each); they are left as they are.
    """
    removed, failures = [], []
    for owner_file in sorted(parent.glob(f"gp-*/{OWNER_FILE}")):
        base_dir = owner_file.parent
        owner = _owner(base_dir)
        if owner is None or _alive(owner):
            continue
        try:
            remove_orphan(base_dir)
        except RuntimeError as error:
            failures.append(str(error))
        else:
            removed.append(base_dir)
    return removed, failures

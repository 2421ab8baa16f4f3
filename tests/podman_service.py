"""Start and stop a private Podman Engine API service.

The test fixtures and the benchmarks need a real engine that speaks the
Docker-compatible Engine API on a unix socket. :class:`PodmanService` runs
``podman system service`` against its own storage under one base directory, so that
several engines can run side by side on one host, each with its own containers,
images, volumes, networks and event log, and none of them touches the host's default
Podman storage::

    base_dir/
      containers.conf    this engine's whole Podman configuration (CONTAINERS_CONF)
      registries.conf    only with ``insecure_registries`` (CONTAINERS_REGISTRIES_CONF)
      root/  run/  tmp/  storage root, run root, libpod tmp dir (locks, events log)
      networks/          network definitions (``--network-config-dir``)
      podman.sock        the Engine API socket
      podman.log         the service's output
      podman.pid         the service's process id

A test harness, not part of the library: :meth:`PodmanService.reset` removes every
container, image, volume and network of its engine. The tests and the benchmarks
(``bench/``) import it from here; the wheel does not ship it. The demo image it imports
comes from :mod:`ghostpanel_kernel._busybox`, which the library needs for its demo too.

Example
-------
>>> import tempfile
>>> from pathlib import Path
>>> archive = build_busybox_archive(Path(tempfile.mkdtemp()) / "busybox.tar")  # doctest: +SKIP
>>> with PodmanService(Path(tempfile.mkdtemp(prefix="gp-"))) as engine:  # doctest: +SKIP
...     image_id = engine.import_image(archive)
...     print(engine.url)
unix:///tmp/gp-.../podman.sock
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from ghostpanel_kernel._busybox import BUSYBOX_REFERENCE, build_busybox_archive

__all__ = [
    "BUSYBOX_REFERENCE",
    "PodmanCommandError",
    "PodmanService",
    "build_busybox_archive",
    "mounts_under",
]

# A registry host (a name, an IPv4 address or a bracketed IPv6 one) and an optional port.
_REGISTRY_LOCATION = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")

# sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included.
_MAX_SOCKET_PATH = 107

# The busybox image behaves like Docker's: without a command it runs a shell.
_BUSYBOX_CHANGES = ('CMD ["sh"]',)

# Variables that would turn the podman CLI into a remote client of another engine.
_REMOTE_VARIABLES = ("CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINER_SSHKEY")

# A private engine must not depend on the host's containers.conf: Podman reads only the
# file named by CONTAINERS_CONF when that variable is set. runc, not crun, and no default
# ulimits: crun fails on hybrid cgroup hosts ("cgroups in hybrid mode not supported"), and
# raising rlimits fails in unprivileged sandboxes.
_CONTAINERS_CONF = """\
# Written by tests/podman_service.py for one private engine.
[containers]
default_ulimits = []

[engine]
runtime = "{runtime}"
events_logger = "file"
# Podman keeps an exec session's conmon alive 300 s after it exits; 2 s still lets
# GET /exec/{{id}}/json read the exit code and leaves no processes behind at teardown.
exit_command_delay = 2
"""

# containers/image reads registries.conf once per process, at the first pull or short-name
# lookup, and keeps it for the life of the service: the file must be final before the
# engine starts. Plain HTTP on loopback is what a private test registry speaks.
_REGISTRIES_CONF_HEADER = """\
# Written by tests/podman_service.py for one private engine.
"""
_INSECURE_REGISTRY = """
[[registry]]
location = {location}
insecure = true
"""

_INSTALL_HINT = "run `make test` (or `scripts/setup.sh`) as root to install Podman"


class PodmanCommandError(subprocess.CalledProcessError):
    """A podman CLI command exited with a non-zero status.

    ``str(error)`` shows the command and what podman wrote to stderr, which
    :class:`subprocess.CalledProcessError` leaves out.
    """

    def __str__(self) -> str:
        command = " ".join(map(str, self.cmd)) if isinstance(self.cmd, list) else str(self.cmd)
        stderr = (self.stderr or "").strip() if isinstance(self.stderr, str) else ""
        return f"`{command}` exited with status {self.returncode}: {stderr or '(no stderr)'}"


def _checked_registry(location: str) -> str:
    """Return ``location`` if it is a ``host[:port]`` that registries.conf can hold."""
    if not _REGISTRY_LOCATION.fullmatch(location):
        raise ValueError(
            f"insecure registry {location!r} is not a host[:port] such as 127.0.0.1:5000"
        )
    return location


def _unescape_mount_field(field: str) -> str:
    r"""Decode the octal escapes (``\040`` for a space, ...) of a /proc/mounts field."""
    if "\\" not in field:
        return field
    return field.encode("latin-1").decode("unicode_escape")


def mounts_under(path: Path) -> list[str]:
    """List the mount points at or below ``path``, read from ``/proc/self/mounts``.

    Parameters
    ----------
    path
        A directory; symbolic links in it are resolved first, as the kernel does.

    Returns
    -------
    list of str
        Mount points in the order the kernel lists them (parents before children).
    """
    base = os.path.realpath(path)
    prefix = base.rstrip("/") + "/"
    found = []
    with open("/proc/self/mounts", encoding="utf-8", errors="surrogateescape") as table:
        for line in table:
            fields = line.split()
            if len(fields) < 2:
                continue
            point = _unescape_mount_field(fields[1])
            if point == base or point.startswith(prefix):
                found.append(point)
    return found


class _UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection over a unix socket, for pings and small reads."""

    def __init__(self, socket_path: Path, *, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(os.fspath(self._socket_path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _http_get(socket_path: Path, path: str, *, timeout: float) -> tuple[int, bytes]:
    connection = _UnixHTTPConnection(socket_path, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _answers_ping(socket_path: Path, *, timeout: float = 2.0) -> bool:
    try:
        status, body = _http_get(socket_path, "/_ping", timeout=timeout)
    except (OSError, http.client.HTTPException):
        return False
    return status == 200 and body.strip() == b"OK"


class PodmanService:
    """A private ``podman system service`` with its own storage under ``base_dir``.

    Parameters
    ----------
    base_dir
        Directory that holds everything of this engine (created if missing). Keep it
        short: the socket ``base_dir/podman.sock`` must fit in 107 bytes.
    podman
        The podman executable, a name looked up on ``PATH`` or a path.
    runtime
        The OCI runtime the engine runs containers with.
    insecure_registries
        Registries (``host:port``) the engine may reach over plain HTTP, or with a
        certificate it cannot verify. When given, the engine reads its own
        ``base_dir/registries.conf`` that lists them, instead of the host's
        ``/etc/containers/registries.conf`` (the drop-ins in ``registries.conf.d``
        still apply). The Docker-compatible pull, ``POST /images/create``, has no
        per-request TLS switch in Podman 4.3: this is the only way to pull from such
        a registry through the Engine API.

    Raises
    ------
    ValueError
        If the socket path would be too long for a unix socket, or a registry is not
        a ``host[:port]``.

    Examples
    --------
    >>> engine = PodmanService(Path("/tmp/gp-demo"))  # doctest: +SKIP
    >>> engine.start()  # doctest: +SKIP
    >>> engine.import_image(build_busybox_archive(Path("/tmp/busybox.tar")))  # doctest: +SKIP
    >>> engine.podman("run", "--rm", BUSYBOX_REFERENCE, "echo", "hi").stdout  # doctest: +SKIP
    'hi\\n'
    >>> engine.reset(); engine.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        podman: str = "podman",
        runtime: str = "runc",
        insecure_registries: Sequence[str] = (),
    ) -> None:
        self._base_dir = Path(base_dir).absolute()
        self._socket_path = self._base_dir / "podman.sock"
        if len(os.fsencode(self._socket_path)) > _MAX_SOCKET_PATH:
            raise ValueError(
                f"socket path {self._socket_path} is longer than {_MAX_SOCKET_PATH} bytes, "
                "the limit of a unix socket address: choose a shorter base_dir"
            )
        self._podman = podman
        self._runtime = runtime
        self._insecure_registries = tuple(map(_checked_registry, insecure_registries))
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PodmanService {self.url} {state}>"

    @property
    def base_dir(self) -> Path:
        """Directory holding this engine's storage, socket, configuration and log."""
        return self._base_dir

    @property
    def socket_path(self) -> Path:
        """Path of the Engine API unix socket."""
        return self._socket_path

    @property
    def url(self) -> str:
        """The engine's address for clients, ``unix:///.../podman.sock``."""
        return f"unix://{self._socket_path}"

    @property
    def insecure_registries(self) -> tuple[str, ...]:
        """Registries this engine reaches over plain HTTP (see the constructor)."""
        return self._insecure_registries

    @property
    def registries_conf(self) -> Path | None:
        """This engine's own ``registries.conf``, or None when it reads the host's."""
        return self._base_dir / "registries.conf" if self._insecure_registries else None

    @property
    def log_path(self) -> Path:
        """File that receives the service's stdout and stderr (appended across starts)."""
        return self._base_dir / "podman.log"

    @property
    def pid(self) -> int | None:
        """Process id of the running service, or None when it is not running."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the service process started by :meth:`start` is still alive."""
        return self._process is not None and self._process.poll() is None

    def _executable(self) -> str:
        found = shutil.which(self._podman)
        if found is None:
            raise RuntimeError(f"podman executable {self._podman!r} not found: {_INSTALL_HINT}")
        return found

    def _global_arguments(self) -> list[str]:
        base = self._base_dir
        return [
            "--root",
            os.fspath(base / "root"),
            "--runroot",
            os.fspath(base / "run"),
            # libpod's tmp dir holds the events log and the exit files: one per engine,
            # so that GET /events of one engine never shows another engine's events.
            "--tmpdir",
            os.fspath(base / "tmp"),
            "--events-backend",
            "file",
            # Networks are files in this directory; the host default would share them.
            "--network-config-dir",
            os.fspath(base / "networks"),
        ]

    def _environment(self) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if k not in _REMOTE_VARIABLES}
        environment["CONTAINERS_CONF"] = os.fspath(self._base_dir / "containers.conf")
        if self.registries_conf is not None:
            environment["CONTAINERS_REGISTRIES_CONF"] = os.fspath(self.registries_conf)
        return environment

    def _prepare_base_dir(self) -> None:
        for name in ("root", "run", "tmp", "networks"):
            (self._base_dir / name).mkdir(parents=True, exist_ok=True)
        (self._base_dir / "containers.conf").write_text(
            _CONTAINERS_CONF.format(runtime=self._runtime), encoding="utf-8"
        )
        if self.registries_conf is not None:
            entries = (
                # A JSON string is a valid TOML basic string for these characters.
                _INSECURE_REGISTRY.format(location=json.dumps(location))
                for location in self._insecure_registries
            )
            self.registries_conf.write_text(
                _REGISTRIES_CONF_HEADER + "".join(entries), encoding="utf-8"
            )

    def ping(self, *, timeout: float = 2.0) -> bool:
        """Tell whether ``GET /_ping`` on the socket answers ``OK``.

        Parameters
        ----------
        timeout
            Seconds to wait for the connection and the answer.
        """
        return _answers_ping(self._socket_path, timeout=timeout)

    def api_get(self, path: str, *, timeout: float = 10.0) -> tuple[int, bytes]:
        """Send one ``GET`` to the engine and read the whole answer.

        For checks in tests and scripts, not a client: GhostPanel's own client lives
        in :mod:`ghostpanel_kernel.engine`.

        Parameters
        ----------
        path
            Request target, for example ``/v1.41/containers/json?all=1``.
        timeout
            Seconds to wait for the connection and each read.

        Returns
        -------
        tuple of (int, bytes)
            The HTTP status and the body.

        Raises
        ------
        OSError
            If the socket does not accept the connection.
        """
        return _http_get(self._socket_path, path, timeout=timeout)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def start(self, timeout: float = 20) -> None:
        """Start the service and wait until ``GET /_ping`` answers on its socket.

        The service runs in its own session and process group, so that a Ctrl-C in
        the terminal that started it does not reach it; :meth:`stop` ends it.

        Parameters
        ----------
        timeout
            Seconds to wait for the first answer.

        Raises
        ------
        RuntimeError
            If podman is missing, this object's service already runs, another engine
            already answers on the socket, or the service exits or stays silent; the
            message ends with the tail of the service's log.
        """
        if self.running:
            raise RuntimeError(f"{self!r} is already started")
        executable = self._executable()
        if self._socket_path.exists():
            if self.ping():
                raise RuntimeError(
                    f"{self._socket_path} is already in use: an engine answers there, so "
                    f"{self._base_dir} belongs to another service; stop it or choose another "
                    "base_dir"
                )
            # A socket left by a service that was killed: podman would reuse the path.
            self._socket_path.unlink()
        self._prepare_base_dir()
        command = [executable, *self._global_arguments(), "system", "service", "--time=0", self.url]
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.ping(timeout=1.0):
            status = process.poll()
            if status is not None:
                raise RuntimeError(
                    f"podman system service exited with status {status} before answering on "
                    f"{self._socket_path}; last lines of {self.log_path}:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                _end_process(process, grace=5.0)
                raise RuntimeError(
                    f"podman system service did not answer GET /_ping on {self._socket_path} "
                    f"within {timeout} s; last lines of {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(0.02)
        self._process = process
        (self._base_dir / "podman.pid").write_text(f"{process.pid}\n", encoding="ascii")

    def podman(
        self, *args: str, check: bool = True, timeout: float | None = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run the podman CLI on this engine's storage (the service need not run).

        Parameters
        ----------
        *args
            Arguments after the global options, for example ``"ps", "-a"``.
        check
            Raise :class:`PodmanCommandError` when the command fails.
        timeout
            Seconds before the command is killed (:class:`subprocess.TimeoutExpired`).

        Returns
        -------
        subprocess.CompletedProcess of str
            With ``stdout`` and ``stderr`` captured as text.
        """
        command = [self._executable(), *self._global_arguments(), *args]
        if not (self._base_dir / "containers.conf").exists():
            self._prepare_base_dir()
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self._environment(),
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise PodmanCommandError(result.returncode, command, result.stdout, result.stderr)
        return result

    def import_image(
        self,
        archive: Path,
        reference: str = BUSYBOX_REFERENCE,
        *,
        changes: Sequence[str] = _BUSYBOX_CHANGES,
    ) -> str:
        """Import a rootfs tarball as an image of this engine.

        Parameters
        ----------
        archive
            A tarball such as the one :func:`build_busybox_archive` writes.
        reference
            Name and tag of the image.
        changes
            Dockerfile instructions applied to the image; by default ``CMD ["sh"]``.

        Returns
        -------
        str
            The image id.
        """
        arguments = ["import", "--quiet"]
        for change in changes:
            arguments += ["--change", change]
        return self.podman(*arguments, os.fspath(archive), reference).stdout.strip()

    def kill(self) -> None:
        """Kill the service with SIGKILL, the way a crash would, and reap it.

        Its containers keep running (conmon outlives the service) and its socket file
        stays behind; :meth:`reset` and :meth:`stop` still clean up afterwards.
        """
        if self.running and self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def stop(self, timeout: float = 15) -> None:
        """Stop the service: SIGTERM to its PID, then SIGKILL after ``timeout`` seconds.

        Safe to call when the service is not running, or twice. Containers that still
        run are left alone: call :meth:`reset` first to remove them.

        Parameters
        ----------
        timeout
            Seconds to wait for a graceful exit before SIGKILL.
        """
        process, self._process = self._process, None
        if process is None:
            return
        _end_process(process, grace=timeout)
        (self._base_dir / "podman.pid").unlink(missing_ok=True)
        # A killed service leaves its socket file; a stale file only misleads clients.
        self._socket_path.unlink(missing_ok=True)

    def reset(self) -> None:
        """Remove every pod, container, volume, non-default network and image.

        Uses the CLI, so it works whether the service runs, was stopped or was killed.
        Then it unmounts whatever is still mounted under ``base_dir`` (overlay and shm
        mounts of containers whose cleanup never ran). Safe to call twice.

        Raises
        ------
        RuntimeError
            If something could not be removed or unmounted.
        """
        failures: list[str] = []
        if (self._base_dir / "root").exists():
            self._executable()
            steps: list[tuple[str, ...]] = [
                ("pod", "rm", "--all", "--force", "--time", "0"),
                ("rm", "--all", "--force", "--volumes", "--time", "0"),
                ("volume", "rm", "--all", "--force"),
            ]
            for step in steps:
                failures += self._run_step(step)
            listed = self.podman("network", "ls", "--format", "{{.Name}}", check=False)
            names = sorted(set(listed.stdout.split()) - {"podman"})
            if names:
                failures += self._run_step(("network", "rm", "--force", *names))
            failures += self._run_step(("image", "rm", "--all", "--force"))
        failures += _unmount_all(self._base_dir)
        if failures:
            details = "\n".join(failures)
            raise RuntimeError(f"reset of {self._base_dir} left things behind:\n{details}")

    def _run_step(self, arguments: tuple[str, ...]) -> list[str]:
        # Containers of a pod, or joined to another one's namespaces, can make one pass
        # fail on ordering; a second pass removes what the first one freed.
        result = self.podman(*arguments, check=False)
        if result.returncode != 0:
            result = self.podman(*arguments, check=False)
        if result.returncode != 0:
            return [f"podman {' '.join(arguments)}: {result.stderr.strip()}"]
        return []

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.reset()
        finally:
            self.stop()


def _end_process(process: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM ``process`` by PID, wait ``grace`` seconds, then SIGKILL; always reap it."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _unmount_all(base_dir: Path) -> list[str]:
    """Unmount every mount point under ``base_dir``, deepest first; return failures."""
    for _ in range(3):
        points = mounts_under(base_dir)
        if not points:
            return []
        for point in sorted(set(points), key=lambda p: p.count("/"), reverse=True):
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
                # Busy (a process still has it open): detach it now, freed when unused.
                subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    return [f"still mounted: {point}" for point in mounts_under(base_dir)]

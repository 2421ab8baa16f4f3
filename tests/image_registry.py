"""A private image registry on loopback for the tests: Debian's ``docker-registry``.

No registry is reachable from the test machines, and pulls must still be tested for
real. :class:`ImageRegistry` runs ``docker-registry serve`` (Distribution 2.8) on a
port the kernel picks, with its storage in a temp dir, and puts a
:class:`ThrottledRelay` in front of it: Podman reports a layer's bytes ("Downloading")
only while a pull lasts over a second, which on loopback it never does.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.podman_service import PodmanService

REGISTRY_COMMAND = "docker-registry"

# Port 0: the kernel picks a free port as the registry binds, so no other process can
# take it between a choice and the bind; the registry logs the port it got (at "info").
_REGISTRY_CONFIG = """\
# Written by tests/conftest.py for one private registry.
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: {secret}
"""

_LISTENING = re.compile(rb"listening on (127\.0\.0\.1:\d+)")


class ThrottledRelay:
    """A TCP relay on loopback that passes the target's answers at ``bytes_per_second``.

    What the client sends goes through at full speed. Each connection gets its own
    pair of pumping threads; :meth:`stop` closes every socket and joins them.
    """

    _CHUNK = 16 * 1024

    def __init__(self, target: str, *, bytes_per_second: int) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self._rate = bytes_per_second
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.5)  # the accepting thread sees stop() in any case
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, name="relay-accept",
                                           daemon=True)
        self._accepting.start()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, where clients connect."""
        host, port = self._listener.getsockname()[:2]
        return f"{host}:{port}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._spawn(client, upstream)

    def _spawn(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            if self._stopping.is_set():
                client.close()
                upstream.close()
                return
            self._sockets += [client, upstream]
            for source, sink, rate in ((client, upstream, 0), (upstream, client, self._rate)):
                thread = threading.Thread(target=self._pump, args=(source, sink, rate),
                                          name="relay-pump", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, rate: int) -> None:
        try:
            while data := source.recv(self._CHUNK):
                sink.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
            sink.shutdown(socket.SHUT_WR)
        except OSError:  # the other side went away, or stop() closed the sockets
            pass

    def stop(self) -> None:
        """Close the listener and every connection; wait for the threads to end."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        self._accepting.join()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv()
        for thread in threads:
            thread.join(timeout=10)
        for sock in sockets:
            sock.close()
        alive = [thread for thread in threads if thread.is_alive()]
        assert not alive, f"{len(alive)} relay threads outlived stop()"


class ImageRegistry:
    """A private ``docker-registry serve`` on loopback, with its storage in ``base_dir``.

    ``address`` is the registry itself; ``slow_address`` a :class:`ThrottledRelay` in
    front of it. Both speak plain HTTP.
    """

    #: Rate of the slow door: a few MiB then take seconds, and Podman reports the
    #: bytes of a layer ("Downloading") once a second while it reads it.
    SLOW_BYTES_PER_SECOND = 1024 * 1024

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.address = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.relay: ThrottledRelay | None = None

    @property
    def log_path(self) -> Path:
        return self.base_dir / "registry.log"

    @property
    def slow_address(self) -> str:
        assert self.relay is not None, "the registry is not started"
        return self.relay.address

    @property
    def locations(self) -> tuple[str, ...]:
        """Both doors, for an engine's insecure registries."""
        return (self.address, self.slow_address)

    def start(self, *, timeout: float = 20) -> None:
        """Start the registry, learn its port, wait for ``GET /v2/``; open the relay."""
        config = self.base_dir / "config.yml"
        config.write_text(_REGISTRY_CONFIG.format(storage=self.base_dir / "storage",
                                                  secret=secrets.token_hex(16)))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([REGISTRY_COMMAND, "serve", os.fspath(config)],
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (self.address or self._listening()) or not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{REGISTRY_COMMAND} did not answer GET /v2/ within {timeout} s (exit status "
                    f"{self.process.poll()}); its log:\n{self.log_path.read_text()}")
            time.sleep(0.01)
        self.relay = ThrottledRelay(self.address,
                                    bytes_per_second=self.SLOW_BYTES_PER_SECOND)

    def _listening(self) -> bool:
        found = _LISTENING.search(self.log_path.read_bytes())
        if found:
            self.address = found.group(1).decode()
        return found is not None

    def _answers(self) -> bool:
        # http.client, not urllib: no proxy variable may send this off loopback.
        host, _, port = self.address.rpartition(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            connection.request("GET", "/v2/")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        """Close the relay, end the registry by PID (SIGTERM, then SIGKILL), delete
        its storage."""
        try:
            if self.relay is not None:
                self.relay.stop()
        finally:
            process, self.process = self.process, None
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            shutil.rmtree(self.base_dir)

    def push(self, engine: PodmanService, source: str, repository: str) -> str:
        """Push the engine's image ``source`` as ``repository`` (``name:tag``); the
        reference to pull it by."""
        reference = f"{self.address}/{repository}"
        engine.podman("push", "--quiet", "--tls-verify=false", source, reference)
        return reference


@dataclass(frozen=True)
class RegistryImages:
    """The images ``registry_images`` pushed; ``repository:tag`` inside the registry."""

    registry: ImageRegistry
    busybox: str
    """``localhost/busybox:latest`` as pushed: its layer is on every test engine."""
    payload: str
    """A one-layer image of random bytes that no engine holds: a pull downloads it."""
    payload_bytes: int

    def reference(self, repository: str, *, slow: bool = False) -> str:
        """How to pull ``repository``: through the registry, or its slow door."""
        door = self.registry.slow_address if slow else self.registry.address
        return f"{door}/{repository}"


def payload_archive(path: Path, size: int) -> Path:
    """A rootfs tarball of one file of ``size`` random bytes (they do not compress)."""
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("payload.bin")
        info.size = size
        with tempfile.TemporaryFile() as data:
            data.write(os.urandom(size))
            data.seek(0)
            archive.addfile(info, data)
    return path

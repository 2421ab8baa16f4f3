"""A private PostgreSQL 15 cluster for the tests: ``postgres_url`` and fresh databases.

``PostgresServer`` runs ``initdb`` and ``pg_ctl`` as the ``postgres`` OS user (the server
refuses to run as root) in a ``/tmp/gp-pg-*`` directory owned by that user: the data
directory, the log and the unix socket are all inside it, and the server listens on a
free loopback port only, with ``trust`` authentication (nothing but this machine can
reach it). The directory is claimed (``tests/orphans.py``), so a killed session's server
is stopped by the next session's sweep.

Fixtures (registered by ``tests/conftest.py``-level imports in the test modules):

- ``postgres_server``: session-scoped; started at first use, stopped and removed at the
  end of the session, also when a test failed;
- ``postgres_url``: a new database per test (``CREATE DATABASE`` with a unique name),
  dropped after the test; its ``postgresql+psycopg://`` URL.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.orphans import claim

__all__ = ["PG_BIN", "PostgresServer", "postgres_server", "postgres_url"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_OS_USER = "postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One private cluster; :meth:`start` and :meth:`stop` (which also removes it)."""

    def __init__(self) -> None:
        self.base_dir = claim(Path(tempfile.mkdtemp(prefix="gp-pg-", dir="/tmp")))
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "server.log"
        self.port = _free_port()
        self._running = False

    def _as_postgres(self, *arguments: str, timeout: float = 120) -> None:
        command = ["runuser", "-u", _OS_USER, "--", *arguments]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"{' '.join(arguments[:2])} failed ({result.returncode}): "
                               f"{result.stderr.strip()}\n{log[-2000:]}")

    def start(self) -> None:
        """initdb and start the server; it accepts connections when this returns."""
        account = pwd.getpwnam(_OS_USER)
        os.chown(self.base_dir, account.pw_uid, account.pw_gid)
        os.chown(self.base_dir / "owner.pid", account.pw_uid, account.pw_gid)
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U",
                          _OS_USER, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
                          "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.base_dir} -c fsync=off "
                   "-c max_connections=60 -c shared_buffers=32MB")
        self._running = True
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l",
                          str(self.log_file), "-o", options, "-w", "-t", "60", "start")

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg 3, over TCP)."""
        return f"postgresql+psycopg://{_OS_USER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement on the ``postgres`` database outside a transaction."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=_OS_USER,
                             dbname="postgres", autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database for one test; dropped (its connections ended) after."""
        name = f"gp_{secrets.token_hex(6)}"
        self.admin(f"CREATE DATABASE {name}")
        try:
            yield self.url(name)
        finally:
            self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        try:
            if self._running:
                self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m",
                                  "fast", "-w", "-t", "60", "stop")
                self._running = False
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's private PostgreSQL 15 server (skipped where it is not installed)."""
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip(f"PostgreSQL 15 is not installed in {PG_BIN}")
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database on the session's server, for one test; its SQLAlchemy URL."""
    with postgres_server.database() as url:
        yield url

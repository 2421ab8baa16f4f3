"""Checking a presented token on every request, within the agent's memory budget.

The token table belongs to GhostPanel's SQLAlchemy store (``_tokens.TokenStore`` writes
it, ``ghostpanel agent token create``), but importing SQLAlchemy costs a process about
27 MB of resident memory, over half of the agent's whole budget (idle RSS < 50 MB). So
when the store is SQLite, the default, the agent reads the table with the standard
library's ``sqlite3`` on a read-only connection: one indexed ``SELECT`` by hash per
check, on a table the store made. Any other database (PostgreSQL) is read
through :class:`~._tokens.TokenStore`, imported on first use.

A missing database file or table means that no token was ever made: every token is
refused, the agent does not fail.

Every request is checked, so the check stays on the event loop: :meth:`TokenChecker.check`
runs the query there with SQLite's busy timeout at zero, which answers in tens of
microseconds (a hop to a worker thread and back cost more than the query). Only when a
``token create``/``revoke`` in another process holds the write lock at that moment
(SQLite answers "database is locked" at once instead of waiting) is the check made
again in a worker thread, which may wait for the lock: the loop never does.
"""

from __future__ import annotations

import hmac
import os
import sqlite3
import threading
from pathlib import Path
from urllib.parse import unquote

import anyio.to_thread

from .._exceptions import GhostPanelError
from ._token_digest import token_digest

__all__ = ["TokenCheckFailed", "TokenChecker", "sqlite_path"]

#: Milliseconds a check in a worker thread waits for a write lock held by ``token
#: create``/``revoke`` (they hold it for milliseconds) before the request is answered 503.
_BUSY_TIMEOUT_MS = 5000

_QUERY = ("SELECT name, digest FROM agent_tokens WHERE digest = ? AND revoked_at IS NULL "
          "LIMIT 1")


class TokenCheckFailed(GhostPanelError):
    """The token store could not be read: the request cannot be authenticated now."""


class _Busy(Exception):
    """The check could not be made without waiting (a lock held): make it in a thread."""


def sqlite_path(database_url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; None for another database or an in-memory one.

    Examples
    --------
    >>> sqlite_path("sqlite:////home/ada/.local/share/ghostpanel/ghostpanel.db")
    PosixPath('/home/ada/.local/share/ghostpanel/ghostpanel.db')
    >>> sqlite_path("sqlite+pysqlite:///relative.db?timeout=3")
    PosixPath('relative.db')
    >>> sqlite_path("postgresql+psycopg://host/db") is None, sqlite_path("sqlite://")
    (True, None)
    """
    scheme, separator, rest = database_url.partition(":///")
    if not separator or scheme.split("+", 1)[0] != "sqlite":
        return None
    path = unquote(rest.partition("?")[0])
    return Path(path) if path and path != ":memory:" else None


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for a lock another connection holds (``SQLITE_BUSY``)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "database is locked" in str(error)


class TokenChecker:
    """``verify(token) -> name | None`` against the store at ``database_url``.

    Parameters
    ----------
    database_url
        The store's SQLAlchemy URL (``sqlite:////path/ghostpanel.db``,
        ``postgresql+psycopg://...``).
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._path = sqlite_path(database_url)
        self._store: object = None
        # One read-only connection, kept: opening one per check cost ~0.4 ms, ten times
        # the query. Keeping it caches nothing: SQLite starts every read transaction
        # by checking the file's change counter and drops its page cache when another
        # process has written, so a revocation is seen by the very next check.
        self._connection: sqlite3.Connection | None = None
        self._opened: tuple[int, int] | None = None  # (device, inode) it was opened on
        # Checks on the loop and in worker threads share the connection.
        self._lock = threading.Lock()
        self._busy_timeout_ms: int | None = None  # what the connection is set to now

    async def check(self, token: str) -> str | None:
        """:meth:`verify` without blocking the event loop: on the loop when the store
        answers at once (the usual case), else in a worker thread (see the module notes).

        Raises
        ------
        TokenCheckFailed
            The store exists but could not be read.
        """
        if self._path is not None:
            try:
                return self._verify(token, wait=False)
            except _Busy:
                pass
        return await anyio.to_thread.run_sync(self.verify, token)

    def verify(self, token: str) -> str | None:
        """The name of the active token ``token`` is, or None (blocking: it may wait for
        a lock or a database server; on an event loop use :meth:`check`).

        Raises
        ------
        TokenCheckFailed
            The store exists but could not be read.
        """
        if self._path is None:
            return self._verify_with_store(token)
        return self._verify(token, wait=True)

    def _verify(self, token: str, *, wait: bool) -> str | None:
        digest = token_digest(token)
        # Without waiting, a check made in a worker thread at this moment is a reason to
        # go to a thread too, not to block the loop on the lock.
        if not self._lock.acquire(blocking=wait):
            raise _Busy
        try:
            try:
                row = self._lookup(digest, _BUSY_TIMEOUT_MS if wait else 0)
            except sqlite3.OperationalError as error:
                if not wait and _is_busy(error):
                    raise _Busy from error
                self._drop_connection()
                if "no such table" in str(error):
                    return None  # a store in which no token was ever made
                raise TokenCheckFailed(f"cannot read the tokens in {self._path}: {error}") \
                    from error
            except sqlite3.Error as error:
                self._drop_connection()
                raise TokenCheckFailed(f"cannot read the tokens in {self._path}: {error}") \
                    from error
        finally:
            self._lock.release()
        # Looked up by hash, confirmed in constant time: the lookup's timing can only
        # tell about the hash, which gives nothing towards a token.
        if row is None or not hmac.compare_digest(str(row[1]), digest):
            return None
        return str(row[0])

    def _lookup(self, digest: str, busy_timeout_ms: int) -> tuple[object, ...] | None:
        assert self._path is not None
        try:
            status = os.stat(self._path)
        except FileNotFoundError:
            self._drop_connection()
            return None  # no store yet: no token was ever made
        identity = (status.st_dev, status.st_ino)
        if self._connection is None or self._opened != identity:
            # A store replaced (a new file under the same name) is opened anew.
            self._drop_connection()
            # Read-only: the agent never writes the store, and never creates it.
            self._connection = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True,
                                               timeout=0, check_same_thread=False)
            self._opened = identity
            self._busy_timeout_ms = 0
        if self._busy_timeout_ms != busy_timeout_ms:
            self._connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._busy_timeout_ms = busy_timeout_ms
        row: tuple[object, ...] | None = self._connection.execute(_QUERY, (digest,)).fetchone()
        return row

    def _drop_connection(self) -> None:
        connection, self._connection, self._opened = self._connection, None, None
        self._busy_timeout_ms = None
        if connection is not None:
            connection.close()

    def _verify_with_store(self, token: str) -> str | None:
        from ..store import StoreError
        from ._tokens import TokenStore

        try:
            if self._store is None:
                self._store = TokenStore(self.database_url)
            assert isinstance(self._store, TokenStore)
            return self._store.verify(token)
        except StoreError as error:
            raise TokenCheckFailed(str(error)) from error

    def close(self) -> None:
        """Close the SQLite connection, or the store opened for another database."""
        with self._lock:
            self._drop_connection()
        store, self._store = self._store, None
        close = getattr(store, "close", None)
        if close is not None:
            close()

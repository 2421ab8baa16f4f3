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
"""

from __future__ import annotations

import hmac
import os
import sqlite3
import threading
from pathlib import Path
from urllib.parse import unquote

from .._exceptions import GhostPanelError
from ._token_digest import token_digest

__all__ = ["TokenCheckFailed", "TokenChecker", "sqlite_path"]

#: Seconds a check waits for a write lock held by ``token create``/``revoke`` (they
#: hold it for milliseconds) before the request is answered 503.
_BUSY_TIMEOUT = 5.0

_QUERY = ("SELECT name, digest FROM agent_tokens WHERE digest = ? AND revoked_at IS NULL "
          "LIMIT 1")


class TokenCheckFailed(GhostPanelError):
    """The token store could not be read: the request cannot be authenticated now."""


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
        self._lock = threading.Lock()  # checks run in worker threads

    def verify(self, token: str) -> str | None:
        """The name of the active token ``token`` is, or None (blocking: call it from a
        worker thread).

        Raises
        ------
        TokenCheckFailed
            The store exists but could not be read.
        """
        digest = token_digest(token)
        if self._path is None:
            return self._verify_with_store(token)
        with self._lock:
            try:
                row = self._lookup(digest)
            except sqlite3.Error as error:
                self._drop_connection()
                if isinstance(error, sqlite3.OperationalError) \
                        and "no such table" in str(error):
                    return None  # a store in which no token was ever made
                raise TokenCheckFailed(f"cannot read the tokens in {self._path}: {error}") \
                    from error
        # Looked up by hash, confirmed in constant time: the lookup's timing can only
        # tell about the hash, which gives nothing towards a token.
        if row is None or not hmac.compare_digest(str(row[1]), digest):
            return None
        return str(row[0])

    def _lookup(self, digest: str) -> tuple[object, ...] | None:
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
                                               timeout=_BUSY_TIMEOUT,
                                               check_same_thread=False)
            self._opened = identity
        row: tuple[object, ...] | None = self._connection.execute(_QUERY, (digest,)).fetchone()
        return row

    def _drop_connection(self) -> None:
        connection, self._connection, self._opened = self._connection, None, None
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

"""Where GhostPanel keeps its data, and opening the database there.

Opening never lets SQLAlchemy's own errors out: a URL that does not parse, a driver that
is not installed, a directory that cannot be written or a server that refuses each
become one :class:`StoreConfigurationError` naming the setting to change.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool, StaticPool

from ._errors import StoreConfigurationError
from ._migrate import bring_to_head

__all__ = ["DATABASE_VARIABLE", "HOME_VARIABLE", "data_dir", "database_url", "open_database"]

#: Moves the whole data directory (tests, or users who want separate registries).
HOME_VARIABLE = "GHOSTPANEL_HOME"
#: Points the registry at another database, e.g. ``postgresql+psycopg://host/ghostpanel``.
DATABASE_VARIABLE = "GHOSTPANEL_DATABASE_URL"

#: Seconds a SQLite connection waits for another process's write lock before failing.
#: Python's default (5 s) is short on a loaded machine where twenty ``ghostpanel``
#: processes start at once; a registry write holds the lock for milliseconds.
SQLITE_BUSY_TIMEOUT = 30.0

_EXAMPLES = "e.g. sqlite:////home/ada/ghostpanel.db or postgresql+psycopg://user@host/db"


def data_dir() -> Path:
    """The directory that holds GhostPanel's data.

    ``$GHOSTPANEL_HOME`` when set (and not empty), else the platform's per-user data
    directory (``~/.local/share/ghostpanel`` on Linux). A relative ``$GHOSTPANEL_HOME``
    is made absolute, so the database URL does not depend on the working directory
    later. Nothing is created here.

    Examples
    --------
    >>> data_dir()                                  # doctest: +SKIP
    PosixPath('/home/ada/.local/share/ghostpanel')
    """
    home = os.environ.get(HOME_VARIABLE)
    if home:
        return Path(home).expanduser().absolute()
    return Path(platformdirs.user_data_dir("ghostpanel"))


def database_url() -> str:
    """The registry's SQLAlchemy URL.

    ``$GHOSTPANEL_DATABASE_URL`` when set (a PostgreSQL URL works the same as SQLite),
    else ``sqlite:///<data_dir>/ghostpanel.db``.

    Examples
    --------
    >>> database_url()                              # doctest: +SKIP
    'sqlite:////home/ada/.local/share/ghostpanel/ghostpanel.db'
    """
    url = os.environ.get(DATABASE_VARIABLE)
    if url:
        return url
    return f"sqlite:///{data_dir() / 'ghostpanel.db'}"


@dataclass(frozen=True)
class _Origin:
    """Where the database URL came from, for error messages: the setting and its fix."""

    url: str
    setting: str
    remedy: str


def _origin(url: str | None) -> _Origin:
    if url is not None:
        return _Origin(url, "the database URL given", "pass another database URL")
    if os.environ.get(DATABASE_VARIABLE):
        return _Origin(database_url(), DATABASE_VARIABLE,
                       f"change or unset {DATABASE_VARIABLE} ({_EXAMPLES})")
    if os.environ.get(HOME_VARIABLE):
        return _Origin(database_url(), HOME_VARIABLE,
                       f"set {HOME_VARIABLE} (or --home) to a directory you can write, "
                       f"or {DATABASE_VARIABLE} to another database")
    return _Origin(database_url(), f"the default data directory {data_dir()}",
                   f"set {HOME_VARIABLE} to a directory you can write, "
                   f"or {DATABASE_VARIABLE} to another database")


def _reason(error: BaseException) -> str:
    """The first line of a DBAPI error's own message, without SQLAlchemy's decoration."""
    inner = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    text = str(inner).strip().splitlines()
    return (text[0] if text else type(inner).__name__)[:300]


def _parse(origin: _Origin) -> URL:
    try:
        return make_url(origin.url)
    except (ArgumentError, ValueError) as error:
        shown = origin.url if len(origin.url) <= 100 else origin.url[:100] + "..."
        raise StoreConfigurationError(
            f"{origin.setting} is not a database URL ({shown!r}): {origin.remedy}"
        ) from error


def _make_engine(parsed: URL, origin: _Origin, pooled: bool) -> Engine:
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    in_memory = backend == "sqlite" and parsed.database in (None, "", ":memory:")
    options: dict[str, Any] = {}
    if in_memory:
        # Each new connection to ":memory:" is a new empty database: share one.
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        # The registry runs a few short queries per command or connect(); pooling buys
        # nothing there, while a pool would keep the file (or a server connection) open
        # for as long as some registry object lives. A long-running server (the
        # gateway) asks for a pool: a new PostgreSQL connection per audit record made
        # record() ~10x slower (docs/audit.md).
        options = {"pool_size": 5, "max_overflow": 10} if pooled else {"poolclass": NullPool}
        if backend == "sqlite" and "timeout" not in parsed.query:
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    try:
        return create_engine(parsed, **options)
    except NoSuchModuleError as error:
        raise StoreConfigurationError(
            f"{origin.setting} names a database SQLAlchemy does not know "
            f"({parsed.drivername!r} in {shown}): {origin.remedy}") from error
    except ImportError as error:
        module = error.name or _reason(error)
        raise StoreConfigurationError(
            f"{origin.setting} ({shown}) needs the Python module {module!r}, which is not "
            f"installed: install that database driver, or {origin.remedy}") from error
    except (ArgumentError, TypeError, ValueError) as error:
        raise StoreConfigurationError(
            f"{origin.setting} ({shown}) is not usable: {_reason(error)}: {origin.remedy}"
        ) from error


def _create_private(path: Path) -> None:
    """Create a new SQLite file readable by its owner only (mode 0600), empty.

    The store holds agents' tokens in clear. SQLite gives a WAL file and its index
    (``-wal``, ``-shm``) the database file's mode when it creates them, and in WAL mode
    they outlive a later ``chmod`` of the database for as long as any process has it
    open: the file has to be private from its first byte. An existing file is left
    as it is (the registry makes an older one private when it opens it).
    """
    # FileExistsError: left as it is; any other failure: SQLite's own attempt to open
    # the file says what is wrong, in the usual error message.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def open_database(url: str | None = None, *, pooled: bool = False) -> Engine:
    """Open the registry database at ``url`` (default :func:`database_url`).

    Creates the SQLite file's directory, and brings the database to the newest layout
    (Alembic migrations, ``docs/audit.md``): a new database, one made before migrations
    existed and one of an older revision alike. A database already at the newest
    revision costs one ``SELECT``; processes opening a store at the same moment take
    turns to migrate it (see ``ghostpanel_kernel.store._migrate``).

    Parameters
    ----------
    url
        A SQLAlchemy URL: ``sqlite:///path.db``, ``sqlite://`` (in memory),
        ``postgresql+psycopg://user@host/db``...
    pooled
        Keep a pool of connections (up to 5 idle) instead of one per transaction: for a
        long-running process with many short transactions (the gateway). An in-memory
        database always shares one connection.

    Returns
    -------
    sqlalchemy.Engine
        Ready for :class:`sqlalchemy.orm.Session`.

    Raises
    ------
    StoreConfigurationError
        The database cannot be opened as configured; the message names the setting
        (``GHOSTPANEL_DATABASE_URL``, ``GHOSTPANEL_HOME``) and what to change.

    Examples
    --------
    >>> engine = open_database("sqlite://")
    >>> engine.dialect.name
    'sqlite'
    """
    origin = _origin(url)
    parsed = _parse(origin)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        directory = Path(str(parsed.database)).expanduser().parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreConfigurationError(
                f"cannot create {directory}, the directory of the registry database "
                f"(from {origin.setting}): {error.strerror or error}: {origin.remedy}"
            ) from error
    engine = _make_engine(parsed, origin, pooled)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # Only once the URL proved usable: a bad setting must leave no empty file behind.
        _create_private(Path(str(parsed.database)).expanduser())
    try:
        bring_to_head(engine)
    except StoreConfigurationError:
        engine.dispose()
        raise
    except SQLAlchemyError as error:
        engine.dispose()
        raise StoreConfigurationError(
            f"cannot open the registry database {shown} (from {origin.setting}): "
            f"{_reason(error)}: {origin.remedy}") from error
    return engine

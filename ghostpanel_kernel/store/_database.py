"""Where GhostPanel keeps its data, and opening the database there."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.pool import NullPool, StaticPool

from ._schema import Base

__all__ = ["data_dir", "database_url", "open_database"]

#: Moves the whole data directory (tests, or users who want separate registries).
HOME_VARIABLE = "GHOSTPANEL_HOME"
#: Points the registry at another database, e.g. ``postgresql+psycopg://host/ghostpanel``.
DATABASE_VARIABLE = "GHOSTPANEL_DATABASE_URL"


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


def open_database(url: str | None = None) -> Engine:
    """Open the registry database at ``url`` (default :func:`database_url`).

    Creates the SQLite file's directory and any missing tables.

    Parameters
    ----------
    url
        A SQLAlchemy URL: ``sqlite:///path.db``, ``sqlite://`` (in memory),
        ``postgresql+psycopg://user@host/db``...

    Returns
    -------
    sqlalchemy.Engine
        Ready for :class:`sqlalchemy.orm.Session`.

    Examples
    --------
    >>> engine = open_database("sqlite://")
    >>> sorted(Base.metadata.tables)
    ['environments', 'settings']
    """
    parsed = make_url(url or database_url())
    in_memory = parsed.get_backend_name() == "sqlite" and parsed.database in (None, "",
                                                                              ":memory:")
    if in_memory:
        # Each new connection to ":memory:" is a new empty database: share one.
        engine = create_engine(parsed, poolclass=StaticPool,
                               connect_args={"check_same_thread": False})
    else:
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # The registry runs a few short queries per command or connect(); pooling buys
        # nothing there, while a pool would keep the file (or a server connection) open
        # for as long as some registry object lives.
        engine = create_engine(parsed, poolclass=NullPool)
    Base.metadata.create_all(engine)
    return engine

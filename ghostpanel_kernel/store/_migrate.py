"""Bringing a store to the newest revision of its layout (Alembic), cheaply when it is.

Every ``open_database()`` asks the database for its revision with one plain ``SELECT``
on Alembic's version table, :data:`VERSION_TABLE`: at :data:`HEAD_REVISION` nothing
else happens, and Alembic is not even imported (the agent opens the store for its
tokens and has a 50 MB memory budget). Otherwise :func:`bring_to_head` migrates, in
one transaction that holds the migration lock, so that many processes opening a new or
old store at once serialise instead of racing:

- SQLite: ``BEGIN IMMEDIATE``, the database's write lock (the others wait for it);
- PostgreSQL: ``pg_advisory_xact_lock`` on a fixed key, released at commit.

Under the lock the revision is read again (another process may have just migrated),
then:

- a database without the version table but with the tables of the code before
  migrations (``BASE_TABLES``) gains what that code's ``create_schema`` would still add
  and is stamped at revision 1;
- the migrations up to the head run (for an empty database, all of them).

Both lock and DDL are transactional on SQLite and PostgreSQL: a failure leaves the store
as it was. File SQLite stores are also switched to write-ahead logging (WAL), once:
readers then never wait for the audit log's writers (``docs/audit.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from ._errors import StoreConfigurationError
from ._schema import BASE_TABLES, create_schema

__all__ = ["HEAD_REVISION", "MIGRATIONS", "REVISIONS", "VERSION_TABLE", "bring_to_head",
           "current_revision"]

#: Every revision, oldest first; a test checks them against the scripts.
REVISIONS: Final[tuple[str, ...]] = ("0001", "0002")
#: The newest revision: what a database opened by this version is brought to.
HEAD_REVISION: Final = REVISIONS[-1]
#: Where Alembic keeps the revision: not its default ``alembic_version``, which other
#: Alembic-managed applications use too (JupyterHub's own database has one), so that
#: the store can share a PostgreSQL database with them.
VERSION_TABLE: Final = "ghostpanel_alembic_version"
#: Alembic's script directory (``env.py`` and ``versions/``).
MIGRATIONS: Final = Path(__file__).with_name("migrations")

#: The advisory lock's key on PostgreSQL: any fixed 64-bit number that no other
#: application on the same server uses ("GhostPnl" in ASCII).
_PG_LOCK_KEY: Final = 0x47686F7374506E6C


def current_revision(bind: Engine | Connection) -> str | None:
    """The store's revision from :data:`VERSION_TABLE`; None when there is no such table.

    One plain query, no Alembic: this is what every open of a store pays.

    Examples
    --------
    >>> from sqlalchemy import create_engine
    >>> current_revision(create_engine("sqlite://")) is None
    True
    """
    if isinstance(bind, Connection):
        if not inspect(bind).has_table(VERSION_TABLE):
            return None
        rows = bind.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
        return str(rows[0]) if len(rows) == 1 else None
    try:
        with bind.connect() as connection:
            rows = connection.execute(
                text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    except DBAPIError as error:
        # "no such table" (SQLite) or "relation ... does not exist" (PostgreSQL): a
        # store from before migrations, or a new one. Anything else is for the caller.
        message = str(error.orig).lower()
        if "no such table" in message or "does not exist" in message:
            return None
        raise
    return str(rows[0]) if len(rows) == 1 else None


def bring_to_head(engine: Engine) -> None:
    """Migrate the store to :data:`HEAD_REVISION` if it is not there yet.

    Raises
    ------
    StoreConfigurationError
        The store is at a revision this version does not know (made by a newer
        GhostPanel).
    sqlalchemy.exc.SQLAlchemyError
        The database failed; nothing was changed.

    Examples
    --------
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.pool import StaticPool
    >>> engine = create_engine("sqlite://", poolclass=StaticPool)
    >>> bring_to_head(engine); current_revision(engine) == HEAD_REVISION
    True
    """
    if current_revision(engine) == HEAD_REVISION:
        return
    _use_wal(engine)
    with engine.connect() as connection:
        _lock(connection)
        revision = current_revision(connection)
        if revision == HEAD_REVISION:
            connection.commit()
            return
        if revision is not None and revision not in REVISIONS:
            raise StoreConfigurationError(
                f"the database is at revision {revision!r}, which this version of "
                f"GhostPanel does not know (its newest is {HEAD_REVISION!r}): it was "
                "made by a newer GhostPanel; upgrade GhostPanel")
        _run_alembic(connection, revision)
        connection.commit()


def _lock(connection: Connection) -> None:
    """Take the migration lock in the connection's (new) transaction."""
    if connection.dialect.name == "sqlite":
        # pysqlite begins transactions lazily, before the first INSERT/UPDATE only;
        # begin one now, as a writer, so the version read below is already locked.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def _use_wal(engine: Engine) -> None:
    """Switch a file SQLite database to WAL (a lasting property of the file)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    except DBAPIError:
        # Only a speed-up; a file system without shared memory keeps its journal.
        pass


def _run_alembic(connection: Connection, revision: str | None) -> None:
    """Stamp a store of the code before migrations, then upgrade to the head."""
    # Imported here only: a store at the head never needs Alembic.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    if revision is None and set(inspect(connection).get_table_names()) & set(BASE_TABLES):
        create_schema(connection)
        command.stamp(config, REVISIONS[0])
    command.upgrade(config, HEAD_REVISION)

"""Tables of GhostPanel's registry: environments, settings and environment health.

The schema is created by :func:`create_schema` when the database is opened. Its only
change so far is additive: ``environment_health`` came after ``environments`` and
``settings``, and a database made before it simply gains the table the first time it
is opened (``create_all`` creates what is missing and leaves existing tables alone).
New nullable columns of an existing table (``environments.tls_fingerprint`` and
``token``, for agents) are added by :func:`add_missing_columns` when a database made
before them is opened. Changing or dropping a column is a different kind of change: that
one brings Alembic migrations, with this layout as their base revision.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["ADDED_COLUMNS", "AgentTokenRecord", "Base", "EnvironmentRecord",
           "GpuAllocationRecord", "HealthRecord", "SettingRecord", "add_missing_columns",
           "create_schema"]


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every GhostPanel table; ``Base.metadata`` holds them all."""


class EnvironmentRecord(Base):
    """One registered environment: a named engine endpoint (table ``environments``).

    ``tls_verify`` doubles as the "has TLS settings" flag: NULL means the environment was
    registered without a :class:`~ghostpanel_kernel.engine.TLSConfig`, which matters for
    ``tcp://`` URLs (a TLS config turns them into TLS connections).

    Examples
    --------
    >>> EnvironmentRecord(name="us-east-1", url="tcp://10.0.0.5:2375",
    ...                   labels={"region": "us-east"}).name
    'us-east-1'
    """

    __tablename__ = "environments"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    tls_ca_cert: Mapped[str | None] = mapped_column(Text, default=None)
    tls_client_cert: Mapped[str | None] = mapped_column(Text, default=None)
    tls_client_key: Mapped[str | None] = mapped_column(Text, default=None)
    tls_verify: Mapped[bool | None] = mapped_column(Boolean, default=None)
    #: SHA-256 of an agent's pinned certificate (``AB:CD:...``); added after the table
    #: was first shipped, so :func:`add_missing_columns` adds it to older databases.
    tls_fingerprint: Mapped[str | None] = mapped_column(Text, default=None)
    #: An agent's bearer token, in clear: the client must send it. The SQLite file is
    #: kept mode 0600 for that reason (see EnvironmentRegistry). Added like the above.
    token: Mapped[str | None] = mapped_column(Text, default=None)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # SQLite keeps no zone: values read back there are naive, in UTC.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    def __repr__(self) -> str:
        return f"<EnvironmentRecord {self.name} {self.url}>"


class SettingRecord(Base):
    """A key/value setting (table ``settings``), e.g. the default environment.

    Examples
    --------
    >>> SettingRecord(key="default_environment", value="us-east-1").value
    'us-east-1'
    """

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<SettingRecord {self.key}={self.value!r}>"


class HealthRecord(Base):
    """How an environment's engine answered lately (table ``environment_health``).

    A table of its own rather than columns of ``environments``: it is written after
    every fan-out, also for the detected ``local`` environment that has no registry
    row, and a database made before it existed gains it without altering a table.
    ``url`` is the endpoint the record is about: a record whose URL is no longer the
    environment's says nothing about it. Times are in UTC (naive when read back from
    SQLite).

    Examples
    --------
    >>> HealthRecord(name="gpu-1", url="https://10.0.0.9:2376",
    ...              failure="connection refused").failure
    'connection refused'
    """

    __tablename__ = "environment_health"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    last_success: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          default=None)
    last_failure: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          default=None)
    #: The first failure since the last success: "failing since".
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                           default=None)
    #: Why the last failure happened, one line.
    failure: Mapped[str | None] = mapped_column(Text, default=None)

    def __repr__(self) -> str:
        return f"<HealthRecord {self.name} {self.url}>"


class AgentTokenRecord(Base):
    """An API token of ``ghostpanel agent`` (table ``agent_tokens``): only its hash.

    The token itself is shown once, when made; what is kept is its SHA-256, so a copy
    of the database lets nobody in. A revoked token keeps its row (``revoked_at`` set)
    for ``token ls`` to say so; its name may then be given to a new token. A new table,
    added the same additive way as ``environment_health``.

    Examples
    --------
    >>> AgentTokenRecord(name="ci", digest="ab" * 32).name
    'ci'
    """

    __tablename__ = "agent_tokens"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: hex SHA-256 of the token.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                        default=None)

    def __repr__(self) -> str:
        return f"<AgentTokenRecord {self.name}>"


class GpuAllocationRecord(Base):
    """One GPU (or MIG device) held by a workload (table ``gpu_allocations``).

    Written by ``ghostpanel_kernel.gpus.GpuAllocator``. ``unit`` is the UUID of what is
    held (``GPU-...`` or ``MIG-...``) and ``slot`` its tenant number on it: the unique
    pair is what stops two processes from taking the same slot at once. A workload
    holding two GPUs has two rows. ``container_id`` is set once a container created
    with the reservation exists; removing that container releases the rows. A new
    table, added the same additive way as ``environment_health``.

    Examples
    --------
    >>> GpuAllocationRecord(workload="steam", unit="GPU-1", slot=0, gpu_index=0,
    ...                     gpu_uuid="GPU-1", policy="exclusive", tenants=1).workload
    'steam'
    """

    __tablename__ = "gpu_allocations"
    __table_args__ = (UniqueConstraint("unit", "slot", name="uq_gpu_allocation_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload: Mapped[str] = mapped_column(String(255), index=True)
    unit: Mapped[str] = mapped_column(String(128))
    slot: Mapped[int] = mapped_column(Integer)
    gpu_index: Mapped[int] = mapped_column(Integer)
    gpu_uuid: Mapped[str] = mapped_column(String(128))
    #: The MIG device's index on its GPU (``M`` of ``nvidia.com/gpu=G:M``), or NULL.
    mig_index: Mapped[int | None] = mapped_column(Integer, default=None)
    policy: Mapped[str] = mapped_column(String(32))
    #: Most tenants the unit takes under this holder's policy (1 for exclusive, MIG).
    tenants: Mapped[int] = mapped_column(Integer)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    container_id: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    def __repr__(self) -> str:
        return f"<GpuAllocationRecord {self.workload} {self.unit}#{self.slot}>"


#: How many times :func:`create_schema` tries; each retry follows a table that another
#: process created first, so one try per table (and one more) always suffices.
_SCHEMA_ATTEMPTS = len(Base.metadata.tables) + 1


def _created_concurrently(error: DBAPIError) -> bool:
    """Whether ``error`` says that a table being created already exists."""
    text = str(error.orig).lower()
    # SQLite: "table x already exists"; PostgreSQL: 'relation "x" already exists', or,
    # when two CREATE TABLE run at once, a unique violation on its catalogue of types.
    return "already exists" in text or "pg_type_typname_nsp_index" in text


#: Columns added to existing tables after they first shipped: ``create_all`` creates
#: missing tables but never alters one, so a database made before these gains them
#: from :func:`add_missing_columns`. Only nullable columns belong here (an ``ADD
#: COLUMN`` fills old rows with NULL).
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "environments": ("tls_fingerprint", "token"),
}


def add_missing_columns(engine: Engine) -> None:
    """Add the :data:`ADDED_COLUMNS` that an older database lacks (``ALTER TABLE``).

    Another process may add the same column at the same moment: its "duplicate
    column" failure is taken as done once a new look at the table shows the column.

    Examples
    --------
    >>> from sqlalchemy import create_engine, text
    >>> engine = create_engine("sqlite://")
    >>> with engine.begin() as db:
    ...     _ = db.execute(text("CREATE TABLE environments (name TEXT PRIMARY KEY)"))
    >>> add_missing_columns(engine)
    >>> sorted(c["name"] for c in inspect(engine).get_columns("environments"))
    ['name', 'tls_fingerprint', 'token']
    """
    for table_name, names in ADDED_COLUMNS.items():
        table = Base.metadata.tables[table_name]
        present = {column["name"] for column in inspect(engine).get_columns(table_name)}
        for name in names:
            if name in present:
                continue
            column = table.columns[name]
            kind = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as connection:
                    connection.execute(text(
                        f'ALTER TABLE {table_name} ADD COLUMN "{name}" {kind}'))
            except DBAPIError:
                if name not in {c["name"] for c in inspect(engine).get_columns(table_name)}:
                    raise


def create_schema(engine: Engine) -> None:
    """Create every missing table, tolerating another process that creates them too.

    ``create_all`` checks which tables exist, then creates the missing ones: a second
    process doing the same between the check and the ``CREATE`` makes it fail with
    "table already exists" (twenty ``ghostpanel env add`` started at once in a new
    home lost one of them that way). Such a failure means the table is there now, so
    the check runs again and creates only what is still missing.

    Parameters
    ----------
    engine
        The database to create the schema in.

    Raises
    ------
    sqlalchemy.exc.SQLAlchemyError
        Any other failure, or the same table reported twice.

    Examples
    --------
    >>> from sqlalchemy import create_engine, inspect
    >>> engine = create_engine("sqlite://")
    >>> create_schema(engine); create_schema(engine)
    >>> sorted(inspect(engine).get_table_names())
    ['agent_tokens', 'environment_health', 'environments', 'gpu_allocations', 'settings']
    """
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            Base.metadata.create_all(engine)
            break
        except DBAPIError as error:
            if attempt == _SCHEMA_ATTEMPTS - 1 or not _created_concurrently(error):
                raise
    add_missing_columns(engine)

"""Tables of GhostPanel's store: the registry, agent tokens, GPU allocations, the gateway.

The layout is versioned by Alembic migrations (``ghostpanel_kernel/store/migrations``,
applied by :func:`~ghostpanel_kernel.store._migrate.bring_to_head` when the database is
opened; ``docs/audit.md``). Revision 1 is the layout that :func:`create_schema` made
before migrations existed: the tables of :data:`BASE_TABLES`, with the columns of
:data:`ADDED_COLUMNS` that :func:`add_missing_columns` added to older databases.
Revision 2 added the gateway's tables (custom roles, role bindings, the audit log and
its chain head). The classes here describe the newest layout; a test checks that the
migrations produce exactly it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["ADDED_COLUMNS", "BASE_TABLES", "AgentTokenRecord", "AuditHeadRecord",
           "AuditRecordRow", "Base", "CustomRoleRecord", "EnvironmentRecord",
           "GpuAllocationRecord", "HealthRecord", "RoleBindingRecord", "SettingRecord",
           "add_missing_columns", "create_schema"]


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


class CustomRoleRecord(Base):
    """A role defined by an administrator (table ``gateway_roles``): a set of permissions.

    The built-in roles (``viewer``... ``admin``) are not stored: they are fixed in
    ``ghostpanel_kernel.gateway._permissions``. ``permissions`` is the sorted list.

    Examples
    --------
    >>> CustomRoleRecord(name="auditor", permissions=["logs", "read"]).name
    'auditor'
    """

    __tablename__ = "gateway_roles"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    permissions: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    def __repr__(self) -> str:
        return f"<CustomRoleRecord {self.name}>"


class RoleBindingRecord(Base):
    """One grant of a role on an environment (table ``gateway_role_bindings``).

    ``subject`` is a hub user name (``ada``) or a hub group with an ``@`` (``@blue``).

    Examples
    --------
    >>> RoleBindingRecord(subject="@blue", role="operator", environment="prod").role
    'operator'
    """

    __tablename__ = "gateway_role_bindings"
    __table_args__ = (UniqueConstraint("subject", "role", "environment",
                                       name="uq_gateway_role_binding"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(128))
    environment: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    def __repr__(self) -> str:
        return f"<RoleBindingRecord {self.subject} {self.role}@{self.environment}>"


class AuditRecordRow(Base):
    """One row of the gateway's audit log (table ``gateway_audit``), a link of a chain.

    ``seq`` is given by the writer, one more than the chain head's, never by the
    database: a gap then means a deleted row. ``hash`` is the SHA-256 of the row's
    fields and ``prev_hash`` (``ghostpanel_kernel.gateway._audit_chain``). ``detail`` is
    kept as the exact canonical JSON text that was hashed, so no database's JSON type
    can change a byte of it. Rows are only ever inserted.

    Examples
    --------
    >>> AuditRecordRow(seq=1, user_name="ada", action="POST /containers/create").seq
    1
    """

    __tablename__ = "gateway_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_name: Mapped[str] = mapped_column(String(255), index=True)
    environment: Mapped[str | None] = mapped_column(String(128), default=None)
    action: Mapped[str] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<AuditRecordRow #{self.seq} {self.user_name} {self.action}>"


class AuditHeadRecord(Base):
    """The audit chain's head (table ``gateway_audit_head``): one row, ``id`` 1.

    A writer updates this row first, which locks it until its transaction ends: that
    is what serialises appends from several processes (a row lock on PostgreSQL, the
    write lock on SQLite), and it records the last ``seq`` and ``hash``, so rows
    deleted from the end of the log are noticed too.
    """

    __tablename__ = "gateway_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


#: The tables of migration revision 1, the layout made before migrations: a database
#: without Alembic's version table but with some of these is brought to revision 1 by
#: :func:`create_schema` and then stamped.
BASE_TABLES: tuple[str, ...] = ("environments", "settings", "environment_health",
                                "agent_tokens", "gpu_allocations")


#: Columns added to existing tables after they first shipped, before migrations
#: existed: ``create_all`` creates missing tables but never alters one, so a database
#: made before these gains them from :func:`add_missing_columns` (then it is at
#: revision 1). Later changes are Alembic revisions instead.
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "environments": ("tls_fingerprint", "token"),
}


def add_missing_columns(bind: Engine | Connection) -> None:
    """Add the :data:`ADDED_COLUMNS` that an older database lacks (``ALTER TABLE``).

    Parameters
    ----------
    bind
        The database, or a connection whose transaction the changes join (the one that
        holds the migration lock, see ``ghostpanel_kernel.store._migrate``).

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
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            add_missing_columns(connection)
        return
    for table_name, names in ADDED_COLUMNS.items():
        table = Base.metadata.tables[table_name]
        present = {column["name"] for column in inspect(bind).get_columns(table_name)}
        for name in names:
            if name not in present:
                kind = table.columns[name].type.compile(dialect=bind.dialect)
                bind.execute(text(f'ALTER TABLE {table_name} ADD COLUMN "{name}" {kind}'))


def create_schema(bind: Engine | Connection) -> None:
    """Bring a database made before migrations to revision 1: the :data:`BASE_TABLES`.

    Creates the base tables it lacks (a database of an older version may have only
    some) and their :data:`ADDED_COLUMNS`; newer tables come from the migrations. It
    runs while the caller holds the migration lock, so no other process creates the
    same tables at the same moment (before migrations, two ``create_all`` racing made
    one fail with "table already exists"; the lock replaced the retry that handled it).

    Parameters
    ----------
    bind
        The database, or a connection whose transaction the changes join.

    Examples
    --------
    >>> from sqlalchemy import create_engine, inspect
    >>> engine = create_engine("sqlite://")
    >>> create_schema(engine); create_schema(engine)
    >>> sorted(inspect(engine).get_table_names())
    ['agent_tokens', 'environment_health', 'environments', 'gpu_allocations', 'settings']
    """
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            create_schema(connection)
        return
    Base.metadata.create_all(bind, tables=[Base.metadata.tables[name]
                                           for name in BASE_TABLES])
    add_missing_columns(bind)

"""Tables of GhostPanel's registry: environments and settings.

The schema is created with ``metadata.create_all`` (see :func:`open_database`). That is
enough while the schema has only ever had one shape; the first change to a table brings
Alembic migrations, with this layout as their base revision.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "EnvironmentRecord", "SettingRecord"]


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

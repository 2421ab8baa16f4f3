"""GhostPanel's persistent state: the environment registry's database (SQLAlchemy).

SQLite under the user's data directory by default (``$GHOSTPANEL_HOME`` moves it);
``$GHOSTPANEL_DATABASE_URL`` points it at any SQLAlchemy database, PostgreSQL included.
It also holds agent tokens, GPU allocations and the gateway's roles and audit log; its
layout is upgraded in place by Alembic migrations when it is opened (``docs/audit.md``).
"""

from ._database import data_dir, database_url, open_database
from ._errors import StoreConfigurationError, StoreError
from ._schema import Base, EnvironmentRecord, HealthRecord, SettingRecord

__all__ = [
    "Base",
    "EnvironmentRecord",
    "HealthRecord",
    "SettingRecord",
    "StoreConfigurationError",
    "StoreError",
    "data_dir",
    "database_url",
    "open_database",
]

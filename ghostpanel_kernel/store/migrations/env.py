"""Alembic's environment script for the store: migrate on the connection it is handed.

:func:`ghostpanel_kernel.store._migrate.bring_to_head` opens the connection, takes the
migration lock in its transaction and passes it as ``config.attributes["connection"]``;
the revisions then run inside that transaction (Alembic sees it as external and leaves
committing to the caller). There is no offline (``--sql``) mode and no ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ghostpanel_kernel.store._migrate import VERSION_TABLE
from ghostpanel_kernel.store._schema import Base

if context.is_offline_mode():  # pragma: no cover - not offered
    raise RuntimeError("the GhostPanel store has no offline migration mode")

_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):  # pragma: no cover - misuse
    raise RuntimeError("run the store's migrations through "
                       "ghostpanel_kernel.store._migrate.bring_to_head")

context.configure(connection=_connection, target_metadata=Base.metadata,
                  version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()

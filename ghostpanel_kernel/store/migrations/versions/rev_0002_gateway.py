"""Revision 2: the gateway's tables (custom roles, role bindings, the audit log).

The audit chain's head row (seq 0, the genesis hash) is inserted here, so the first
writer finds it: appends lock that row (``ghostpanel_kernel/gateway/_audit.py``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

#: The hash a chain's first row links to: 64 zeros (copied here, not imported, so the
#: revision stays what it was when it shipped).
_GENESIS = "0" * 64


def upgrade() -> None:
    """Create the four gateway tables and the chain head."""
    op.create_table(
        "gateway_roles",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "gateway_role_bindings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("role", sa.String(128), nullable=False),
        sa.Column("environment", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("subject", "role", "environment",
                            name="uq_gateway_role_binding"),
    )
    op.create_index("ix_gateway_role_bindings_environment", "gateway_role_bindings",
                    ["environment"])
    op.create_table(
        "gateway_audit",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("environment", sa.String(128)),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text()),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("request_id", sa.String(128)),
        sa.Column("detail", sa.Text()),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_gateway_audit_time", "gateway_audit", ["time"])
    op.create_index("ix_gateway_audit_user_name", "gateway_audit", ["user_name"])
    head = op.create_table(
        "gateway_audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": _GENESIS}])


def downgrade() -> None:
    """Drop them."""
    for table in ("gateway_audit_head", "gateway_audit", "gateway_role_bindings",
                  "gateway_roles"):
        op.drop_table(table)

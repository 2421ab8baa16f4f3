"""Revision 1: the store as it was before migrations (registry, health, tokens, GPUs).

A frozen copy of what ``create_schema`` made, ``ADDED_COLUMNS`` included: a database
made by that code is stamped at this revision instead of running it.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the five base tables."""
    op.create_table(
        "environments",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("tls_ca_cert", sa.Text()),
        sa.Column("tls_client_cert", sa.Text()),
        sa.Column("tls_client_key", sa.Text()),
        sa.Column("tls_verify", sa.Boolean()),
        sa.Column("tls_fingerprint", sa.Text()),
        sa.Column("token", sa.Text()),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "environment_health",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("last_success", _when()),
        sa.Column("last_failure", _when()),
        sa.Column("failing_since", _when()),
        sa.Column("failure", sa.Text()),
    )
    op.create_table(
        "agent_tokens",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("revoked_at", _when()),
    )
    op.create_table(
        "gpu_allocations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("workload", sa.String(255), nullable=False),
        sa.Column("unit", sa.String(128), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("gpu_index", sa.Integer(), nullable=False),
        sa.Column("gpu_uuid", sa.String(128), nullable=False),
        sa.Column("mig_index", sa.Integer()),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("tenants", sa.Integer(), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("container_id", sa.String(128)),
        sa.Column("created_at", _when(), nullable=False),
        sa.UniqueConstraint("unit", "slot", name="uq_gpu_allocation_slot"),
    )
    op.create_index("ix_gpu_allocations_workload", "gpu_allocations", ["workload"])


def downgrade() -> None:
    """Drop them (the store is then empty)."""
    for table in ("gpu_allocations", "agent_tokens", "environment_health", "settings",
                  "environments"):
        op.drop_table(table)

"""per-execution throttling (forks, per_group, delay) kept by the claim

Revision ID: 0008_throttling
Revises: 0007_audit_key
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_throttling"
down_revision = "0007_audit_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("forks", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("per_group", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("delay_seconds", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_start_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_claim_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("host_runs") as batch:
        batch.add_column(sa.Column("group_key", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("throttled", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("host_runs") as batch:
        batch.drop_column("throttled")
        batch.drop_column("group_key")
    with op.batch_alter_table("executions") as batch:
        for name in ("last_claim_at", "next_start_at", "delay_seconds", "per_group", "forks"):
            batch.drop_column(name)

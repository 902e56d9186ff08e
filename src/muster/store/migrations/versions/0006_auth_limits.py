"""login throttling per user and per address

Revision ID: 0006_auth_limits
Revises: 0005_approval_requirement
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_auth_limits"
down_revision = "0005_approval_requirement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_limits",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", "user_name", name=op.f("pk_login_limits")),
    )
    with op.batch_alter_table("login_limits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_limits_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("login_limits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_limits_updated_at"))
    op.drop_table("login_limits")

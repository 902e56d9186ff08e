"""credentials vault (sealed SSH keys, passwords, tokens; group defaults) and
per-script approval policies

Revision ID: 0003_credentials
Revises: 0002_security
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_credentials"
down_revision = "0002_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=True),
        sa.Column("fingerprint", sa.String(length=128), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("passphrase_token", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("name", name=op.f("uq_credentials_name")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credentials_key_id"), ["key_id"], unique=False)
    op.create_table(
        "group_credentials",
        sa.Column("group_name", sa.String(length=253), nullable=False),
        sa.Column("credential_name", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("group_name", name=op.f("pk_group_credentials")),
    )
    op.create_table(
        "script_approval_policies",
        sa.Column("script_id", sa.String(length=36), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("deadline_seconds", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["script_id"],
            ["scripts.id"],
            name=op.f("fk_script_approval_policies_script_id_scripts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("script_id", name=op.f("pk_script_approval_policies")),
    )


def downgrade() -> None:
    op.drop_table("script_approval_policies")
    op.drop_table("group_credentials")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_key_id"))
    op.drop_table("credentials")

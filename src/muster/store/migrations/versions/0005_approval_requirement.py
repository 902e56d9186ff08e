"""approval requirement as a policy of the script and of host groups

The requirement moves from each script version (which anyone who may edit
the script could drop) to admin-set rules: ``script_approval_policies``
gains ``required`` and ``retry_needs_approval``; host groups and the
command/job kinds get rules of their own; approval requests count rounds (a
retry that needs approval opens round N+1, and only the newest settles). A
script whose latest version asked for approval keeps needing it: its rule
is created (default approvers) or updated with ``required = true``.

Revision ID: 0005_approval_requirement
Revises: 0004_webhooks
Create Date: 2026-12-05
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0005_approval_requirement"
down_revision = "0004_webhooks"
branch_labels = None
depends_on = None

_BY = "migration 0005_approval_requirement"


def _rule_table(name: str, key: str, length: int) -> None:
    op.create_table(
        name,
        sa.Column(key, sa.String(length=length), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("deadline_seconds", sa.Integer(), nullable=True),
        sa.Column("retry_needs_approval", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("updated_by", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(key, name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    with op.batch_alter_table("script_approval_policies") as batch:
        batch.add_column(
            sa.Column("required", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column(
                "retry_needs_approval", sa.Boolean(), nullable=False, server_default=sa.true()
            )
        )
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("round_no", sa.Integer(), nullable=True))
    _rule_table("group_approval_policies", "group_name", 253)
    _rule_table("kind_approval_policies", "kind", 16)
    _carry_over_version_flags()


def _carry_over_version_flags() -> None:
    """Scripts whose latest version required approval keep requiring it."""
    scripts = sa.table(
        "scripts",
        sa.column("id", sa.String),
        sa.column("latest_version", sa.Integer),
    )
    versions = sa.table(
        "script_versions",
        sa.column("script_id", sa.String),
        sa.column("number", sa.Integer),
        sa.column("requires_approval", sa.Boolean),
    )
    policies = sa.table(
        "script_approval_policies",
        sa.column("script_id", sa.String),
        sa.column("policy", sa.String),
        sa.column("approvers", sa.JSON),
        sa.column("deadline_seconds", sa.Integer),
        sa.column("updated_by", sa.String),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("required", sa.Boolean),
        sa.column("retry_needs_approval", sa.Boolean),
    )
    conn = op.get_bind()
    flagged = list(
        conn.execute(
            sa.select(scripts.c.id)
            .join(
                versions,
                sa.and_(
                    versions.c.script_id == scripts.c.id,
                    versions.c.number == scripts.c.latest_version,
                ),
            )
            # a literal true: SQLite stores booleans as 1, PostgreSQL as true
            .where(versions.c.requires_approval.is_(sa.true()))
        ).scalars()
    )
    if not flagged:
        return
    have = set(
        conn.execute(
            sa.select(policies.c.script_id).where(policies.c.script_id.in_(flagged))
        ).scalars()
    )
    if have:
        conn.execute(
            sa.update(policies).where(policies.c.script_id.in_(have)).values(required=True)
        )
    now = dt.datetime.now(dt.UTC)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # the store keeps naive UTC on SQLite
    missing = [s for s in flagged if s not in have]
    if missing:
        conn.execute(
            sa.insert(policies),
            [
                {
                    "script_id": s,
                    "policy": "one_of_many",
                    "approvers": ["role:approver", "role:admin"],
                    "deadline_seconds": 24 * 3600,
                    "updated_by": _BY,
                    "updated_at": now,
                    "required": True,
                    "retry_needs_approval": True,
                }
                for s in missing
            ],
        )


def downgrade() -> None:
    op.drop_table("kind_approval_policies")
    op.drop_table("group_approval_policies")
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("round_no")
    with op.batch_alter_table("script_approval_policies") as batch:
        batch.drop_column("retry_needs_approval")
        batch.drop_column("required")

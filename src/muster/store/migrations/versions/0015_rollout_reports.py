"""published rollout reports (issue 14): one row per report, the whole document
(waves, gates, rollback lane, flagged hosts, evidence per host) as JSON with the
columns it is listed by and the hash of its content

Revision ID: 0015_rollout_reports
Revises: 0014_workers
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_rollout_reports"
down_revision = "0014_workers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollout_reports",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("workflow", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hosts", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("published_by", sa.String(length=128), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_reports")),
    )
    op.create_index(op.f("ix_rollout_reports_published_at"), "rollout_reports", ["published_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rollout_reports_published_at"), table_name="rollout_reports")
    op.drop_table("rollout_reports")

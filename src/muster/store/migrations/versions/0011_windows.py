"""maintenance windows (issue 12): the windows, the hold each claimed run keeps on
the period it started in, and the executions allowed to run outside their windows

Revision ID: 0011_windows
Revises: 0010_schedules
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_windows"
down_revision = "0010_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=253), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("days", sa.String(length=16), nullable=True),
        sa.Column("start_time", sa.String(length=5), nullable=True),
        sa.Column("end_time", sa.String(length=5), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_policy", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_table(
        "window_holds",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stop", sa.Boolean(), nullable=False),
        sa.Column("window", sa.String(length=200), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["host_runs.id"],
            name=op.f("fk_window_holds_run_id_host_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_window_holds")),
    )
    op.create_index(op.f("ix_window_holds_done_closes_at"), "window_holds", ["done", "closes_at"])
    op.create_table(
        "window_overrides",
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("by", sa.String(length=128), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_window_overrides_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_window_overrides")),
    )


def downgrade() -> None:
    op.drop_table("window_overrides")
    op.drop_index(op.f("ix_window_holds_done_closes_at"), table_name="window_holds")
    op.drop_table("window_holds")
    op.drop_table("maintenance_windows")

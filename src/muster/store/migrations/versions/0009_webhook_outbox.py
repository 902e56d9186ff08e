"""webhook outbox: one durable row per (webhook, event), replacing the delivery log

Revision ID: 0009_webhook_outbox
Revises: 0008_throttling
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_webhook_outbox"
down_revision = "0008_throttling"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=False),
        sa.Column("event_key", sa.String(length=160), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_outbox_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
        sa.UniqueConstraint(
            "webhook_id", "event_key", name=op.f("uq_webhook_outbox_webhook_id_event_key")
        ),
    )
    op.create_index(op.f("ix_webhook_outbox_state_due_at"), "webhook_outbox", ["state", "due_at"])
    op.create_index(
        op.f("ix_webhook_outbox_webhook_id_created_at"),
        "webhook_outbox",
        ["webhook_id", "created_at"],
    )
    op.create_table(
        "webhook_watermark",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_webhook_watermark")),
    )
    op.create_index(op.f("ix_executions_finished_at"), "executions", ["finished_at"])
    # The outbox row is the delivery record now (attempts, last status, last error).
    op.drop_table("webhook_deliveries")


def downgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.drop_index(op.f("ix_executions_finished_at"), table_name="executions")
    op.drop_table("webhook_watermark")
    op.drop_index(op.f("ix_webhook_outbox_webhook_id_created_at"), table_name="webhook_outbox")
    op.drop_index(op.f("ix_webhook_outbox_state_due_at"), table_name="webhook_outbox")
    op.drop_table("webhook_outbox")

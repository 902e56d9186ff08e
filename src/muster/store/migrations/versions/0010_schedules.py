"""schedules and their firings (issue 12)

Reserved so that work on several areas can add its schema in parallel with a
fixed revision chain; the work named here fills it in (it changes nothing
until then).

Revision ID: 0010_schedules
Revises: 0009_webhook_outbox
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0010_schedules"
down_revision = "0009_webhook_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

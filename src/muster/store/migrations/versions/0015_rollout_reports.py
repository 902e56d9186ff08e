"""published rollout reports (issue 14)

Reserved so that work on several areas can add its schema in parallel with a
fixed revision chain; the work named here fills it in (it changes nothing
until then).

Revision ID: 0015_rollout_reports
Revises: 0014_workers
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0015_rollout_reports"
down_revision = "0014_workers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

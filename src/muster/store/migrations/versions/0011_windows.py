"""maintenance windows (issue 12)

Reserved so that work on several areas can add its schema in parallel with a
fixed revision chain; the work named here fills it in (it changes nothing
until then).

Revision ID: 0011_windows
Revises: 0010_schedules
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0011_windows"
down_revision = "0010_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

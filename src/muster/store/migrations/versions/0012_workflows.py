"""workflows and their instances (issue 13)

Reserved so that work on several areas can add its schema in parallel with a
fixed revision chain; the work named here fills it in (it changes nothing
until then).

Revision ID: 0012_workflows
Revises: 0011_windows
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0012_workflows"
down_revision = "0011_windows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""console additions (issue 11)

Reserved so that work on several areas can add its schema in parallel with a
fixed revision chain; the work named here fills it in (it changes nothing
until then).

Revision ID: 0013_console
Revises: 0012_workflows
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0013_console"
down_revision = "0012_workflows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

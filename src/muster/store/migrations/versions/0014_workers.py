"""worker presence and drain (issue 11)

Reserved so that work on several areas can add its schema in parallel with a
fixed revision chain; the work named here fills it in (it changes nothing
until then).

Revision ID: 0014_workers
Revises: 0013_console
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0014_workers"
down_revision = "0013_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

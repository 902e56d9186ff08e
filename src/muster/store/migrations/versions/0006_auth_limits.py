"""login throttling per user and per address

Revision ID: 0006_auth_limits
Revises: 0005_approval_requirement
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0006_auth_limits"
down_revision = "0005_approval_requirement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""approval requirement as a policy of the script and of host groups

Revision ID: 0005_approval_requirement
Revises: 0004_webhooks
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0005_approval_requirement"
down_revision = "0004_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

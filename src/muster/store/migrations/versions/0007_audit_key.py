"""keyed audit chain

Revision ID: 0007_audit_key
Revises: 0006_auth_limits
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0007_audit_key"
down_revision = "0006_auth_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

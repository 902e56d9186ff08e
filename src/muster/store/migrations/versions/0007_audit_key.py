"""keyed audit chain: the id of the HMAC key that chained each audit record

Records written before this revision keep ``key_id`` NULL: they verify as
the plain SHA-256 chain they were written as, and only as a prefix that a
keyed switch record (``audit.keyed``) seals (see ``muster.security.audit``).

Revision ID: 0007_audit_key
Revises: 0006_auth_limits
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_audit_key"
down_revision = "0006_auth_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("key_id")

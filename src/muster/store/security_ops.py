"""Every identity-and-safety operation on one class, for faces that need only these.

The full :class:`~muster.store.sqlalchemy_store.SqlStore` should list the
same mixins among its bases; until it does, the CLI's ``user`` and
``audit`` commands (and the server, if it wants) build a
:class:`SecurityStore` on the same engine.
"""

from __future__ import annotations

from sqlalchemy import Engine

from muster.config import Settings
from muster.store._core import make_engine
from muster.store.approval_policy_store import ApprovalPolicyOps
from muster.store.approval_store import ApprovalOps
from muster.store.audit_store import AuditOps
from muster.store.migrations import upgrade
from muster.store.security_store import SecurityOps
from muster.store.session_store import SessionOps

__all__ = ["SecurityStore", "open_security_store"]


class SecurityStore(SecurityOps, SessionOps, AuditOps, ApprovalOps, ApprovalPolicyOps):
    """Users, roles, tokens, sessions, audit log and approvals over one engine."""


def open_security_store(settings: Settings, *, engine: Engine | None = None) -> SecurityStore:
    """A migrated :class:`SecurityStore` for ``settings`` (no vault key needed)."""
    if engine is None:
        if not settings.database_url:
            settings.ensure_data_dir()
        engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    return SecurityStore(engine)

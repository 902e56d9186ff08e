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
from muster.store.audit_store import AuditOps, open_audit_keys
from muster.store.migrations import upgrade
from muster.store.security_store import SecurityOps
from muster.store.session_store import SessionOps

__all__ = ["SecurityStore", "open_security_store"]


class SecurityStore(SecurityOps, SessionOps, AuditOps, ApprovalOps, ApprovalPolicyOps):
    """Users, roles, tokens, sessions, audit log and approvals over one engine."""


def open_security_store(
    settings: Settings, *, engine: Engine | None = None, create_audit_key: bool = True
) -> SecurityStore:
    """A migrated :class:`SecurityStore` for ``settings``, with the audit key loaded
    (no vault key needed). ``create_audit_key=False`` for readers such as
    ``muster audit verify``, which must not create a key or write a record."""
    if engine is None:
        if not settings.database_url:
            settings.ensure_data_dir()
        engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    open_audit_keys(engine, settings, create=create_audit_key)
    return SecurityStore(engine)

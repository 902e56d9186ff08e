"""The store's areas beyond the queue, one Protocol each, and the whole a server opens.

:class:`~muster.store.base.Store` is what the engine and workers need
(scripts, hosts, executions, the queue, output, console reads). A server
also keeps identities, sessions, the audit log, approvals and the vault's
credentials; each area is a Protocol here, so a caller names the area it
uses and never reaches behind the store for its database. One object
implements them all (:class:`~muster.store.sqlalchemy_store.SqlStore`,
opened once by :func:`muster.app.open_services`); :class:`ServerStore`
names that whole.

Record types live beside their SQL (they are plain dataclasses); they are
imported for type checking only, so importing this module costs nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from muster.engine.workflow_store import WorkflowStore
from muster.store.base import Page, Store
from muster.store.outbox import WebhookStore
from muster.store.schedule_records import ScheduleStore
from muster.store.workflow_durable import DurableWorkflowStore

if TYPE_CHECKING:
    from muster.config import Settings
    from muster.domain.approval_rules import ApprovalRule, ApprovalScope
    from muster.domain.approvals import ApprovalRequest, ApprovalStatus, Decision
    from muster.domain.credentials import CredentialKind, SshCredential
    from muster.domain.hosts import Host
    from muster.domain.secret import Secret
    from muster.security.audit import AuditRecord, VerifyResult
    from muster.security.rbac import Permission, Principal
    from muster.security.tokens import IssuedToken
    from muster.security.vault import Vault
    from muster.store.approval_policy_store import StoredApprovalRule
    from muster.store.approval_store import ApprovalRecord
    from muster.store.credential_store import CredentialInfo
    from muster.store.notify import Notifier
    from muster.store.security_ops import TokenInfo, UserChange, UserRecord
    from muster.store.session_store import SessionInfo

__all__ = [
    "ApprovalRuleStore",
    "ApprovalStore",
    "AuditStore",
    "CredentialStore",
    "SecurityStore",
    "ServerStore",
    "SessionStore",
    "WorkflowStore",
]


class SecurityStore(Protocol):
    """Users, custom roles and API tokens; password and token checks (login limits
    included). Clear passwords and tokens only pass through."""

    def custom_roles(self) -> dict[str, frozenset[Permission]]: ...
    def create_role(self, name: str, permissions: Iterable[str], description: str = "") -> None: ...
    def delete_role(self, name: str) -> None: ...
    def create_user(
        self,
        name: str,
        *,
        roles: Sequence[str],
        password: str | Secret | None = None,
        must_change_password: bool = False,
    ) -> UserRecord: ...
    def bootstrap_admin(self, name: str = "admin") -> Secret | None: ...
    def get_user(self, id_or_name: str) -> UserRecord: ...
    def list_users(self) -> list[UserRecord]: ...
    def update_user(
        self,
        id_or_name: str,
        *,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password: str | Secret | None = None,
    ) -> UserRecord: ...
    def change_user(
        self,
        id_or_name: str,
        *,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password: str | Secret | None = None,
        keep_session: str | Secret | None = None,
        revoke_tokens: bool = False,
        must_change_password: bool | None = None,
    ) -> UserChange: ...
    def count_admins(self) -> int: ...
    def authenticate_password(
        self, name: str, password: str | Secret, *, address: str | None = None
    ) -> Principal: ...
    def create_token(
        self,
        user: str,
        name: str,
        *,
        ttl: dt.timedelta = ...,
        role: str | None = None,
    ) -> tuple[IssuedToken, TokenInfo]: ...
    def list_tokens(self, user: str | None = None) -> list[TokenInfo]: ...
    def revoke_token(self, token_id: str) -> None: ...
    def authenticate_token(self, presented: str | Secret) -> Principal: ...


class SessionStore(Protocol):
    """Console sessions: the cookie is only passed through; the table keeps its hash."""

    def create_session(
        self, user_id: str, *, address: str | None = None, ttl: dt.timedelta = ...
    ) -> tuple[Secret, str]: ...
    def get_session(self, cookie: str | Secret) -> SessionInfo: ...
    def delete_session(self, cookie: str | Secret) -> None: ...
    def count_sessions(self) -> int: ...


class AuditStore(Protocol):
    """The HMAC-chained audit log: append, query, verify."""

    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
        secret_keys: Iterable[str] = (),
        secrets: Iterable[str | Secret] = (),
    ) -> AuditRecord: ...
    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        target: str | None = None,
    ) -> Page[AuditRecord]: ...
    def iter_audit(self, *, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditRecord]: ...
    def verify_audit(self, *, anchors: Sequence[tuple[int, str]] = ()) -> VerifyResult: ...
    def seal_legacy_audit(self) -> AuditRecord: ...
    def load_audit_key(self, settings: Settings, *, create: bool) -> None: ...


class ApprovalStore(Protocol):
    """Approval requests and their votes."""

    def create_approval(
        self,
        request: ApprovalRequest,
        *,
        execution_id: str | None = None,
        content_hash: str | None = None,
        first_only: bool = False,
    ) -> ApprovalRecord: ...
    def get_approval(self, request_id: str) -> ApprovalRecord: ...
    def approval_for_execution(self, execution_id: str) -> ApprovalRecord | None: ...
    def list_approvals(
        self, *, status: ApprovalStatus | str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[ApprovalRecord]: ...
    def decide_approval(
        self,
        request_id: str,
        user: str,
        roles: Iterable[str],
        decision: Decision | str,
        reason: str | None = None,
    ) -> ApprovalRecord: ...
    def expire_due_approvals(self, now: dt.datetime | None = None) -> list[ApprovalRecord]: ...
    def delete_approval(self, request_id: str) -> None: ...


class ApprovalRuleStore(Protocol):
    """Who must approve runs of a script or on a host group."""

    def save_approval_rule(
        self, rule: ApprovalRule, *, updated_by: str | None = None
    ) -> StoredApprovalRule: ...
    def approval_rule(self, scope: ApprovalScope | str, name: str) -> StoredApprovalRule | None: ...
    def approval_rules(
        self, scope: ApprovalScope | str, names: Iterable[str] | None = None
    ) -> dict[str, StoredApprovalRule]: ...
    def delete_approval_rule(self, scope: ApprovalScope | str, name: str) -> bool: ...


class CredentialStore(Protocol):
    """The vault's credentials: written once, read back as metadata, opened only for a
    connection; and re-sealing under a new master key."""

    def create_credential(
        self,
        name: str,
        kind: CredentialKind | str,
        secret: Secret,
        *,
        username: str | None = None,
        passphrase: Secret | None = None,
        description: str = "",
        fingerprint: str | None = None,
        created_by: str | None = None,
    ) -> CredentialInfo: ...
    def get_credential(self, id_or_name: str) -> CredentialInfo: ...
    def list_credentials(self) -> list[CredentialInfo]: ...
    def delete_credential(self, id_or_name: str) -> CredentialInfo: ...
    def replace_credential(
        self,
        id_or_name: str,
        secret: Secret,
        *,
        passphrase: Secret | None = None,
        username: str | None = None,
        fingerprint: str | None = None,
    ) -> CredentialInfo: ...
    def open_credential(self, id_or_name: str) -> SshCredential: ...
    def set_group_credential(self, group: str, credential: str | None) -> None: ...
    def group_credentials(self) -> dict[str, str]: ...
    def credential_ref_for(self, host: Host) -> str | None: ...
    def ssh_credential(self, host: Host) -> SshCredential | None: ...
    def sealed_key_ids(self) -> set[str]: ...
    def rekey(self, batch: int = 200) -> int: ...


class ServerStore(
    Store,
    SecurityStore,
    SessionStore,
    AuditStore,
    ApprovalStore,
    ApprovalRuleStore,
    CredentialStore,
    WebhookStore,
    DurableWorkflowStore,
    ScheduleStore,
    Protocol,
):
    """Every area at once, as the server, ``muster worker`` and the CLI's database
    commands open it; plus what the process around it wires up."""

    vault: Vault | None
    notifier: Notifier
    clock: Callable[[], dt.datetime]

    def close(self) -> None: ...

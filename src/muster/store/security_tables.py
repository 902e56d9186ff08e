"""Tables for identity and safety: users, custom roles, API tokens, console
sessions, approval requests and votes, the hash-chained audit log, and the
credentials vault (sealed SSH keys, passwords and tokens).

They live on the store's one ``metadata`` so migrations and comparisons see a
single schema; migration ``0002_security`` creates exactly these. Nothing
here holds a usable secret: passwords are argon2id hashes, tokens and
session ids are SHA-256 digests, audit details are masked before they are
hashed and written.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from muster.store.tables import UTCDateTime, metadata

__all__ = [
    "api_tokens",
    "approval_requests",
    "approval_votes",
    "audit_log",
    "credentials",
    "custom_roles",
    "group_approval_policies",
    "group_credentials",
    "kind_approval_policies",
    "login_limits",
    "script_approval_policies",
    "sessions",
    "users",
]

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    #: argon2id PHC string; NULL means password login is impossible (token-only or disabled).
    Column("password_hash", Text),
    Column("roles", JSON, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    #: Set for a generated bootstrap password: the first login must change it.
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    Column("last_login_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

custom_roles = Table(
    "custom_roles",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("permissions", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("lookup", String(16), nullable=False, unique=True),
    Column("digest", String(64), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("role", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Index(None, "user_id"),
)

#: Login attempts per client address (``user_name`` = "") and per (address,
#: user name), added by ``0006_auth_limits``: counted and locked by single
#: ``UPDATE`` statements (see ``muster.store.security_ops``). A row quiet
#: for an hour starts over; names that are no user count like real ones.
login_limits = Table(
    "login_limits",
    metadata,
    Column("address", String(64), primary_key=True),
    Column("user_name", String(128), primary_key=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "updated_at"),
)

sessions = Table(
    "sessions",
    metadata,
    #: SHA-256 of the cookie value; the cookie itself is never stored.
    Column("digest", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("address", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index(None, "user_id"),
    Index(None, "expires_at"),
)

approval_requests = Table(
    "approval_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    #: What is being approved, e.g. ``execution:<id>`` or ``workflow_step:<instance>/<step>``.
    Column("subject", String(160), nullable=False),
    Column("execution_id", String(36), ForeignKey("executions.id", ondelete="CASCADE")),
    #: The exact script content the approvers saw; the execution must run this hash.
    Column("content_hash", String(64)),
    Column("policy", String(16), nullable=False),
    Column("approvers", JSON, nullable=False),
    Column("electorate", JSON),
    Column("requester", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("deadline", UTCDateTime),
    Column("decided_at", UTCDateTime),
    Column("reason", Text),
    #: 1 for an execution's first request, +1 for each retry that needed a new
    #: approval (NULL: written before 0005, counts as 1); only the highest settles.
    Column("round_no", Integer),
    Index(None, "status", "deadline"),
    Index(None, "execution_id"),
    Index(None, "subject"),
)

approval_votes = Table(
    "approval_votes",
    metadata,
    Column(
        "request_id",
        String(36),
        ForeignKey("approval_requests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    #: The primary key makes "one vote per user" a database fact too.
    Column("user", String(128), primary_key=True),
    Column("decision", String(8), nullable=False),
    Column("reason", Text),
    Column("at", UTCDateTime, nullable=False),
)

#: Append-only. ``seq`` is assigned by the writer (head + 1), never by the
#: database, so two writers racing for the same predecessor collide on the key.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256), nullable=False),
    Column("address", String(64)),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    #: Id of the HMAC key that chained this record; NULL: a legacy SHA-256 record
    #: written before keyed audit (migration 0007_audit_key).
    Column("key_id", String(16)),
    Index(None, "actor", "at"),
    Index(None, "action", "at"),
    Index(None, "at"),
)

#: The vault: ``token`` is AES-GCM sealed, bound to ``credentials:<id>:secret``
#: (and the passphrase to ``credentials:<id>:passphrase``); ``key_id`` names the
#: master key that sealed it, so rotation finds what is left to re-seal.
credentials = Table(
    "credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    #: Login user for hosts that name none.
    Column("username", String(128)),
    #: Public facts only: the key's type and SHA-256 fingerprint.
    Column("fingerprint", String(128)),
    Column("key_id", String(16), nullable=False),
    Column("token", Text, nullable=False),
    Column("passphrase_token", Text),
    Column("created_by", String(128)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "key_id"),
)

#: A group's default credential, for member hosts that name none themselves.
group_credentials = Table(
    "group_credentials",
    metadata,
    Column("group_name", String(253), primary_key=True),
    Column("credential_name", String(128), nullable=False),
)

#: A script's approval rule, set by an ``approvals.manage`` holder: whether its
#: executions (any version) need approval, and who approves (scripts without a
#: row need none; the default approvers are one_of_many of approver/admin).
script_approval_policies = Table(
    "script_approval_policies",
    metadata,
    Column("script_id", String(36), ForeignKey("scripts.id", ondelete="CASCADE"), primary_key=True),
    Column("policy", String(16), nullable=False),
    Column("approvers", JSON, nullable=False),
    #: Seconds from the request to its deadline; NULL: no deadline.
    Column("deadline_seconds", Integer),
    Column("updated_by", String(128)),
    Column("updated_at", UTCDateTime, nullable=False),
    #: Added by 0005_approval_requirement: the requirement moved here from versions.
    Column("required", Boolean, nullable=False, default=False),
    Column("retry_needs_approval", Boolean, nullable=False, default=True),
)

#: A host group's approval rule: every execution targeting a member host
#: (script, command or job) needs approval when ``required``.
group_approval_policies = Table(
    "group_approval_policies",
    metadata,
    Column("group_name", String(253), primary_key=True),
    Column("required", Boolean, nullable=False, default=False),
    Column("policy", String(16), nullable=False),
    Column("approvers", JSON, nullable=False),
    Column("deadline_seconds", Integer),
    Column("retry_needs_approval", Boolean, nullable=False, default=True),
    Column("updated_by", String(128)),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: The server-wide rule for ad-hoc commands (``command``) and built-in jobs (``job``).
kind_approval_policies = Table(
    "kind_approval_policies",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("required", Boolean, nullable=False, default=False),
    Column("policy", String(16), nullable=False),
    Column("approvers", JSON, nullable=False),
    Column("deadline_seconds", Integer),
    Column("retry_needs_approval", Boolean, nullable=False, default=True),
    Column("updated_by", String(128)),
    Column("updated_at", UTCDateTime, nullable=False),
)

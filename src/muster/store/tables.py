"""The database schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Migrations in ``migrations/versions`` create exactly these tables; a test
compares the two. Times are stored as UTC and read back timezone-aware.
Secret parameter values never appear here in clear: ``executions.parameters``
holds ``***`` for them and ``execution_secrets`` holds their AES-GCM tokens.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "STATE_COUNTERS",
    "UTCDateTime",
    "execution_secrets",
    "executions",
    "host_runs",
    "hosts",
    "metadata",
    "output_chunks",
    "script_versions",
    "scripts",
    "webhook_outbox",
    "webhook_watermark",
    "webhooks",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: 64-bit ids on PostgreSQL; SQLite needs INTEGER for an autoincrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware times")
        utc: dt.datetime = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        stored: dt.datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=dt.UTC)
        return stored.astimezone(dt.UTC)


scripts = Table(
    "scripts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("latest_version", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
)

script_versions = Table(
    "script_versions",
    metadata,
    Column("script_id", String(36), ForeignKey("scripts.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("shell", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("timeout", Float, nullable=False),
    Column("requires_approval", Boolean, nullable=False),
    Column("idempotent", Boolean, nullable=False),
    Column("libraries", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(128)),
    Index(None, "script_id", "content_hash"),
)

hosts = Table(
    "hosts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(253), nullable=False, unique=True),
    Column("address", String(253)),
    Column("port", Integer, nullable=False),
    Column("user", String(128)),
    Column("transport", String(16), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("shells", JSON, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("groups", JSON, nullable=False),
    Column("vars", JSON, nullable=False),
    Column("key_file", Text),
    Column("credential_ref", String(253)),
    Column("last_contact", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: One counter column per host-run state, so an execution's status is a
#: function of one row, updated in the transaction that changes a host run.
STATE_COUNTERS: tuple[str, ...] = (
    "pending_approval",
    "queued",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "skipped",
    "rejected",
    "lost",
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("job_type", String(32)),
    Column("description", Text, nullable=False, default=""),
    Column("script_id", String(36), ForeignKey("scripts.id")),
    Column("script_version", Integer),
    Column("content_hash", String(64)),
    Column("command", Text),
    Column("shell", String(16)),
    Column("timeout", Float, nullable=False),
    Column("idempotent", Boolean, nullable=False, default=False),
    Column("parameters", JSON, nullable=False),
    Column("secret_fields", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("requested_by", String(128)),
    Column("policy", JSON, nullable=False),
    #: Throttle (domain.throttle): NULL limits mean none; the claim reads these.
    Column("forks", Integer),
    Column("per_group", Integer),
    Column("delay_seconds", Float, nullable=False, default=0.0),
    #: With a delay: no host of this execution is claimed before this time.
    Column("next_start_at", UTCDateTime),
    #: Last time a throttled claim started a host: waiting for a slot is not "not picked up".
    Column("last_claim_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    #: Cache of rollup(host run states), kept in step with the counters below.
    Column("status", String(20), nullable=False),
    *(Column(f"n_{s}", Integer, nullable=False, default=0) for s in STATE_COUNTERS),
    Index(None, "status", "created_at"),
    Index(None, "script_id", "created_at"),
    Index(None, "created_at"),
    #: The webhook watcher's sweep reads executions by the time they finished.
    Index(None, "finished_at"),
)

execution_secrets = Table(
    "execution_secrets",
    metadata,
    Column(
        "execution_id",
        String(36),
        ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("field", String(64), primary_key=True),
    Column("key_id", String(16), nullable=False),
    Column("token", Text, nullable=False),
)

host_runs = Table(
    "host_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "execution_id",
        String(36),
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("host_id", String(36), ForeignKey("hosts.id", ondelete="SET NULL")),
    Column("host_name", String(253), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempt", Integer, nullable=False, default=1),
    Column("retry_of", String(36)),
    #: A later attempt replaced this one: kept as history, left out of the roll-up.
    Column("superseded", Boolean, nullable=False, default=False),
    Column("priority", Integer, nullable=False),
    Column("timeout", Float, nullable=False),
    #: First entered the queue: the claim order (priority, then this).
    Column("queued_at", UTCDateTime, nullable=False),
    #: When it last became claimable: the 30-minute "not picked up" clock.
    Column("available_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime),
    #: Set right before the command is sent; NULL means nothing ran yet.
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("exit_code", Integer),
    Column("reason", String(32)),
    Column("message", Text),
    Column("waiting_reason", Text),
    Column("owner", String(128)),
    Column("epoch", Integer, nullable=False, default=0),
    Column("lease_expires_at", UTCDateTime),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("stdout_tail", Text, nullable=False, default=""),
    Column("stderr_tail", Text, nullable=False, default=""),
    #: Bytes produced (stored or not) per stream, and bytes stored in total.
    Column("stdout_bytes", BigInteger, nullable=False, default=0),
    Column("stderr_bytes", BigInteger, nullable=False, default=0),
    Column("stored_bytes", BigInteger, nullable=False, default=0),
    Column("stdout_truncated", Boolean, nullable=False, default=False),
    Column("stderr_truncated", Boolean, nullable=False, default=False),
    Column("chunks", Integer, nullable=False, default=0),
    Column("events", Integer, nullable=False, default=0),
    #: The host's groups (domain.throttle.group_key), for per-group limits.
    Column("group_key", Text),
    #: Its execution has limits: claimed by the throttled path, not the fast one.
    Column("throttled", Boolean, nullable=False, default=False),
    Index(None, "state", "priority", "queued_at"),
    Index(None, "state", "lease_expires_at"),
    Index(None, "execution_id"),
    Index(None, "host_id"),
)

output_chunks = Table(
    "output_chunks",
    metadata,
    #: Also the SSE event id: strictly increasing, so Last-Event-ID resumes.
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "execution_id",
        String(36),
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "host_run_id",
        String(36),
        ForeignKey("host_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("stream", String(8), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "execution_id", "id"),
    Index(None, "host_run_id", "id"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    #: Sealed with the vault (``v:`` prefix) when the store has one: it signs deliveries.
    Column("secret", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

#: One row per (webhook, event): the durable outbox. The id is the delivery id.
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("webhook_id", String(36), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    #: Names the state change; unique per webhook, so it is written once.
    Column("event_key", String(160), nullable=False),
    Column("event", String(64), nullable=False),
    #: The exact JSON sent and signed, the same on every attempt.
    Column("body", Text, nullable=False),
    #: pending, delivered or failed (``store.outbox.DeliveryState``).
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    #: The claimer holding it (pending rows only); ``due_at`` is then its lease's end.
    Column("owner", String(128)),
    #: Pending: when it may be claimed (now, a retry's time, or a claim's lease end).
    Column("due_at", UTCDateTime, nullable=False),
    Column("status_code", Integer),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    UniqueConstraint("webhook_id", "event_key"),
    Index(None, "state", "due_at"),
    Index(None, "webhook_id", "created_at"),
)

#: Executions that finished before ``position`` have had their events written
#: (the watcher's sweep moves it; a restart sweeps from there).
webhook_watermark = Table(
    "webhook_watermark",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", UTCDateTime, nullable=False),
)

"""Tables for schedules and their firings (migration ``0010_schedules``).

On the store's one ``metadata``, so migrations and comparisons see one schema.
``(schedule_id, due_at)`` is unique: a tick is recorded once, whichever
scheduler records it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from muster.store.tables import UTCDateTime, metadata

__all__ = ["schedule_firings", "schedules"]

schedules = Table(
    "schedules",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("cron_expression", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    #: script, command, job or workflow (``domain.schedules.TargetKind``).
    Column("target_kind", String(16), nullable=False),
    #: The script's id (a script schedule); its version, or NULL for "latest at fire time".
    Column("script_id", String(36)),
    Column("script_version", Integer),
    Column("command", Text),
    Column("shell", String(16), nullable=False),
    Column("timeout", Float, nullable=False),
    Column("job_type", String(32)),
    Column("job_fields", JSON, nullable=False),
    Column("workflow", String(200)),
    Column("selector", JSON, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("forks", Integer),
    Column("per_group", Integer),
    Column("delay_seconds", Float, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("max_runs", Integer),
    Column("end_at", UTCDateTime),
    Column("misfire_policy", String(16), nullable=False),
    Column("catch_up_limit", Integer, nullable=False),
    Column("max_lateness_seconds", Float),
    Column("created_by", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    #: Every tick at or before it is decided.
    Column("cursor", UTCDateTime, nullable=False),
    Column("runs", Integer, nullable=False),
    #: The next tick that may fire; NULL when nothing will (ended, used up).
    Column("next_run", UTCDateTime),
    Column("last_run", UTCDateTime),
    Column("last_firing_status", String(16)),
    Column("last_execution_id", String(36)),
    Index(None, "enabled", "next_run"),
)

schedule_firings = Table(
    "schedule_firings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "schedule_id", String(36), ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False
    ),
    Column("due_at", UTCDateTime, nullable=False),
    Column("fired_at", UTCDateTime, nullable=False),
    #: fired, missed, skipped or failed (``domain.schedules.FiringStatus``).
    Column("status", String(16), nullable=False),
    #: Not a foreign key: deleting an execution keeps the firing's record.
    Column("execution_id", String(36)),
    Column("script_version", Integer),
    Column("content_hash", String(64)),
    Column("reason", Text),
    Column("manual", Boolean, nullable=False),
    UniqueConstraint("schedule_id", "due_at"),
)

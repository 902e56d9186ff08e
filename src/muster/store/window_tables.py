"""Tables for maintenance windows (issue 12), on the store's one ``metadata``.

``maintenance_windows`` holds the windows themselves (recurring ones as
weekday numbers and local times, one-off ones as UTC instants).
``window_holds`` records, per claimed host run, when the open period it
started in closes and whether the window stops it then; the reaper's sweep
reads it. ``window_overrides`` names the executions someone allowed to run
outside their windows. Migration ``0011_windows`` creates exactly these.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from muster.store.tables import UTCDateTime, metadata

__all__ = ["maintenance_windows", "window_holds", "window_overrides"]

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    #: recurring, extra or blackout (domain.windows.WindowKind).
    Column("kind", String(16), nullable=False),
    #: host, group or all (domain.windows.WindowScope), and the host or group named.
    Column("scope", String(8), nullable=False),
    Column("target", String(253), nullable=False),
    Column("timezone", String(64), nullable=False),
    #: Recurring: weekday numbers (Mon=0) joined by commas, and HH:MM local times.
    Column("days", String(16)),
    Column("start_time", String(5)),
    Column("end_time", String(5)),
    #: One-off: the period, in UTC.
    Column("starts_at", UTCDateTime),
    Column("ends_at", UTCDateTime),
    #: finish or stop (domain.windows.ClosePolicy).
    Column("close_policy", String(8), nullable=False),
    Column("created_by", String(128)),
    Column("created_at", UTCDateTime, nullable=False),
)

window_holds = Table(
    "window_holds",
    metadata,
    Column(
        "run_id",
        String(36),
        ForeignKey("host_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    #: The epoch of the claim the hold belongs to (a later claim replaces it).
    Column("epoch", Integer, nullable=False),
    Column("closes_at", UTCDateTime, nullable=False),
    Column("stop", Boolean, nullable=False),
    Column("window", String(200)),
    #: Set when the sweep acted on the close; the run's stop message when it stopped it.
    Column("done", Boolean, nullable=False, default=False),
    Column("stop_reason", Text),
    Index(None, "done", "closes_at"),
)

window_overrides = Table(
    "window_overrides",
    metadata,
    Column(
        "execution_id",
        String(36),
        ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("by", String(128)),
    Column("at", UTCDateTime, nullable=False),
)

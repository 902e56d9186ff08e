"""The table of published rollout reports (issue 14), on the store's one ``metadata``.

Migration ``0015_rollout_reports`` creates exactly this.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table

from muster.store.tables import UTCDateTime, metadata

__all__ = ["rollout_reports"]

rollout_reports = Table(
    "rollout_reports",
    metadata,
    #: The rollout's own id (the engine's), chosen by the publisher.
    Column("id", String(128), primary_key=True),
    Column("workflow", String(200), nullable=False),
    #: A RolloutStatus value as published (succeeded, rolled_back, ...).
    Column("status", String(32), nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("hosts", Integer, nullable=False),
    Column("flagged", Integer, nullable=False),
    Column("published_by", String(128)),
    Column("published_at", UTCDateTime, nullable=False),
    #: SHA-256 of the document's canonical JSON: re-publishing it is a no-op.
    Column("content_hash", String(64), nullable=False),
    #: The whole report (waves, gates, rollback lane, evidence), secrets masked.
    Column("document", JSON, nullable=False),
    Index(None, "published_at"),
)

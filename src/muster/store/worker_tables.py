"""The ``workers`` table (issue 11), on the store's one ``metadata``.

One row per worker process ever started: where it runs, its last heartbeat
and lease (a listing reads ``lost`` from them), the state it reported, and
the drain an operator asked for. Migration ``0014_workers`` creates exactly this.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, String, Table

from muster.store.tables import UTCDateTime, metadata
from muster.store.worker_records import MAX_WORKER_ID

__all__ = ["workers"]

workers = Table(
    "workers",
    metadata,
    Column("id", String(MAX_WORKER_ID), primary_key=True),
    Column("hostname", String(253), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_heartbeat", UTCDateTime, nullable=False),
    Column("lease_seconds", Float, nullable=False),
    #: running, draining, drained or stopped (domain.workers.WorkerState; never lost).
    Column("state", String(16), nullable=False),
    Column("drain_requested", Boolean, nullable=False, default=False),
    Column("drain_requested_at", UTCDateTime),
    Column("drain_requested_by", String(128)),
    Column("stopped_at", UTCDateTime),
)

"""Alembic environment: always given a live connection by ``migrations.upgrade``."""

from __future__ import annotations

import contextlib

from alembic import context

from muster.store.tables import metadata

# Every module that adds tables to the shared metadata, for autogenerate.
with contextlib.suppress(ImportError):
    import muster.store.rollout_report_tables
    import muster.store.schedule_tables
    import muster.store.security_tables
    import muster.store.webhooks
    import muster.store.window_tables
    import muster.store.worker_tables
    import muster.store.workflow_tables  # noqa: F401

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by running alembic by hand
    raise RuntimeError("run migrations through muster.store.migrations.upgrade()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

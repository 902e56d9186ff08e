"""Migrations build exactly the schema the code declares, idempotently."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

# Tables other modules hang on the same metadata must be imported to be compared.
import muster.store.rollout_report_tables
import muster.store.schedule_tables
import muster.store.security_tables
import muster.store.webhooks
import muster.store.workflow_tables  # noqa: F401
from muster.store.migrations import current_revision, head_revision, upgrade
from muster.store.tables import metadata


def test_migrated_schema_matches_the_tables(engine):
    upgrade(engine)  # a second run is a no-op
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []

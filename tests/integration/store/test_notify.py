"""Live-output wake-ups: in-process fan-out, and LISTEN/NOTIFY across connections."""

from __future__ import annotations

import pytest

from muster.store._core import make_engine
from muster.store.notify import Notifier, PostgresListener, execution_key
from muster.store.sqlalchemy_store import SqlStore, libpq_conninfo

from .conftest import make_hosts, script_execution


async def test_a_writer_elsewhere_wakes_a_subscriber_here(store, db_url, vault):
    """On PostgreSQL the writer is another engine (as another process would be);
    on SQLite the writer is the same process and its notifier fans out directly."""
    ex = script_execution(store, make_hosts(store, 1))
    if store.is_postgres:
        reader_hub = Notifier()
        PostgresListener(libpq_conninfo(store.engine), reader_hub).start()
        writer = SqlStore(make_engine(db_url), vault=vault, clock=store.clock)  # unheard notifier
    else:
        reader_hub, writer = store.notifier, store
    try:
        with reader_hub.subscribe(execution_key(ex.id)) as sub:
            [c] = writer.claim_host_runs("w", 1, 30)
            assert await sub.wait(10.0), "the claim did not wake the subscriber"
            writer.mark_started(c.id, "w", c.epoch)
            assert writer.append_output(c.id, "w", c.epoch, "stdout", "hi\n")
            assert await sub.wait(10.0), "new output did not wake the subscriber"
            assert writer.finish_host_run(
                c.id,
                "w",
                c.epoch,
                __import__(
                    "muster.domain.states", fromlist=["HostRunState"]
                ).HostRunState.SUCCEEDED,
            )
            assert await sub.wait(10.0), "the finish did not wake the subscriber"
    finally:
        if writer is not store:
            writer.engine.dispose()
        if reader_hub is not store.notifier:
            reader_hub.close()


def test_listener_conninfo_drops_the_sqlalchemy_driver(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    assert libpq_conninfo(engine).startswith("postgresql://")

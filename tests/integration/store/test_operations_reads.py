"""The store's health probe and ``/metrics`` counts: the server reads them through
the Store, so they hold on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path

from muster.domain.states import HostRunState
from muster.store._core import make_engine
from muster.store.sqlalchemy_store import SqlStore

from .conftest import make_hosts, script_execution

S = HostRunState


def test_counts_by_status_state_queue_and_live_leases(store, clock):
    assert store.read_counts().executions_by_status == {}
    script_execution(store, make_hosts(store, 3, "a"), name="a")
    script_execution(store, make_hosts(store, 2, "b"), name="b")
    first, *_ = store.claim_host_runs("w1", 3, 30)
    store.claim_host_runs("w2", 1, 30)
    assert store.mark_started(first.id, "w1", first.epoch)
    assert store.finish_host_run(first.id, "w1", first.epoch, S.SUCCEEDED, exit_code=0)

    counts = store.read_counts()
    assert counts.host_runs_by_state == {"succeeded": 1, "running": 3, "queued": 1}
    assert counts.queue_depth == 1
    assert counts.active_owners == 2
    assert sum(counts.executions_by_status.values()) == 2
    assert set(counts.executions_by_status) <= {"running", "queued"}

    clock.advance(31)  # every lease has expired: nobody holds live work
    assert store.read_counts().active_owners == 0


def test_ping_answers_true_on_a_live_database(store):
    assert store.ping() is True


def test_ping_says_false_when_the_database_cannot_be_opened(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "muster.db"
    engine = make_engine(f"sqlite:///{missing}")
    try:
        assert SqlStore(engine).ping() is False
    finally:
        engine.dispose()

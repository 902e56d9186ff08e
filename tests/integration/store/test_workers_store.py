"""Worker presence in the store: register, heartbeat, drain and resume, lost workers.

The drain flag is written by an operator and read back by the worker's own
heartbeat, so it reaches a worker on any machine through the database. Each
test runs on SQLite, PostgreSQL and InMemoryStore.
"""

from __future__ import annotations

import pytest

from muster.domain.workers import WorkerState
from muster.errors import ConflictError, NotFoundError, ValidationError
from muster.store.base import Store
from muster.testing import FakeClock

from .conftest import make_hosts, script_execution

W = WorkerState


def register(store: Store, worker_id: str = "w1", lease: float = 30.0) -> None:
    store.register_worker(worker_id, hostname="node-a", pid=4242, lease_seconds=lease)


def test_a_registered_worker_is_listed_running_with_where_it_runs(store: Store) -> None:
    rec = store.register_worker("w1", hostname="node-a", pid=4242, lease_seconds=30.0)
    assert (rec.id, rec.hostname, rec.pid, rec.state) == ("w1", "node-a", 4242, W.RUNNING)
    assert rec.drain_requested is False and rec.runs_held == 0
    assert rec.started_at == rec.last_heartbeat == store.clock()
    assert [r.id for r in store.list_workers()] == ["w1"]
    assert store.get_worker("w1") == rec


def test_heartbeat_stores_the_state_and_reads_back_the_drain_flag(
    store: Store, clock: FakeClock
) -> None:
    register(store)
    clock.advance(10)
    rec = store.report_worker("w1", W.RUNNING)
    assert rec is not None and rec.last_heartbeat == clock.now and not rec.drain_requested
    drained = store.request_drain("w1", by="alice")
    assert drained.drain_requested and drained.drain_requested_by == "alice"
    assert drained.drain_requested_at == clock.now
    # The stored state stays the worker's word until it answers.
    assert drained.state is W.RUNNING
    seen = store.report_worker("w1", W.DRAINED)
    assert seen is not None and seen.drain_requested and seen.state is W.DRAINED
    resumed = store.request_resume("w1", by="bob")
    assert not resumed.drain_requested and resumed.drain_requested_by is None
    again = store.report_worker("w1", W.RUNNING)
    assert again is not None and not again.drain_requested and again.state is W.RUNNING


def test_a_heartbeat_without_a_row_says_so(store: Store) -> None:
    assert store.report_worker("nobody", W.RUNNING) is None
    assert store.list_workers() == []


def test_drain_and_resume_of_an_unknown_worker_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="ghost"):
        store.request_drain("ghost", by="alice")
    with pytest.raises(NotFoundError, match="ghost"):
        store.request_resume("ghost", by="alice")
    with pytest.raises(NotFoundError, match="ghost"):
        store.get_worker("ghost")


def test_a_stopped_worker_cannot_be_drained_and_keeps_its_row(
    store: Store, clock: FakeClock
) -> None:
    register(store)
    clock.advance(5)
    stopped = store.report_worker("w1", W.STOPPED)
    assert stopped is not None and stopped.stopped_at == clock.now
    with pytest.raises(ConflictError, match="stopped"):
        store.request_drain("w1", by="alice")
    clock.advance(3600)
    rec = store.get_worker("w1")
    assert rec.state is W.STOPPED and rec.observed(clock.now) is W.STOPPED


def test_a_worker_whose_heartbeat_is_older_than_its_lease_is_seen_lost(
    store: Store, clock: FakeClock
) -> None:
    register(store, lease=30.0)
    clock.advance(30)
    assert store.get_worker("w1").observed(clock.now) is W.RUNNING
    clock.advance(1)
    (rec,) = store.list_workers()
    assert rec.state is W.RUNNING, "the row keeps what the worker last said"
    assert rec.observed(clock.now) is W.LOST


def test_a_worker_cannot_report_itself_lost_nor_use_an_overlong_id(store: Store) -> None:
    register(store)
    with pytest.raises(ValidationError, match="lost"):
        store.report_worker("w1", W.LOST)
    with pytest.raises(ValidationError, match="128"):
        store.register_worker("x" * 129, hostname="h", pid=1, lease_seconds=30)


def test_a_drain_asked_before_a_restart_under_the_same_id_still_holds(
    store: Store, clock: FakeClock
) -> None:
    register(store)
    store.request_drain("w1", by="alice")
    store.report_worker("w1", W.STOPPED)
    clock.advance(60)
    rec = store.register_worker("w1", hostname="node-b", pid=7, lease_seconds=30)
    assert rec.state is W.RUNNING and rec.stopped_at is None
    assert rec.drain_requested and rec.hostname == "node-b" and rec.started_at == clock.now


def test_runs_held_counts_the_running_claims_of_each_worker(store: Store) -> None:
    register(store, "w1")
    register(store, "w2")
    script_execution(store, make_hosts(store, 5))
    assert len(store.claim_host_runs("w1", 3, 30)) == 3
    assert len(store.claim_host_runs("w2", 1, 30)) == 1
    held = {r.id: r.runs_held for r in store.list_workers()}
    assert held == {"w1": 3, "w2": 1}
    assert store.get_worker("w2").runs_held == 1


def test_the_listing_puts_the_newest_heartbeat_first(store: Store, clock: FakeClock) -> None:
    register(store, "old")
    clock.advance(5)
    register(store, "new")
    clock.advance(5)
    store.report_worker("old", W.RUNNING)
    assert [r.id for r in store.list_workers()] == ["old", "new"]

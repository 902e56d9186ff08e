"""Claims: priority then time, disjoint under concurrency; every change is a CAS."""

from __future__ import annotations

import threading

import pytest

from muster.domain.states import ExecutionStatus, FailureReason, HostRunState, Priority
from muster.errors import StateTransitionError
from muster.store.base import LeaseStatus, Store

from .conftest import make_hosts, script_execution

S = HostRunState


def test_claim_orders_by_priority_then_queue_time(store, clock):
    hosts = make_hosts(store, 3)
    low = script_execution(store, hosts[:1], name="low", priority=Priority.LOW)
    clock.advance(1)
    normal_old = script_execution(store, hosts[1:2], name="n1")
    clock.advance(1)
    normal_new = script_execution(store, hosts[2:3], name="n2")
    clock.advance(1)
    crit = script_execution(store, hosts[:1], name="crit", priority=Priority.CRITICAL)
    order = [c.execution.id for c in store.claim_host_runs("w", 10, 30)]
    assert order == [crit.id, normal_old.id, normal_new.id, low.id]


def test_claim_sets_lease_and_epoch_but_not_started(store, clock):
    ex = script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w1", 5, 30)
    run = store.get_host_run(c.id)
    assert run.state is S.RUNNING and run.owner == "w1" and run.epoch == 1
    assert run.claimed_at == clock.now and run.started_at is None
    assert (run.lease_expires_at - clock.now).total_seconds() == 30
    assert run.waiting_reason is None
    assert store.get_execution(ex.id).status is ExecutionStatus.RUNNING
    assert store.claim_host_runs("w2", 5, 30) == []


def test_queued_runs_say_why_they_wait(store):
    ex = script_execution(store, make_hosts(store, 2))
    assert {r.waiting_reason for r in ex.host_runs} == {"waiting for a free worker"}
    n = store.set_waiting_reason([ex.host_runs[0].id], "outside maintenance window")
    assert n == 1
    assert store.get_host_run(ex.host_runs[0].id).waiting_reason == "outside maintenance window"


def _claim_in_threads(stores: list[Store], per_claim: int) -> list[list[str]]:
    results: list[list[str]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def go(i: int) -> None:
        barrier.wait()
        while True:
            got = stores[i].claim_host_runs(f"w{i}", per_claim, 30)
            if not got:
                return
            results[i].extend(c.id for c in got)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_claimers_never_share_a_run(store, peers):
    ex = script_execution(store, make_hosts(store, 300))
    # On SQL, separate engines: separate connection pools, as separate processes have.
    results = _claim_in_threads([store, *peers(3)], per_claim=7)
    claimed = [r for res in results for r in res]
    assert len(claimed) == 300 and len(set(claimed)) == 300
    rec = store.get_execution(ex.id)
    assert rec.counts["running"] == 300 and rec.counts["queued"] == 0


def test_cas_losers_change_nothing(store, clock):
    script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w1", 1, 30)
    assert not store.mark_started(c.id, "w2", c.epoch)  # wrong owner
    assert not store.mark_started(c.id, "w1", c.epoch + 1)  # wrong epoch
    assert store.mark_started(c.id, "w1", c.epoch)
    assert not store.mark_started(c.id, "w1", c.epoch)  # only once
    assert not store.finish_host_run(c.id, "w2", c.epoch, S.SUCCEEDED, exit_code=0)
    assert store.finish_host_run(
        c.id,
        "w1",
        c.epoch,
        S.FAILED,
        exit_code=3,
        reason=FailureReason.COMMAND_FAILED,
        message="boom",
    )
    # Terminal states never change: a second finish loses.
    assert not store.finish_host_run(c.id, "w1", c.epoch, S.SUCCEEDED, exit_code=0)
    run = store.get_host_run(c.id)
    assert (run.state, run.exit_code, run.reason, run.message) == (
        S.FAILED,
        3,
        "command_failed",
        "boom",
    )
    with pytest.raises(StateTransitionError):
        store.finish_host_run(c.id, "w1", c.epoch, S.PENDING_APPROVAL)


def test_heartbeat_renews_reports_cancel_and_loss(store, clock):
    script_execution(store, make_hosts(store, 2))
    a, b = store.claim_host_runs("w1", 2, 30)
    store.mark_started(a.id, "w1", a.epoch)
    store.mark_started(b.id, "w1", b.epoch)
    clock.advance(20)
    store.cancel_host_run(b.id)  # started: only a request the worker must act on
    status = store.heartbeat("w1", [(a.id, a.epoch), (b.id, b.epoch), ("nope", 1)], 30)
    assert status == {
        a.id: LeaseStatus.RENEWED,
        b.id: LeaseStatus.CANCEL_REQUESTED,
        "nope": LeaseStatus.LOST,
    }
    assert (store.get_host_run(a.id).lease_expires_at - clock.now).total_seconds() == 30
    assert store.heartbeat("w2", [(a.id, a.epoch)], 30) == {a.id: LeaseStatus.LOST}
    assert store.heartbeat("w1", [(a.id, a.epoch + 1)], 30) == {a.id: LeaseStatus.LOST}


def test_release_hands_back_an_unstarted_run(store):
    script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w1", 1, 30)
    assert store.release_host_run(c.id, "w1", c.epoch, "worker shutting down")
    run = store.get_host_run(c.id)
    assert run.state is S.QUEUED and run.owner is None and run.epoch == c.epoch + 1
    assert run.waiting_reason == "worker shutting down"
    [again] = store.claim_host_runs("w2", 1, 30)
    assert again.id == c.id and again.epoch == c.epoch + 2
    assert not store.append_output(c.id, "w1", c.epoch, "stdout", "late")


def test_claim_opens_what_the_worker_needs(store):
    from muster.domain.hosts import TransportKind

    hosts = make_hosts(store, 1)
    script_execution(store, hosts, body="echo ${x}")
    [c] = store.claim_host_runs("w", 1, 30)
    assert c.host is not None and c.host.transport is TransportKind.LOCAL
    assert c.version is not None and c.version.body == "echo ${x}" and c.version.version == 1
    assert c.version.content_hash == c.execution.content_hash

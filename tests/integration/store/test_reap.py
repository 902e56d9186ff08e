"""The reaper's paths, each one, driven by a hand-moved clock."""

from __future__ import annotations

from muster.domain.states import ExecutionStatus, HostRunState
from muster.store.base import LeaseStatus

from .conftest import make_hosts, script_execution

S = HostRunState


def test_expired_unstarted_run_goes_back_to_the_queue(store, clock):
    script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w1", 1, 30)
    clock.advance(29)
    assert store.reap().total == 0  # lease still valid
    clock.advance(2)
    report = store.reap()
    assert report.requeued == (c.id,)
    run = store.get_host_run(c.id)
    assert run.state is S.QUEUED and run.epoch == c.epoch + 1 and run.owner is None
    assert "w1 stopped renewing its lease before sending the command" in run.waiting_reason
    assert not store.mark_started(c.id, "w1", c.epoch)  # the late worker loses
    assert store.heartbeat("w1", [(c.id, c.epoch)], 30) == {c.id: LeaseStatus.LOST}


def test_expired_started_run_is_lost_and_not_rerun(store, clock):
    ex = script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w1", 1, 30)
    store.mark_started(c.id, "w1", c.epoch)
    clock.advance(31)
    report = store.reap()
    assert report.lost == (c.id,) and report.retried == ()
    run = store.get_host_run(c.id)
    assert run.state is S.LOST and run.reason == "worker_lost"
    assert "outcome on the host is unknown" in run.message
    assert store.get_execution(ex.id).status is ExecutionStatus.FAILED
    assert not store.finish_host_run(c.id, "w1", c.epoch, S.SUCCEEDED, exit_code=0)


def test_lost_run_of_an_idempotent_version_gets_a_new_attempt(store, clock):
    ex = script_execution(store, make_hosts(store, 1), idempotent=True)
    [c] = store.claim_host_runs("w1", 1, 30)
    store.mark_started(c.id, "w1", c.epoch)
    clock.advance(31)
    report = store.reap()
    assert report.lost == (c.id,) and len(report.retried) == 1
    rec = store.get_execution(ex.id)
    [current] = rec.host_runs
    assert current.id == report.retried[0] and current.attempt == 2 and current.retry_of == c.id
    assert current.state is S.QUEUED and rec.status is ExecutionStatus.QUEUED
    history = store.get_execution(ex.id, history=True).host_runs
    assert [(r.attempt, r.state, r.superseded) for r in history] == [
        (1, S.LOST, True),
        (2, S.QUEUED, False),
    ]


def test_run_past_twice_its_timeout_times_out_even_with_a_live_lease(store, clock):
    script_execution(store, make_hosts(store, 1), timeout=10)
    [c] = store.claim_host_runs("w1", 1, 30)
    store.mark_started(c.id, "w1", c.epoch)
    clock.advance(15)
    store.heartbeat("w1", [(c.id, c.epoch)], 30)
    assert store.reap().total == 0
    clock.advance(6)  # 21 s > 2 x 10 s
    store.heartbeat("w1", [(c.id, c.epoch)], 30)
    report = store.reap()
    assert report.timed_out == (c.id,)
    run = store.get_host_run(c.id)
    assert run.state is S.TIMED_OUT and run.reason == "timed_out" and "20s" in run.message
    assert store.heartbeat("w1", [(c.id, c.epoch)], 30) == {c.id: LeaseStatus.LOST}


def test_queued_run_nobody_takes_fails_after_thirty_minutes(store, clock):
    ex = script_execution(store, make_hosts(store, 1))
    clock.advance(29 * 60)
    assert store.reap().total == 0
    clock.advance(61)
    report = store.reap()
    assert report.not_picked_up == (ex.host_runs[0].id,)
    run = store.get_host_run(ex.host_runs[0].id)
    assert run.state is S.FAILED and run.reason == "not_picked_up"
    assert run.message == "no worker picked up this run within 30 minutes"
    assert run.waiting_reason is None


def test_requeue_restarts_the_not_picked_up_clock(store, clock):
    script_execution(store, make_hosts(store, 1))
    clock.advance(25 * 60)
    [c] = store.claim_host_runs("w1", 1, 30)
    clock.advance(31)
    assert store.reap().requeued == (c.id,)
    clock.advance(10 * 60)  # 35 min since queued, 10 since it became claimable again
    assert store.reap().not_picked_up == ()


def test_cancel_requested_run_whose_worker_died_ends_cancelled(store, clock):
    script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w1", 1, 30)
    store.mark_started(c.id, "w1", c.epoch)
    store.cancel_host_run(c.id)
    clock.advance(31)
    assert store.reap().cancelled == (c.id,)
    assert store.get_host_run(c.id).state is S.CANCELLED


def test_reaper_loses_to_a_worker_that_renewed(store, clock):
    """The reaper's UPDATE re-checks the lease: a renewal between its read and write wins."""
    script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w1", 1, 30)
    store.mark_started(c.id, "w1", c.epoch)
    clock.advance(31)
    store.heartbeat("w1", [(c.id, c.epoch)], 30)  # late, but before the reaper ran
    assert store.reap().total == 0
    assert store.get_host_run(c.id).state is S.RUNNING

"""Seed 001's actions: cancel, retry (new attempt, counter kept), delete; approvals."""

from __future__ import annotations

import pytest

from muster.domain.states import ExecutionStatus, FailureReason, HostRunState
from muster.errors import ConflictError, NotFoundError

from .conftest import make_hosts, script_execution

S = HostRunState


def test_cancel_queued_claimed_and_running(store):
    ex = script_execution(store, make_hosts(store, 3))
    a, b = store.claim_host_runs("w1", 2, 30)
    store.mark_started(a.id, "w1", a.epoch)
    rec = store.cancel_execution(ex.id)
    by_id = {r.id: r for r in rec.host_runs}
    queued = next(r for r in rec.host_runs if r.id not in (a.id, b.id))
    assert by_id[queued.id].state is S.CANCELLED
    assert by_id[b.id].state is S.CANCELLED  # claimed, never started: nothing to kill
    assert by_id[a.id].state is S.RUNNING and by_id[a.id].cancel_requested
    assert not store.mark_started(b.id, "w1", b.epoch)
    assert store.finish_host_run(a.id, "w1", a.epoch, S.CANCELLED, reason=FailureReason.CANCELLED)
    assert store.get_execution(ex.id).status is ExecutionStatus.CANCELLED
    with pytest.raises(ConflictError):
        store.cancel_execution(ex.id)


def test_retry_only_failed_timed_out_or_lost_and_keeps_the_counter(store, clock):
    ex = script_execution(store, make_hosts(store, 2))
    a, b = store.claim_host_runs("w1", 2, 30)
    store.finish_host_run(a.id, "w1", a.epoch, S.SUCCEEDED, exit_code=0)
    store.finish_host_run(b.id, "w1", b.epoch, S.FAILED, exit_code=1)
    assert store.get_execution(ex.id).status is ExecutionStatus.FAILED
    rec = store.retry_execution(ex.id)
    assert rec.status is ExecutionStatus.RUNNING  # one succeeded, one queued again
    retried = next(r for r in rec.host_runs if r.host_name == store.get_host_run(b.id).host_name)
    assert retried.attempt == 2 and retried.retry_of == b.id and retried.state is S.QUEUED
    [c] = store.claim_host_runs("w2", 5, 30)
    assert c.id == retried.id
    store.finish_host_run(c.id, "w2", c.epoch, S.SUCCEEDED, exit_code=0)
    final = store.get_execution(ex.id)
    assert final.status is ExecutionStatus.SUCCEEDED  # the superseded failure no longer counts
    assert final.counts["failed"] == 0 and final.counts["succeeded"] == 2
    assert len(store.get_execution(ex.id, history=True).host_runs) == 3
    with pytest.raises(ConflictError):
        store.retry_execution(ex.id)  # nothing failed now
    again = store.retry_host_run
    with pytest.raises(ConflictError):
        again(a.id)


def test_delete_only_when_every_run_is_terminal(store):
    ex = script_execution(store, make_hosts(store, 1))
    with pytest.raises(ConflictError):
        store.delete_execution(ex.id)
    store.cancel_execution(ex.id)
    store.delete_execution(ex.id)
    with pytest.raises(NotFoundError):
        store.get_execution(ex.id)


def test_approval_gates_the_queue(store):
    ex = script_execution(store, make_hosts(store, 2), requires_approval=True)
    assert ex.status is ExecutionStatus.PENDING_APPROVAL
    assert {r.waiting_reason for r in ex.host_runs} == {"awaiting approval"}
    assert store.claim_host_runs("w", 5, 30) == []
    rec = store.approve_execution(ex.id)
    assert rec.status is ExecutionStatus.QUEUED
    with pytest.raises(ConflictError):
        store.approve_execution(ex.id)
    other = script_execution(store, make_hosts(store, 1, "r"), requires_approval=True, name="t")
    rej = store.reject_execution(other.id, "not during the freeze")
    assert rej.status is ExecutionStatus.REJECTED
    assert rej.host_runs[0].message == "not during the freeze"


def test_skipped_targets_are_recorded_not_dispatched(store):
    from muster.store.base import HostTarget

    hosts = make_hosts(store, 1)
    ex = script_execution(store, [*hosts, HostTarget(None, "win1", "host lacks shell bash")])
    skipped = [r for r in ex.host_runs if r.state is S.SKIPPED]
    assert [(r.host_name, r.message) for r in skipped] == [("win1", "host lacks shell bash")]
    assert len(store.claim_host_runs("w", 5, 30)) == 1


def test_list_executions_filters(store, clock):
    hosts = make_hosts(store, 2)
    e1 = script_execution(store, hosts[:1], name="one")
    clock.advance(10)
    e2 = script_execution(store, hosts[1:], name="two")
    store.cancel_execution(e2.id)
    assert [e.id for e in store.list_executions().items] == [e2.id, e1.id]
    assert [e.id for e in store.list_executions(status=ExecutionStatus.CANCELLED).items] == [e2.id]
    assert [e.id for e in store.list_executions(host_id=hosts[0].host_id).items] == [e1.id]
    assert [e.id for e in store.list_executions(script_id=e2.script_id).items] == [e2.id]
    assert [e.id for e in store.list_executions(since=clock.now).items] == [e2.id]
    page = store.list_executions(limit=1, offset=1)
    assert page.total == 2 and [e.id for e in page.items] == [e1.id]


def test_list_executions_filters_by_several_hosts_or_scripts(store, clock):
    """The console's history filters by a group's hosts or by partial script names."""
    hosts = make_hosts(store, 3)
    e1 = script_execution(store, hosts[:1], name="one")
    clock.advance(10)
    e2 = script_execution(store, hosts[1:2], name="two")
    clock.advance(10)
    e3 = script_execution(store, hosts[2:], name="three")
    by_ids = store.list_executions(host_id=[hosts[0].host_id, hosts[2].host_id])
    assert [e.id for e in by_ids.items] == [e3.id, e1.id] and by_ids.total == 2
    by_names = store.list_executions(host_id=(hosts[1].host_name,))
    assert [e.id for e in by_names.items] == [e2.id]
    assert store.list_executions(host_id=[]).total == 0
    scripts = [e1.script_id, e2.script_id]
    assert [e.id for e in store.list_executions(script_id=scripts).items] == [e2.id, e1.id]
    assert store.list_executions(script_id=[]).total == 0

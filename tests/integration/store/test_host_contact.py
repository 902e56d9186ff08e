"""A host's ``last_contact`` is written when a finished run shows the host answered.

The console's "Last contact" column was empty after dozens of runs: nothing
on the worker's path ever wrote it. Finishing a run is where the store learns
how it went, so that is where contact is recorded: one run at a time (the
single-statement PostgreSQL path) and in a batch, on every store.
"""

from __future__ import annotations

from muster.domain.states import FailureReason, HostRunState
from muster.store.base import RunResult

from .conftest import make_hosts, script_execution

S = HostRunState


def _started(store, n: int):
    targets = make_hosts(store, n)
    script_execution(store, targets)
    claims = store.claim_host_runs("w", n, 30)
    assert store.mark_started_many("w", [(c.id, c.epoch) for c in claims]) == {c.id for c in claims}
    by_host = {c.run.host_name: c for c in claims}
    return [by_host[t.host_name] for t in targets], targets


def test_a_run_that_finished_alone_records_contact(store, clock):
    (claim,), (target,) = _started(store, 1)
    assert store.get_host(target.host_id).last_contact is None
    clock.advance(7)
    assert store.finish_host_run(claim.id, "w", claim.epoch, S.SUCCEEDED, exit_code=0)
    assert store.get_host(target.host_id).last_contact == clock.now


def test_a_batch_records_contact_only_where_the_host_answered(store, clock):
    claims, targets = _started(store, 5)
    clock.advance(3)
    won = store.finish_host_runs(
        "w",
        [
            RunResult(claims[0].id, claims[0].epoch, S.SUCCEEDED, 0),
            # a non-zero exit code is an answer too
            RunResult(claims[1].id, claims[1].epoch, S.FAILED, 2, FailureReason.COMMAND_FAILED),
            # the host never answered
            RunResult(claims[2].id, claims[2].epoch, S.FAILED, None, FailureReason.UNREACHABLE),
            # a stale epoch loses and records nothing
            RunResult(claims[3].id, claims[3].epoch + 1, S.SUCCEEDED, 0),
            # the command ran past its timeout: the host was reached
            RunResult(claims[4].id, claims[4].epoch, S.TIMED_OUT, None, FailureReason.TIMED_OUT),
        ],
    )
    assert won == {claims[0].id, claims[1].id, claims[2].id, claims[4].id}
    contact = [store.get_host(t.host_id).last_contact for t in targets]
    assert contact == [clock.now, clock.now, None, None, clock.now]


def test_contact_moves_forward_with_each_answer(store, clock):
    targets = make_hosts(store, 1)
    seen = []
    for _ in range(2):
        script_execution(store, targets)
        (claim,) = store.claim_host_runs("w", 1, 30)
        store.mark_started(claim.id, "w", claim.epoch)
        clock.advance(60)
        store.finish_host_run(claim.id, "w", claim.epoch, S.SUCCEEDED, exit_code=0)
        seen.append(store.get_host(targets[0].host_id).last_contact)
    assert seen[0] is not None and seen[1] == clock.now and seen[1] > seen[0]


def test_last_results_are_each_hosts_newest_finished_run(store, clock):
    targets = make_hosts(store, 3)
    ids = [t.host_id for t in targets]
    assert store.host_last_results(ids) == {}
    script_execution(store, targets[:2])
    first = {c.run.host_name: c for c in store.claim_host_runs("w", 2, 30)}
    clock.advance(1)
    store.finish_host_run(first["h000"].id, "w", first["h000"].epoch, S.FAILED, exit_code=1)
    store.finish_host_run(first["h001"].id, "w", first["h001"].epoch, S.SUCCEEDED, exit_code=0)
    script_execution(store, targets[:1])
    (again,) = store.claim_host_runs("w", 1, 30)
    clock.advance(1)
    store.finish_host_run(again.id, "w", again.epoch, S.SUCCEEDED, exit_code=0)
    found = store.host_last_results(ids)
    assert set(found) == {ids[0], ids[1]}  # h002 never ran
    assert (found[ids[0]].id, found[ids[0]].state) == (again.id, S.SUCCEEDED)
    assert (found[ids[1]].id, found[ids[1]].state) == (first["h001"].id, S.SUCCEEDED)

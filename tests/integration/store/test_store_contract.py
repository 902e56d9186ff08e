"""The Store contract where the older store tests left it unstated: the same errors,
losers that change nothing, the roll-up after any mix of actions, and the console's
reads. Every test here runs on SQLite, PostgreSQL and the in-memory store."""

from __future__ import annotations

import random
import threading
import uuid

import pytest

from muster.domain.approvals import ApprovalPolicy, open_request
from muster.domain.hosts import Host, TransportKind
from muster.domain.secret import Secret
from muster.domain.states import ExecutionStatus, FailureReason, HostRunState, Priority, rollup
from muster.errors import ConflictError, NotFoundError, StateTransitionError, ValidationError
from muster.store.base import (
    ExecutionKind,
    LeaseStatus,
    NewExecution,
    RunResult,
    Store,
    output_cap_marker,
)

from .conftest import make_hosts, script_execution

S = HostRunState


def _assert_rolled_up(store: Store, execution_id: str) -> None:
    """The invariant: status and counters are a function of the current host runs."""
    rec = store.get_execution(execution_id)
    states = [r.state for r in rec.host_runs]
    assert rec.status is rollup(states)
    assert rec.counts == {s.value: states.count(s) for s in HostRunState}
    assert (rec.finished_at is not None) == rec.status.terminal
    assert store.execution_header(execution_id).status is rec.status


def test_unknown_ids_raise_not_found(store):
    for call in (
        lambda: store.get_execution("nope"),
        lambda: store.get_host_run("nope"),
        lambda: store.cancel_execution("nope"),
        lambda: store.cancel_host_run("nope"),
        lambda: store.retry_execution("nope"),
        lambda: store.retry_host_run("nope"),
        lambda: store.approve_execution("nope"),
        lambda: store.reject_execution("nope", "no"),
        lambda: store.delete_execution("nope"),
        lambda: store.execution_header("nope"),
        lambda: store.get_script("nope"),
        lambda: store.get_version("nope"),
        lambda: store.list_versions("nope"),
        lambda: store.delete_script("nope"),
        lambda: store.get_host("nope"),
        lambda: store.update_host("nope", port=1),
        lambda: store.delete_host("nope"),
    ):
        with pytest.raises(NotFoundError):
            call()
    saved = store.save_script(_content("s"))
    with pytest.raises(NotFoundError, match="has no version 9"):
        store.get_version(saved.script.id, 9)


def _content(name: str, body: str = "echo hi"):
    from muster.domain.scripts import ScriptVersion

    return ScriptVersion(name=name, shell="bash", body=body)


def test_bad_input_raises_validation_errors_and_stores_nothing(store):
    hosts = make_hosts(store, 1)
    with pytest.raises(ValidationError):
        store.create_execution(
            NewExecution(kind=ExecutionKind.COMMAND, targets=[], timeout=5, command="true")
        )
    with pytest.raises(ValidationError) as err:
        store.create_execution(
            NewExecution(
                kind=ExecutionKind.COMMAND,
                targets=hosts,
                timeout=5,
                command="true",
                parameters={"when": object()},
            )
        )
    assert err.value.field == "when"
    assert store.list_executions().total == 0
    with pytest.raises(ValidationError) as err:
        store.update_host(hosts[0].host_id, colour="red")
    assert err.value.field == "colour"
    with pytest.raises(ValidationError):
        store.read_output()
    with pytest.raises(ValidationError):
        store.read_output(execution_id="a", run_id="b")
    script_execution(store, hosts)
    [c] = store.claim_host_runs("w", 1, 30)
    with pytest.raises(ValidationError) as err:
        store.append_output(c.id, "w", c.epoch, "stdlog", "x")
    assert err.value.field == "stream"


def test_late_worker_changes_nothing_after_its_lease_was_reaped(store, clock):
    script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w1", 1, 30)
    clock.advance(31)
    assert store.reap().requeued == (c.id,)
    [again] = store.claim_host_runs("w2", 1, 30)
    assert again.id == c.id and again.epoch > c.epoch
    before = store.get_host_run(c.id)
    # Everything the first worker still tries loses, and leaves no trace.
    assert not store.mark_started(c.id, "w1", c.epoch)
    assert store.mark_started_many("w1", [(c.id, c.epoch)]) == set()
    assert store.heartbeat("w1", [(c.id, c.epoch)], 30) == {c.id: LeaseStatus.LOST}
    assert not store.append_output(c.id, "w1", c.epoch, "stdout", "late")
    assert not store.release_host_run(c.id, "w1", c.epoch, "late")
    assert store.finish_host_runs("w1", [RunResult(c.id, c.epoch, S.SUCCEEDED, 0)]) == set()
    assert store.get_host_run(c.id) == before
    assert store.read_output(run_id=c.id) == []


def test_a_started_run_is_never_handed_back(store):
    """Once the command may have been sent, only finish (or the reaper's ``lost``) ends it."""
    script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w", 1, 30)
    assert store.mark_started(c.id, "w", c.epoch)
    before = store.get_host_run(c.id)
    assert not store.release_host_run(c.id, "w", c.epoch, "stopping")
    assert store.get_host_run(c.id) == before
    assert store.claim_host_runs("w2", 1, 30) == []


def test_terminal_states_never_change(store):
    ex = script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w", 1, 30)
    assert store.finish_host_run(c.id, "w", c.epoch, S.SUCCEEDED, exit_code=0)
    done = store.get_host_run(c.id)
    for call in (
        lambda: store.cancel_host_run(c.id),
        lambda: store.retry_host_run(c.id),
        lambda: store.approve_execution(ex.id),
        lambda: store.reject_execution(ex.id, "late"),
    ):
        with pytest.raises(ConflictError):
            call()
    assert not store.release_host_run(c.id, "w", c.epoch, "late")
    assert store.set_waiting_reason([c.id], "window closed") == 0
    assert store.reap().total == 0
    assert store.get_host_run(c.id) == done
    with pytest.raises(StateTransitionError):
        store.finish_host_runs("w", [RunResult(c.id, c.epoch, S.PENDING_APPROVAL)])


def test_finish_checks_every_transition_before_writing_any(store):
    script_execution(store, make_hosts(store, 2))
    a, b = store.claim_host_runs("w", 2, 30)
    with pytest.raises(StateTransitionError):
        store.finish_host_runs(
            "w",
            [
                RunResult(a.id, a.epoch, S.SUCCEEDED, 0),
                RunResult(b.id, b.epoch, S.PENDING_APPROVAL),
            ],
        )
    assert store.get_host_run(a.id).state is S.RUNNING


def test_finish_many_wins_per_run_and_records_the_outcome(store, clock):
    script_execution(store, make_hosts(store, 3))
    a, b, c = store.claim_host_runs("w", 3, 30)
    clock.advance(5)
    won = store.finish_host_runs(
        "w",
        [
            RunResult(a.id, a.epoch, S.SUCCEEDED, 0, events=2),
            RunResult(b.id, b.epoch + 1, S.FAILED, 1),  # a stale epoch loses
            RunResult(c.id, c.epoch, S.FAILED, None, FailureReason.PLAN_ERROR, "no plan"),
        ],
    )
    assert won == {a.id, c.id}
    ra, rb, rc = (store.get_host_run(x.id) for x in (a, b, c))
    assert (ra.state, ra.exit_code, ra.events, ra.finished_at) == (S.SUCCEEDED, 0, 2, clock.now)
    assert ra.lease_expires_at is None and ra.reason is None and ra.message is None
    assert rb.state is S.RUNNING
    assert (rc.state, rc.reason, rc.message, rc.started_at) == (
        S.FAILED,
        "plan_error",
        "no plan",
        None,
    )


#: Actions of the random walk and their weights (a cancel ends an execution: keep it rare).
_WALK = {
    "claim": 5,
    "start": 4,
    "finish": 5,
    "release": 1,
    "cancel": 0.3,
    "retry": 2,
    "approve": 1,
    "reap": 2,
}


def test_status_is_the_rollup_of_current_runs_after_any_mix_of_actions(store, clock):
    """A seeded random walk through every action; the invariant holds after each step."""
    rng = random.Random(20301)
    hosts = make_hosts(store, 6)
    executions = [
        script_execution(store, hosts, name="plain", idempotent=False).id,
        script_execution(store, hosts[:4], name="idem", idempotent=True).id,
        script_execution(store, hosts[2:], name="gated", requires_approval=True).id,
    ]
    held: dict[str, int] = {}
    seen: set[ExecutionStatus] = set()
    for _ in range(120):
        ex_id = rng.choice(executions)
        action = rng.choices(list(_WALK), weights=list(_WALK.values()))[0]
        try:
            if action == "claim":
                held.update({c.id: c.epoch for c in store.claim_host_runs("w", 2, 30)})
            elif action == "start" and held:
                run_id = rng.choice(sorted(held))
                store.mark_started(run_id, "w", held[run_id])
            elif action == "finish" and held:
                run_id = rng.choice(sorted(held))
                state = rng.choice([S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED])
                store.finish_host_run(run_id, "w", held.pop(run_id), state)
            elif action == "release" and held:
                run_id = rng.choice(sorted(held))
                store.release_host_run(run_id, "w", held.pop(run_id), "stopping")
            elif action == "cancel":
                store.cancel_execution(ex_id)
            elif action == "retry":
                store.retry_execution(ex_id)
            elif action == "approve":
                store.approve_execution(ex_id)
            elif action == "reap":
                clock.advance(rng.choice([1, 31]))
                store.reap()
        except ConflictError:
            pass  # refused actions are part of the walk: they must change nothing
        for e in executions:
            _assert_rolled_up(store, e)
            seen.add(store.get_execution(e).status)
    # The walk went places: several statuses, and new attempts beside the first ones.
    assert len(seen) >= 4, seen
    assert any(
        len(store.get_execution(e, history=True).host_runs) > len(store.get_execution(e).host_runs)
        for e in executions
    )


def test_retry_of_one_run_and_a_retry_that_needs_approval(store):
    ex = script_execution(store, make_hosts(store, 2))
    a, b = store.claim_host_runs("w", 2, 30)
    store.finish_host_run(a.id, "w", a.epoch, S.FAILED, exit_code=1)
    store.finish_host_run(b.id, "w", b.epoch, S.TIMED_OUT)
    new = store.retry_host_run(a.id)
    assert (new.attempt, new.retry_of, new.state) == (2, a.id, S.QUEUED)
    assert new.waiting_reason == "waiting for a free worker (retry)"
    assert store.get_host_run(a.id).superseded
    with pytest.raises(ConflictError):
        store.retry_host_run(a.id)  # superseded: no longer current
    request = open_request(
        id=str(uuid.uuid4()),
        subject=f"execution:{ex.id}",
        policy=ApprovalPolicy.SINGULAR,
        approvers=["user:amy"],
        requester="ann",
        now=ex.created_at,
    )
    rec = store.retry_execution(ex.id, approval=request, approval_record={"why": "policy"})
    pending = [r for r in rec.host_runs if r.state is S.PENDING_APPROVAL]
    assert [r.retry_of for r in pending] == [b.id]
    assert pending[0].waiting_reason == "awaiting approval (retry)"
    assert rec.status is ExecutionStatus.PENDING_APPROVAL and rec.policy["approval"] == {
        "why": "policy"
    }
    assert [c.id for c in store.claim_host_runs("w", 5, 30)] == [new.id]
    assert store.approve_execution(ex.id).status is ExecutionStatus.RUNNING


def test_cancel_of_one_run_leaves_the_others(store):
    ex = script_execution(store, make_hosts(store, 2))
    first = ex.host_runs[0]
    rec = store.cancel_host_run(first.id)
    assert rec.state is S.CANCELLED and rec.reason == "cancelled" and rec.waiting_reason is None
    assert store.get_execution(ex.id).status is ExecutionStatus.RUNNING  # one queued, one done
    with pytest.raises(ConflictError):
        store.cancel_host_run(first.id)


def test_a_deleted_host_keeps_its_runs_by_name(store):
    [target] = make_hosts(store, 1)
    ex = script_execution(store, [target])
    store.delete_host(target.host_id)
    [run] = store.get_execution(ex.id).host_runs
    assert (run.host_id, run.host_name) == (None, target.host_name)
    [c] = store.claim_host_runs("w", 1, 30)
    assert c.host is None and c.run.host_name == target.host_name
    assert [e.id for e in store.list_executions(host_id=target.host_name).items] == [ex.id]


def test_host_rename_conflicts_and_touch(store, clock):
    a = store.create_host(Host(name="a", transport=TransportKind.LOCAL))
    store.create_host(Host(name="b", transport=TransportKind.LOCAL))
    with pytest.raises(ConflictError):
        store.update_host(a.id, name="b")
    assert store.get_host(a.id).name == "a"
    renamed = store.update_host(a.id, name="c", labels={"env": "prod"}, transport="ssh")
    assert renamed.name == "c" and renamed.transport is TransportKind.SSH
    assert renamed.updated_at == clock.now and store.get_host("c").id == a.id
    assert store.get_host(a.id).last_contact is None
    clock.advance(3)
    store.touch_host(a.id)
    assert store.get_host(a.id).last_contact == clock.now
    store.touch_host("no-such-host")  # an answer from a host deleted meanwhile: nothing to do


def test_records_are_copies_of_what_is_stored(store):
    store.create_host(Host(name="a", labels={"env": "prod"}))
    got = store.get_host("a")
    got.labels["env"] = "dev"  # type: ignore[index]
    assert store.get_host("a").labels == {"env": "prod"}
    hosts = make_hosts(store, 1, "x")
    ex = script_execution(store, hosts, policy={"notes": ["one"]}, parameters={"n": 1})
    ex.parameters["n"] = 2  # type: ignore[index]
    ex.policy["notes"].append("two")
    again = store.get_execution(ex.id)
    assert again.parameters == {"n": 1} and again.policy == {"notes": ["one"]}


def test_secret_values_reach_only_the_claim(store):
    hosts = make_hosts(store, 1)
    ex = store.create_execution(
        NewExecution(
            kind=ExecutionKind.COMMAND,
            targets=hosts,
            timeout=5,
            command="true",
            parameters={"token": Secret("t0ken-value"), "user": "ann"},
        )
    )
    assert ex.parameters == {"token": "***", "user": "ann"} and ex.secret_fields == ("token",)
    assert store.get_execution(ex.id).parameters["token"] == "***"
    [c] = store.claim_host_runs("w", 1, 30)
    token = c.values["token"]
    assert isinstance(token, Secret) and token.reveal() == "t0ken-value"
    assert c.execution.parameters["token"] == "***"


def test_output_marker_is_the_shared_one_and_counts_go_on(store):
    script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w", 1, 30)
    assert store.mark_started(c.id, "w", c.epoch)
    assert store.append_output(c.id, "w", c.epoch, "stdout", "")  # nothing to store: fine
    assert store.append_output(c.id, "w", c.epoch, "stderr", "e" * 1200)
    chunks = store.read_output(run_id=c.id)
    assert [x.data for x in chunks] == ["e" * 1000, output_cap_marker("stderr", 1000)]
    assert [x.seq for x in chunks] == [1, 2]
    assert [x.data for x in store.iter_output(c.id, "stdout")] == []
    assert store.append_output(c.id, "w", c.epoch, "stdout", "o" * 10)
    run = store.get_host_run(c.id)
    assert run.stdout_truncated and run.stdout_tail == "o" * 10 and run.chunks == 3
    assert [x.data for x in store.iter_output(c.id, "stdout")] == [
        output_cap_marker("stdout", 1000)
    ]
    assert (run.stdout_bytes, run.stderr_bytes, run.stored_bytes) == (10, 1200, 1000)


def test_output_ids_increase_across_runs_and_executions(store):
    script_execution(store, make_hosts(store, 2, "a"), name="one")
    script_execution(store, make_hosts(store, 1, "b"), name="two")
    claims = store.claim_host_runs("w", 3, 30)
    for i in range(6):
        c = claims[i % 3]
        assert store.append_output(c.id, "w", c.epoch, "stdout", f"{i}\n")
    ids = [x.id for c in claims for x in store.read_output(run_id=c.id)]
    assert len(set(ids)) == 6
    one = claims[0].execution.id
    by_execution = store.read_output(execution_id=one)
    assert [x.id for x in by_execution] == sorted(x.id for x in by_execution)
    assert store.read_output(execution_id=one, after_id=by_execution[-1].id) == []
    assert store.read_output(execution_id=one, limit=1) == by_execution[:1]


def test_delete_removes_runs_and_output(store):
    ex = script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w", 1, 30)
    store.append_output(c.id, "w", c.epoch, "stdout", "bye\n")
    store.finish_host_run(c.id, "w", c.epoch, S.SUCCEEDED, exit_code=0)
    store.delete_execution(ex.id)
    with pytest.raises(NotFoundError):
        store.get_host_run(c.id)
    assert store.read_output(execution_id=ex.id) == []
    assert store.read_counts().host_runs_by_state == {}


def test_claims_respect_the_limit_and_a_released_run_is_claimed_again(store, clock):
    script_execution(store, make_hosts(store, 5))
    assert store.claim_host_runs("w", 0, 30) == []
    first = store.claim_host_runs("w", 2, 30)
    assert len(first) == 2
    released = first[0]
    clock.advance(1)
    assert store.release_host_run(released.id, "w", released.epoch, "stopping")
    rest = store.claim_host_runs("w2", 10, 30)
    assert len(rest) == 4 and released.id in {c.id for c in rest}
    assert {c.run.owner for c in rest} == {"w2"}
    assert store.claim_host_runs("w2", 10, 30) == []


def test_higher_priority_executions_claim_first_across_throttled_and_free(store, clock):
    from muster.domain.throttle import Throttle

    hosts = make_hosts(store, 2)
    low = script_execution(store, hosts, name="low", priority=Priority.LOW)
    crit = script_execution(
        store, hosts, name="crit", priority=Priority.CRITICAL, throttle=Throttle(forks=1)
    )
    got = store.claim_host_runs("w", 2, 30)
    assert [c.execution.id for c in got] == [crit.id, low.id]


def test_claimers_in_threads_share_one_store_safely(store, peers):
    """Many threads on one handle (the in-memory store's promise; a pool's on SQL)."""
    script_execution(store, make_hosts(store, 120))
    got: list[list[str]] = [[] for _ in range(6)]
    barrier = threading.Barrier(6)
    [shared] = peers(1)

    def go(i: int) -> None:
        barrier.wait()
        while claims := shared.claim_host_runs(f"w{i}", 3, 30):
            got[i].extend(c.id for c in claims)
            for c in claims:
                assert shared.mark_started(c.id, f"w{i}", c.epoch)
                assert shared.finish_host_run(c.id, f"w{i}", c.epoch, S.SUCCEEDED, exit_code=0)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = [i for g in got for i in g]
    assert len(ids) == 120 and len(set(ids)) == 120
    assert store.read_counts().host_runs_by_state == {"succeeded": 120}


# -- console reads ----------------------------------------------------------------


def test_fleet_facets_and_host_page(store):
    store.create_host(
        Host(name="web1", address="10.0.0.1", groups=("web",), labels={"env": "prod"})
    )
    store.create_host(Host(name="web2", address="10.0.0.2", groups=("web", "edge")))
    store.create_host(Host(name="db1", address="10.0.1.1", groups=("db",), labels={"env": "dev"}))
    facets = store.fleet_facets()
    assert facets.groups == ("db", "edge", "web")
    assert facets.labels == ("env=dev", "env=prod")
    assert facets.names == ("db1", "web1", "web2")
    page, total = store.host_page()
    assert total == 3 and [h.name for h in page.items] == ["db1", "web1", "web2"]
    assert [h.name for h in store.host_page(search="WEB")[0].items] == ["web1", "web2"]
    assert [h.name for h in store.host_page(search="10.0.1")[0].items] == ["db1"]
    assert [h.name for h in store.host_page(search="env=prod")[0].items] == ["web1"]
    assert [h.name for h in store.host_page(group="edge")[0].items] == ["web2"]
    assert [h.name for h in store.host_page(group="we")[0].items] == []  # whole names only
    page, total = store.host_page(search="web", limit=1, offset=1)
    assert (page.total, total, [h.name for h in page.items]) == (2, 3, ["web2"])


def test_grid_digests_and_recent_runs(store, clock):
    hosts = make_hosts(store, 3)
    ex = script_execution(store, hosts, description="nightly")
    claims = {c.run.host_name: c for c in store.claim_host_runs("w", 3, 30)}
    a, b, c = (claims[h.host_name] for h in hosts)
    store.append_output(a.id, "w", a.epoch, "stdout", "x" * 300 + "END")
    store.append_output(a.id, "w", a.epoch, "stderr", "START" + "y" * 300)
    store.finish_host_run(a.id, "w", a.epoch, S.FAILED, exit_code=2, message="m" * 300)
    store.finish_host_run(b.id, "w", b.epoch, S.SUCCEEDED, exit_code=0)
    retried = store.retry_host_run(a.id)

    grid = store.grid_page(ex.id)
    assert [(g.host_name, g.state, g.attempt) for g in grid.items] == [
        (hosts[0].host_name, S.QUEUED, 2),
        (hosts[1].host_name, S.SUCCEEDED, 1),
        (hosts[2].host_name, S.RUNNING, 1),
    ]
    assert grid.items[0].run_id == retried.id
    only = store.grid_page(ex.id, states=[S.RUNNING, S.SUCCEEDED], limit=1)
    assert only.total == 2 and [g.run_id for g in only.items] == [b.id]
    assert store.grid_page(ex.id, hosts=[hosts[2].host_name]).items[0].run_id == c.id

    store.finish_host_run(c.id, "w", c.epoch, S.SUCCEEDED, exit_code=0)
    [again] = store.claim_host_runs("w", 1, 30)
    store.append_output(again.id, "w", again.epoch, "stdout", "x" * 300 + "END")
    store.append_output(again.id, "w", again.epoch, "stderr", "START" + "y" * 300)
    store.finish_host_run(again.id, "w", again.epoch, S.FAILED, exit_code=2, message="m" * 300)
    digests = store.run_digests(ex.id)
    assert [d.host_name for d in digests] == [h.host_name for h in hosts]
    first = digests[0]
    assert (first.state, first.exit_code) == (S.FAILED, 2)
    assert first.stdout_end == "x" * 197 + "END" and first.stderr_start == "START" + "y" * 195
    assert first.message == "m" * 200 and digests[1].message is None

    recent = store.host_recent_runs(hosts[0].host_id, hosts[0].host_name)
    assert [(r.id, d) for r, d in recent] == [(again.id, "nightly")]
    clock.advance(1)
    later = script_execution(store, hosts[:1], name="later", description="later")
    assert [d for _, d in store.host_recent_runs(hosts[0].host_id, "")] == ["later", "nightly"]
    assert store.host_recent_runs("", hosts[0].host_name, limit=1)[0][0].execution_id == later.id

    assert store.run_in_execution(ex.id, b.id).id == b.id
    with pytest.raises(NotFoundError):
        store.run_in_execution(later.id, b.id)
    header = store.execution_header(ex.id)
    assert header.host_runs == () and header.counts == store.get_execution(ex.id).counts


def test_counts_on_an_empty_store_and_ping(store):
    counts = store.read_counts()
    assert (counts.executions_by_status, counts.host_runs_by_state) == ({}, {})
    assert (counts.queue_depth, counts.active_owners) == (0, 0)
    assert store.ping() is True


def test_list_scripts_pages_and_delete_hides(store):
    for name in ("c", "a", "b"):
        store.save_script(_content(name), tags=["t"] if name != "b" else None)
    page = store.list_scripts(limit=2, offset=1)
    assert page.total == 3 and [s.name for s in page.items] == ["b", "c"]
    assert [s.name for s in store.list_scripts(tag="t").items] == ["a", "c"]
    store.delete_script("a")
    with pytest.raises(NotFoundError):
        store.delete_script("a")
    with pytest.raises(NotFoundError):
        store.list_versions("a")
    assert [s.name for s in store.list_scripts().items] == ["b", "c"]
    assert store.get_version("a").number == 1  # pinned versions stay readable


def test_save_updates_metadata_without_a_new_version(store, clock):
    first = store.save_script(_content("s"), description="one", tags=["x"])
    clock.advance(5)
    again = store.save_script(_content("s"), description="two")
    assert not again.created and again.version == first.version
    assert again.script.description == "two" and again.script.tags == ("x",)
    assert (
        again.script.updated_at == clock.now and again.script.created_at == first.script.created_at
    )
    kept = store.save_script(_content("s"))
    assert kept.script.description == "two"  # None keeps what is stored

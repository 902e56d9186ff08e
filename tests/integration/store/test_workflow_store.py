"""The WorkflowStore contract on SQLite, PostgreSQL and InMemoryStore, and the durable
driver's part (claims, one-transaction progress, sealed secrets) on the SQL stores.

Definitions are versioned by content hash; an instance's state is written by a
compare-and-set on its revision; step results keep the newest attempt; secrets
are never stored in clear.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from muster.domain.approvals import ApprovalPolicy, ApprovalStatus, open_request
from muster.domain.secret import Secret
from muster.domain.workflows import (
    HostOutcome,
    InstanceState,
    InstanceStatus,
    StepResult,
    StepStatus,
    load_workflow_text,
)
from muster.errors import ConflictError, NotFoundError
from muster.store.base import ExecutionKind, NewExecution
from muster.store.workflow_durable import Dispatch
from tests.integration.store.conftest import dump_everything, make_hosts

DEFINITION = """
name: nightly
parameters:
  - {name: who, type: string, default: world}
  - {name: token, type: secret}
steps:
  - id: first
    command: echo hello {{params.who}}
  - id: second
    command: echo again
    depends_on: [first]
"""


def _workflow(text: str = DEFINITION):
    return load_workflow_text(text)


def test_versions_by_content(store) -> None:
    record, new = store.save_workflow(_workflow(), created_by="alice")
    assert new and record.version == 1 and record.name == "nightly"
    again, new = store.save_workflow(_workflow())
    assert not new and again.version == 1 and again.content_hash == record.content_hash
    changed, new = store.save_workflow(_workflow(DEFINITION.replace("again", "once more")))
    assert new and changed.version == 2 and changed.content_hash != record.content_hash
    assert store.get_workflow("nightly").version == 2
    old = store.get_workflow("nightly", 1)
    assert old.workflow.step("second").command == "echo again"
    assert old.created_by == "alice"
    assert [w.name for w in store.list_workflows()] == ["nightly"]
    with pytest.raises(NotFoundError):
        store.get_workflow("nightly", 7)
    with pytest.raises(NotFoundError):
        store.get_workflow("nope")


def test_instance_compare_and_set(store) -> None:
    record, _ = store.save_workflow(_workflow())
    state = InstanceState.new([s.id for s in record.workflow.steps])
    inst = store.create_instance(
        record, state, params={"who": "bob", "token": Secret("t0p-s3cret")}, created_by="alice"
    )
    assert inst.revision == 1 and inst.status is InstanceStatus.QUEUED
    assert inst.params == {"who": "bob", "token": "***"}
    assert "t0p-s3cret" not in dump_everything(store)
    loaded = store.get_instance(inst.id)
    loaded.state.status = InstanceStatus.RUNNING
    loaded.state.steps["first"].status = StepStatus.RUNNING
    loaded.state.steps["first"].attempt = 1
    loaded.state.changed.add("first")
    assert store.save_instance(inst.id, loaded.state, revision=1) == 2
    assert not loaded.state.changed
    stale = store.get_instance(inst.id)
    stale.state.status = InstanceStatus.KILLED
    with pytest.raises(ConflictError):
        store.save_instance(inst.id, stale.state, revision=1)
    now = store.get_instance(inst.id)
    assert now.revision == 2 and now.status is InstanceStatus.RUNNING
    assert now.state.steps["first"].status is StepStatus.RUNNING
    assert now.state.steps["second"].status is StepStatus.PENDING
    assert [i.id for i in store.list_instances(workflow="nightly")] == [inst.id]
    assert store.list_instances(status="running")[0].id == inst.id
    assert store.list_instances(status=InstanceStatus.FAILED) == []


def test_step_results_keep_the_newest_attempt(store) -> None:
    record, _ = store.save_workflow(_workflow())
    inst = store.create_instance(record, InstanceState.new(["first", "second"]), params={})
    two = StepResult("first", 2, {"h1": HostOutcome("h1", "succeeded", 0, "two")})
    one = StepResult("first", 1, {"h1": HostOutcome("h1", "failed", 1, "one")})
    store.record_step_result(inst.id, two)
    store.record_step_result(inst.id, one)
    got = store.step_results(inst.id)
    assert list(got) == ["first"]
    assert got["first"].attempt == 2 and got["first"].hosts["h1"].stdout == "two"


def test_delete_refuses_while_an_instance_runs(store) -> None:
    record, _ = store.save_workflow(_workflow())
    inst = store.create_instance(record, InstanceState.new(["first", "second"]), params={})
    with pytest.raises(ConflictError):
        store.delete_workflow("nightly")
    state = store.get_instance(inst.id).state
    state.status = InstanceStatus.SUCCEEDED
    store.save_instance(inst.id, state, revision=1)
    store.delete_workflow("nightly")
    with pytest.raises(NotFoundError):
        store.get_workflow("nightly")


# -- the durable driver's part (SQL stores) -------------------------------------------


@pytest.fixture
def sql(store, db_url):
    """The store under test, on SQL only (``db_url`` makes this test SQL-only)."""
    return store


def _started(sql):
    record, _ = sql.save_workflow(_workflow())
    inst = sql.create_instance(
        record,
        InstanceState.new(["first", "second"]),
        params={"token": Secret("sealed-value")},
        context={"actor": {"name": "alice"}},
    )
    return record, inst


def test_secrets_are_sealed_for_the_driver(sql) -> None:
    _, inst = _started(sql)
    assert "sealed-value" not in dump_everything(sql)
    opened = sql.open_instance_secrets(inst.id)
    assert opened["token"].reveal() == "sealed-value"
    assert sql.instance_detail(inst.id).context == {"actor": {"name": "alice"}}


def test_claims_are_exclusive_and_leased(sql, clock, peers) -> None:
    _, inst = _started(sql)
    other = peers(1)[0]
    assert sql.claim_instances("a", limit=10, lease_seconds=30) == [inst.id]
    assert other.claim_instances("b", limit=10, lease_seconds=30) == []
    clock.advance(31)
    assert other.claim_instances("b", limit=10, lease_seconds=30) == [inst.id]
    assert not sql.release_instance(inst.id, "a", wake_at=None)  # no longer a's
    wake = clock() + dt.timedelta(seconds=60)
    assert other.release_instance(inst.id, "b", wake_at=wake)
    assert sql.claim_instances("a", limit=10, lease_seconds=30) == []  # not due yet
    sql.poke_instance(inst.id)
    assert sql.claim_instances("a", limit=10, lease_seconds=30) == [inst.id]


def test_concurrent_claims_take_disjoint_instances(sql, peers) -> None:
    record, _ = sql.save_workflow(_workflow())
    ids = {
        sql.create_instance(record, InstanceState.new(["first"]), params={}).id for _ in range(20)
    }
    handles = peers(4)
    got: list[list[str]] = [[] for _ in handles]

    def claim(i: int) -> None:
        got[i] = handles[i].claim_instances(f"w{i}", limit=20, lease_seconds=30)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for g in got for i in g]
    assert sorted(flat) == sorted(ids)  # each claimed once, none twice


def test_progress_commits_whole_or_not_at_all(sql, clock) -> None:
    _, inst = _started(sql)
    targets = make_hosts(sql, 2)
    state = sql.get_instance(inst.id).state
    state.status = InstanceStatus.RUNNING
    state.steps["first"].status = StepStatus.RUNNING
    state.steps["first"].attempt = 1
    state.changed.add("first")
    new = NewExecution(kind=ExecutionKind.COMMAND, targets=targets, timeout=30, command="true")
    request = open_request(
        id="appr-1",
        subject=f"workflow:{inst.id}:second",
        policy=ApprovalPolicy.ONE_OF_MANY,
        approvers=["role:admin"],
        requester="alice",
        now=clock(),
        deadline=None,
        role_members={"admin": ["root"]},
    )
    revision, dispatched = sql.commit_progress(
        inst.id,
        state,
        revision=1,
        dispatches=[Dispatch("first", [new])],
        approvals=[("second", request)],
    )
    assert revision == 2
    (eid,) = dispatched["first"]
    assert sql.get_execution(eid).command == "true"
    detail = sql.instance_detail(inst.id)
    assert detail.links["first"].execution_ids == (eid,)
    assert detail.links["second"].approval_id == "appr-1"
    # A stale pass writes nothing: no second execution, no second request.
    before = sql.list_executions().total
    with pytest.raises(ConflictError):
        sql.commit_progress(
            inst.id,
            state,
            revision=1,
            dispatches=[Dispatch("first", [new])],
            closed_approvals=[("appr-1", "deadline passed")],
        )
    assert sql.list_executions().total == before
    assert sql.get_approval("appr-1").request.status is ApprovalStatus.PENDING
    sql.commit_progress(
        inst.id, state, revision=2, closed_approvals=[("appr-1", "deadline passed")]
    )
    closed = sql.get_approval("appr-1").request
    assert closed.status is ApprovalStatus.REJECTED and closed.reason == "deadline passed"

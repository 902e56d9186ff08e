"""Approval rules in the store, on real SQLite and PostgreSQL: saved and read per scope,
carried over from version flags by migration 0005, and a retry that needs approval
writes its pending attempts and their new request together."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, insert, select, table, text
from sqlalchemy import column as col

from muster.domain.approval_rules import ApprovalRule, ApprovalScope
from muster.domain.approvals import ApprovalPolicy, open_request
from muster.domain.states import ExecutionStatus, HostRunState
from muster.errors import ConflictError, ValidationError
from muster.store._core import make_engine
from muster.store.migrations import upgrade
from muster.store.sqlalchemy_store import SqlStore
from muster.store.tables import script_versions, scripts

from .conftest import PG_SKIP, make_hosts, pg_url, script_execution, with_search_path

S = HostRunState


@pytest.fixture
def sec(engine: Engine, clock) -> SqlStore:
    return SqlStore(engine, clock=clock)


def test_rules_per_scope_replace_and_delete(sec: SqlStore, store) -> None:
    saved = store.save_script(_version("deploy"))
    sid = saved.script.id
    assert sec.approval_rule(ApprovalScope.SCRIPT, sid) is None

    rule = ApprovalRule(
        ApprovalScope.SCRIPT,
        sid,
        required=True,
        policy=ApprovalPolicy.TWO_OF_MANY,
        approvers=("role:approver", "user:amy", "role:approver"),
        deadline=dt.timedelta(minutes=30),
        retry_needs_approval=False,
    )
    stored = sec.save_approval_rule(rule, updated_by="ada")
    got = sec.approval_rule(ApprovalScope.SCRIPT, sid)
    assert got is not None and got.rule == stored.rule and got.updated_by == "ada"
    assert got.rule.approvers == ("role:approver", "user:amy")  # duplicates dropped
    assert got.rule.deadline == dt.timedelta(minutes=30) and not got.rule.retry_needs_approval

    sec.save_approval_rule(ApprovalRule(ApprovalScope.GROUP, "db", required=True, deadline=None))
    sec.save_approval_rule(ApprovalRule(ApprovalScope.GROUP, "web"))
    sec.save_approval_rule(ApprovalRule(ApprovalScope.COMMAND, "command", required=True))
    groups = sec.approval_rules(ApprovalScope.GROUP)
    assert sorted(groups) == ["db", "web"]
    assert groups["db"].rule.required and groups["db"].rule.deadline is None
    assert not groups["web"].rule.required
    assert sorted(sec.approval_rules(ApprovalScope.GROUP, ["db", "nope"])) == ["db"]
    assert sec.approval_rules(ApprovalScope.GROUP, []) == {}
    cmd = sec.approval_rule(ApprovalScope.COMMAND, "command")
    assert cmd is not None and cmd.rule.required
    assert sec.approval_rule(ApprovalScope.JOB, "job") is None

    # replacing keeps one row; deleting removes it
    sec.save_approval_rule(ApprovalRule(ApprovalScope.GROUP, "db", required=False))
    again = sec.approval_rule(ApprovalScope.GROUP, "db")
    assert again is not None and not again.rule.required
    assert sec.delete_approval_rule(ApprovalScope.GROUP, "db")
    assert not sec.delete_approval_rule(ApprovalScope.GROUP, "db")
    assert sec.approval_rule(ApprovalScope.GROUP, "db") is None

    # the script's rule goes with the script's row
    with sec.engine.begin() as conn:
        conn.execute(text("DELETE FROM script_approval_policies WHERE script_id = :s"), {"s": sid})
    assert sec.approval_rule(ApprovalScope.SCRIPT, sid) is None


@pytest.mark.parametrize(
    ("scope", "name", "field"),
    [
        (ApprovalScope.GROUP, "prod env", "group"),
        (ApprovalScope.GROUP, "x" * 254, "group"),
        (ApprovalScope.GROUP, "", "group"),
        (ApprovalScope.COMMAND, "job", None),
    ],
)
def test_bad_rules_are_refused_before_anything_is_stored(
    scope: ApprovalScope, name: str, field: str | None
) -> None:
    with pytest.raises(ValidationError) as err:
        ApprovalRule(scope, name, required=True)
    if field is not None:
        assert err.value.field == field


def test_bad_policy_or_approvers_are_refused() -> None:
    with pytest.raises(ValidationError):
        ApprovalRule(ApprovalScope.GROUP, "db", policy="most")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ApprovalRule(ApprovalScope.GROUP, "db", approvers=("team:ops",))
    with pytest.raises(ValidationError):
        ApprovalRule(ApprovalScope.GROUP, "db", approvers=())
    with pytest.raises(ValidationError):
        ApprovalRule(ApprovalScope.GROUP, "db", deadline=dt.timedelta(0))


def test_retry_with_approval_writes_pending_attempts_and_a_newer_request(
    store, sec: SqlStore, clock
) -> None:
    ex = script_execution(store, make_hosts(store, 2), requires_approval=True)
    first = _request(ex.id, clock(), "olga")
    sec.create_approval(first, execution_id=ex.id, content_hash=ex.content_hash)
    store.approve_execution(ex.id)
    a, b = store.claim_host_runs("w1", 2, 30)
    store.finish_host_run(a.id, "w1", a.epoch, S.FAILED, exit_code=1)
    store.finish_host_run(b.id, "w1", b.epoch, S.SUCCEEDED, exit_code=0)
    sec.decide_approval(first.id, "amy", ["approver"], "approve")

    # same clock reading for both requests: the round number, not the time, orders them
    second = _request(ex.id, clock(), "olga")
    record = {"required": True, "reasons": ["host group 'db' requires approval (h000)"]}
    rec = store.retry_execution(ex.id, approval=second, approval_record=record)
    assert rec.status is ExecutionStatus.PENDING_APPROVAL
    retried = next(r for r in rec.host_runs if r.retry_of == a.id)
    assert retried.state is S.PENDING_APPROVAL and retried.attempt == 2
    assert retried.waiting_reason == "awaiting approval (retry)"
    assert rec.policy["approval"] == record
    newest = sec.approval_for_execution(ex.id)
    assert newest is not None and newest.id == second.id
    assert newest.content_hash == ex.content_hash
    assert store.claim_host_runs("w1", 5, 30) == []  # nothing runs before the approval

    store.approve_execution(ex.id)
    [c] = store.claim_host_runs("w1", 5, 30)
    assert c.id == retried.id


def test_retry_with_approval_changes_nothing_when_nothing_failed(
    store, sec: SqlStore, clock
) -> None:
    ex = script_execution(store, make_hosts(store, 1))
    with pytest.raises(ConflictError):
        store.retry_execution(ex.id, approval=_request(ex.id, clock(), "olga"))
    assert sec.approval_for_execution(ex.id) is None  # the request rolled back too


def _request(execution_id: str, now: dt.datetime, requester: str):  # type: ignore[no-untyped-def]
    return open_request(
        id=str(uuid.uuid4()),
        subject=f"execution:{execution_id}",
        policy="one_of_many",
        approvers=["role:approver"],
        requester=requester,
        now=now,
    )


def _version(name: str, requires_approval: bool = False):  # type: ignore[no-untyped-def]
    from muster.domain.scripts import ScriptVersion

    return ScriptVersion(
        name=name, shell="bash", body=f"echo {name}", requires_approval=requires_approval
    )


# --- migration 0005 ------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def bare_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """A database with no schema yet (the migration test walks it step by step)."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
        yield eng
        eng.dispose()
        return
    base = pg_url()
    if base is None:
        pytest.skip(PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(with_search_path(base, schema))
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_migration_turns_latest_version_flags_into_script_rules(bare_engine: Engine) -> None:
    upgrade(bare_engine, "0004_webhooks")
    now = dt.datetime.now(dt.UTC)
    # name -> the requires_approval flag of each version, oldest first
    library = {
        "latest-asks": [False, True],
        "latest-dropped-it": [True, False],
        "never": [False],
        "asks-with-policy": [True],
    }
    with bare_engine.begin() as conn:
        for name, flags in library.items():
            conn.execute(
                insert(scripts).values(
                    id=name,
                    name=name,
                    description="",
                    tags=[],
                    latest_version=len(flags),
                    created_at=now,
                    updated_at=now,
                )
            )
            for number, flag in enumerate(flags, start=1):
                conn.execute(
                    insert(script_versions).values(
                        script_id=name,
                        number=number,
                        content_hash=f"{number:064d}",
                        shell="bash",
                        body="echo",
                        parameters=[],
                        timeout=60.0,
                        requires_approval=flag,
                        idempotent=False,
                        libraries=[],
                        description="",
                        created_at=now,
                    )
                )
        # a rule set before 0005: who approves, nothing about whether
        conn.execute(
            text(
                "INSERT INTO script_approval_policies "
                "(script_id, policy, approvers, deadline_seconds, updated_by, updated_at) "
                "VALUES ('asks-with-policy', 'singular', '[\"user:amy\"]', 600, 'ada', :at)"
            ),
            {"at": now.replace(tzinfo=None) if conn.dialect.name == "sqlite" else now},
        )

    upgrade(bare_engine)
    sec = SqlStore(bare_engine)
    rules = {name: sec.approval_rule(ApprovalScope.SCRIPT, name) for name in library}
    asks = rules["latest-asks"]
    assert asks is not None and asks.rule.required and asks.rule.retry_needs_approval
    assert asks.rule.policy is ApprovalPolicy.ONE_OF_MANY
    assert asks.rule.approvers == ("role:approver", "role:admin")
    assert asks.rule.deadline == dt.timedelta(hours=24)
    assert rules["latest-dropped-it"] is None and rules["never"] is None
    kept = rules["asks-with-policy"]
    assert kept is not None and kept.rule.required
    assert kept.rule.policy is ApprovalPolicy.SINGULAR and kept.rule.approvers == ("user:amy",)
    assert kept.rule.deadline == dt.timedelta(minutes=10) and kept.updated_by == "ada"
    with bare_engine.connect() as conn:
        rounds = conn.execute(select(col("round_no")).select_from(table("approval_requests")))
        assert rounds.all() == []  # the column exists (and no request was invented)


def test_a_sub_second_deadline_is_kept_as_one_second(sec: SqlStore) -> None:
    rule = ApprovalRule(ApprovalScope.JOB, "job", deadline=dt.timedelta(milliseconds=300))
    sec.save_approval_rule(rule)
    got = sec.approval_rule(ApprovalScope.JOB, "job")
    assert got is not None and got.rule.deadline == dt.timedelta(seconds=1)


def test_two_openers_of_one_execution_end_with_one_request(
    store, sec: SqlStore, clock, peers
) -> None:
    """The submission and the reaper's sync may both find an execution without a
    request and open one; the second must get the first's, not a stale duplicate
    that stays pending in every inbox. Each opener has its own engine here."""
    ex = script_execution(store, make_hosts(store, 1), requires_approval=True)
    openers = [SqlStore(p.engine, clock=clock) for p in peers(4)]  # type: ignore[attr-defined]
    made = [_request(ex.id, clock(), "olga") for _ in openers]
    got: list[str] = []
    errors: list[BaseException] = []

    def open_one(opener: SqlStore, request) -> None:  # type: ignore[no-untyped-def]
        try:
            rec = opener.create_approval(request, execution_id=ex.id, first_only=True)
            got.append(rec.id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=open_one, args=pair) for pair in zip(openers, made, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(set(got)) == 1, got
    assert sec.list_approvals(status="pending").total == 1

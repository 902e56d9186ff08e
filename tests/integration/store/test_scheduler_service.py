"""The scheduler and schedule service on real SQLite and PostgreSQL, time moved by
FakeClock: ticks fire through the submission service (approvals and audit as for a
manual run), misfires after downtime follow the policy and are recorded, the owner's
current rights decide, run-now fires outside the cron, and a pass interrupted
half-way is finished by the next scheduler without firing anything twice."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from muster.domain.approval_rules import ApprovalRule, ApprovalScope
from muster.domain.hosts import Host
from muster.domain.schedules import (
    FiringStatus,
    MisfirePolicy,
    Schedule,
    ScheduleTarget,
    TargetKind,
    parse_cron,
)
from muster.domain.scripts import ScriptVersion
from muster.domain.states import ExecutionStatus
from muster.errors import PermissionDeniedError, ValidationError
from muster.security.audit import AuditKeys
from muster.security.rbac import permissions_of
from muster.security.vault import Vault
from muster.services.actor import Actor
from muster.services.approvals import Approvals
from muster.services.scheduler import Scheduler
from muster.services.schedules import ScheduleService, owners_from
from muster.services.submission import Submission
from muster.store.audit_store import use_audit_keys
from muster.store.sqlalchemy_store import SqlStore
from muster.testing import FakeClock

UTC = dt.UTC
F = FiringStatus
T0 = dt.datetime(2030, 6, 1, 0, 0, 10, tzinfo=UTC)
OLGA = Actor("olga", roles=("operator",), permissions=permissions_of(["operator"]))
AUDIT_KEYS = AuditKeys(os.urandom(32))
VERA = Actor("vera", roles=("viewer",), permissions=permissions_of(["viewer"]))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def sql(engine: Engine, clock: FakeClock, vault: Vault) -> Iterator[SqlStore]:
    use_audit_keys(engine, AUDIT_KEYS)
    s = SqlStore(engine, vault=vault, clock=clock)
    s.create_user("olga", roles=["operator"])
    s.create_user("amy", roles=["approver"])
    s.create_host(Host(name="web1", address="192.0.2.1", groups=("web",)))
    s.create_host(Host(name="web2", address="192.0.2.2", groups=("web",)))
    yield s
    s.notifier.close()


@pytest.fixture
def service(sql: SqlStore) -> ScheduleService:
    approvals = Approvals(sql, book=sql, rules=sql, users=sql, audit=sql, clock=sql.clock)
    submission = Submission(sql, approvals, sql)
    return ScheduleService(sql, submission, sql, actors=owners_from(sql))


def _hourly(name: str = "uptime", **kw: object) -> Schedule:
    return Schedule(
        name=name,
        cron=parse_cron("0 * * * *", "Europe/Berlin"),
        target=ScheduleTarget(TargetKind.COMMAND, command="uptime", timeout=30),
        selector=("web",),
        **kw,  # type: ignore[arg-type]
    )


def _statuses(sql: SqlStore, sid: str) -> list[tuple[int, FiringStatus]]:
    return sorted((f.due_at.hour, f.status) for f in sql.list_firings(sid))


def test_ticks_fire_through_submission_and_are_audited(sql, service, clock) -> None:
    record = service.create(OLGA, _hourly())
    assert record.next_run == dt.datetime(2030, 6, 1, 1, tzinfo=UTC)
    assert record.schedule.created_by == "olga"
    scheduler = Scheduler(service)
    assert scheduler.step().fired == 0
    clock.advance(3600)
    report = scheduler.step()
    assert report.leading and report.fired == 1
    (firing,) = sql.list_firings(record.id)
    execution = sql.get_execution(firing.execution_id)
    assert execution.requested_by == "olga" and execution.command == "uptime"
    assert sorted(r.host_name for r in execution.host_runs) == ["web1", "web2"]
    assert execution.status is ExecutionStatus.QUEUED
    actions = [a.action for a in sql.list_audit().items]
    assert "schedule.create" in actions and "execution.create" in actions
    after = sql.get_schedule(record.id)
    assert after.runs == 1 and after.next_run == dt.datetime(2030, 6, 1, 2, tzinfo=UTC)
    assert scheduler.step().fired == 0  # nothing twice


def test_an_approval_rule_applies_to_scheduled_runs(sql, service, clock) -> None:
    saved = sql.save_script(ScriptVersion(name="patch", shell="bash", body="echo hi"))
    sql.save_approval_rule(
        ApprovalRule(
            ApprovalScope.SCRIPT, saved.script.id, required=True, approvers=("role:approver",)
        )
    )
    schedule = Schedule(
        name="patching",
        cron=parse_cron("0 * * * *"),
        target=ScheduleTarget(TargetKind.SCRIPT, script="patch"),
        selector=("web1",),
    )
    with pytest.raises(ValidationError, match="x: unknown parameter"):
        service.create(OLGA, dataclasses.replace(schedule, parameters={"x": "1"}))
    record = service.create(OLGA, schedule)
    clock.advance(3600)
    Scheduler(service).step()
    (firing,) = sql.list_firings(record.id)
    assert firing.status is F.FIRED, firing.reason
    execution = sql.get_execution(firing.execution_id)
    assert execution.status is ExecutionStatus.PENDING_APPROVAL
    assert sql.approval_for_execution(execution.id) is not None
    assert (firing.script_version, firing.content_hash) == (1, saved.version.content_hash)


def test_latest_is_chosen_at_fire_time_and_recorded(sql, service, clock) -> None:
    sql.save_script(ScriptVersion(name="deploy", shell="bash", body="echo 1"))
    schedule = Schedule(
        name="deploy",
        cron=parse_cron("0 * * * *"),
        target=ScheduleTarget(TargetKind.SCRIPT, script="deploy"),
        selector=("web1",),
    )
    record = service.create(OLGA, schedule)
    v2 = sql.save_script(ScriptVersion(name="deploy", shell="bash", body="echo 2")).version
    clock.advance(3600)
    Scheduler(service).step()
    (firing,) = sql.list_firings(record.id)
    assert (firing.script_version, firing.content_hash) == (2, v2.content_hash)
    assert sql.get_execution(firing.execution_id).content_hash == v2.content_hash


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (MisfirePolicy.SKIP, [(h, F.MISSED) for h in (1, 2, 3)]),
        (MisfirePolicy.RUN_ONCE, [(1, F.SKIPPED), (2, F.SKIPPED), (3, F.FIRED)]),
        (MisfirePolicy.CATCH_UP, [(1, F.SKIPPED), (2, F.FIRED), (3, F.FIRED)]),
    ],
)
def test_downtime_follows_the_misfire_policy(sql, service, clock, policy, expected) -> None:
    record = service.create(OLGA, _hourly(misfire_policy=policy, catch_up_limit=2))
    clock.advance(3 * 3600 + 300)  # no scheduler ran from 00:00 to 03:05
    Scheduler(service).step()
    assert _statuses(sql, record.id) == expected
    fired = [f for f in sql.list_firings(record.id) if f.status is F.FIRED]
    assert all(f.execution_id for f in fired)
    assert len(sql.list_executions().items) == len(fired)


def test_a_firing_the_owner_may_no_longer_do_is_recorded_failed(sql, service, clock) -> None:
    record = service.create(OLGA, _hourly())
    sql.update_user("olga", roles=["viewer"])
    clock.advance(3600)
    report = Scheduler(service).step()
    assert report.counts == {F.FAILED: 1}
    (firing,) = sql.list_firings(record.id)
    assert firing.status is F.FAILED and "lacks permission jobs.manage" in (firing.reason or "")
    assert len(sql.list_executions().items) == 0


def test_run_now_fires_outside_the_cron_as_the_caller(sql, service) -> None:
    record = service.create(OLGA, _hourly(max_runs=1))
    with pytest.raises(PermissionDeniedError):
        service.run_now(VERA, record.id)
    execution = service.run_now(OLGA, record.id)
    (firing,) = sql.list_firings(record.id)
    assert firing.manual and firing.execution_id == execution.id
    assert sql.get_schedule(record.id).runs == 0


def test_pause_skips_ticks_and_resume_starts_from_now(sql, service, clock) -> None:
    record = service.create(OLGA, _hourly())
    scheduler = Scheduler(service)
    paused = service.set_enabled(OLGA, record.id, False)
    assert paused.next_run is None
    clock.advance(3 * 3600)
    assert scheduler.step().fired == 0
    resumed = service.set_enabled(OLGA, record.id, True)
    assert resumed.next_run == dt.datetime(2030, 6, 1, 4, tzinfo=UTC)
    clock.advance(3600)
    assert scheduler.step().fired == 1
    assert _statuses(sql, record.id) == [(4, F.FIRED)]
    actions = [a.action for a in sql.list_audit().items]
    assert "schedule.pause" in actions and "schedule.resume" in actions


def test_bad_definitions_name_the_field(service, clock) -> None:
    with pytest.raises(ValidationError) as err:
        service.create(OLGA, _hourly(end_at=T0 - dt.timedelta(days=1)))
    assert err.value.field == "end_at"
    bad_script = Schedule(
        name="x",
        cron=parse_cron("0 * * * *"),
        target=ScheduleTarget(TargetKind.SCRIPT, script="nope"),
        selector=("web1",),
    )
    with pytest.raises(ValidationError) as err:
        service.create(OLGA, bad_script)
    assert err.value.field == "script"
    with pytest.raises(PermissionDeniedError):
        service.create(VERA, _hourly())


def test_a_pass_cut_short_is_finished_by_the_next_leader(sql, service, clock, peers) -> None:
    """The leader fires half the due schedules and dies before moving their cursors;
    the next one re-decides them: the fired ticks stay fired once, the rest fire."""
    records = [service.create(OLGA, _hourly(f"s{i}")) for i in range(6)]
    clock.advance(3600)
    first = Scheduler(service)
    assert first.lock.try_acquire()
    now = clock()
    for record in records[:3]:
        for tick in (1,):
            service.fire(record, dt.datetime(2030, 6, 1, tick, tzinfo=UTC))
    first.lock.release()  # "dies": its cursors never moved
    (other,) = peers(1)
    use_audit_keys(other.engine, AUDIT_KEYS)
    approvals = Approvals(other, book=other, rules=other, users=other, audit=other, clock=clock)
    second = Scheduler(
        ScheduleService(
            other, Submission(other, approvals, other), other, actors=owners_from(other)
        )
    )
    clock.advance(5)
    report = second.step()
    assert report.fired == 3 and report.counts.get(F.SKIPPED) == 3
    assert len(sql.list_executions(limit=100).items) == 6
    for record in records:
        assert _statuses(sql, record.id) == [(1, F.FIRED)]
        assert sql.get_schedule(record.id).next_run == dt.datetime(2030, 6, 1, 2, tzinfo=UTC)
    assert now < clock()


def test_secret_values_are_never_stored_with_a_schedule(sql, service) -> None:
    from muster.domain.params import ParameterSpec, ParameterType

    sql.save_script(
        ScriptVersion(
            name="rotate",
            shell="bash",
            body="echo ${token}",
            parameters=(ParameterSpec("token", ParameterType.SECRET),),
        )
    )
    schedule = Schedule(
        name="rotate",
        cron=parse_cron("0 * * * *"),
        target=ScheduleTarget(TargetKind.SCRIPT, script="rotate"),
        selector=("web1",),
        parameters={"token": "hunter2-secret"},
    )
    with pytest.raises(ValidationError) as err:
        service.create(OLGA, schedule)
    assert err.value.field == "parameter_values.token"
    job = Schedule(
        name="pw",
        cron=parse_cron("0 * * * *"),
        target=ScheduleTarget(
            TargetKind.JOB,
            job_type="user_control",
            job_fields={"action": "reset_password", "username": "bob", "password": "hunter2"},
        ),
        selector=("web1",),
    )
    with pytest.raises(ValidationError) as err:
        service.create(OLGA, job)
    assert err.value.field == "job_fields.password"
    assert sql.list_schedules() == []

"""The schedule store's contract on SQLite, PostgreSQL and InMemoryStore: a tick is
recorded once, a fired tick has exactly one execution, the cursor moves by
compare-and-set, and one scheduler leads."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest

from muster.domain.schedules import (
    FiringStatus,
    MisfirePolicy,
    Schedule,
    ScheduleTarget,
    TargetKind,
    parse_cron,
)
from muster.errors import ConflictError, NotFoundError
from muster.store.base import ExecutionKind, NewExecution
from muster.store.schedule_records import FiringClaim, TickRecord

from .conftest import make_hosts

UTC = dt.UTC
T0 = dt.datetime(2030, 1, 1, tzinfo=UTC)


def _schedule(name: str = "nightly", **kw: object) -> Schedule:
    return Schedule(
        name=name,
        cron=parse_cron("0 * * * *", "Europe/Berlin"),
        target=ScheduleTarget(TargetKind.COMMAND, command="uptime", timeout=30),
        selector=("web*", "db1"),
        parameters={"n": 3},
        misfire_policy=MisfirePolicy.CATCH_UP,
        catch_up_limit=4,
        max_lateness=dt.timedelta(minutes=5),
        end_at=T0 + dt.timedelta(days=30),
        created_by="alice",
        **kw,  # type: ignore[arg-type]
    )


def _new(store, n: int = 1) -> NewExecution:
    return NewExecution(
        kind=ExecutionKind.COMMAND,
        targets=make_hosts(store, n, prefix=f"x{len(store.list_hosts())}-"),
        timeout=30,
        command="uptime",
        shell="sh",
    )


def test_a_schedule_round_trips(store) -> None:
    created = store.create_schedule(_schedule(), cursor=T0, next_run=T0 + dt.timedelta(hours=1))
    assert created.id and created.runs == 0 and created.last_run is None
    got = store.get_schedule("nightly")
    assert got == store.get_schedule(created.id) == created
    assert dataclasses.replace(got.schedule, id="") == _schedule()
    assert got.next_run == T0 + dt.timedelta(hours=1) and got.cursor == T0
    with pytest.raises(ConflictError):
        store.create_schedule(_schedule(), cursor=T0, next_run=None)
    with pytest.raises(NotFoundError):
        store.get_schedule("nope")


def test_replace_pause_list_and_delete(store) -> None:
    a = store.create_schedule(_schedule("a"), cursor=T0, next_run=T0)
    store.create_schedule(_schedule("b"), cursor=T0, next_run=T0)
    paused = store.replace_schedule(
        a.id, dataclasses.replace(a.schedule, enabled=False), cursor=T0, next_run=None
    )
    assert not paused.schedule.enabled and paused.next_run is None
    assert paused.schedule.created_by == "alice"
    assert [s.name for s in store.list_schedules()] == ["a", "b"]
    assert [s.name for s in store.list_schedules(enabled=True)] == ["b"]
    with pytest.raises(ConflictError):
        store.replace_schedule(a.id, _schedule("b"), cursor=T0, next_run=None)
    store.delete_schedule(a.id)
    with pytest.raises(NotFoundError):
        store.delete_schedule(a.id)
    assert [s.name for s in store.list_schedules()] == ["b"]


def test_due_schedules_are_the_enabled_ones_due_by_now(store) -> None:
    early = store.create_schedule(_schedule("early"), cursor=T0, next_run=T0)
    store.create_schedule(_schedule("later"), cursor=T0, next_run=T0 + dt.timedelta(hours=2))
    store.create_schedule(_schedule("ended"), cursor=T0, next_run=None)
    store.create_schedule(_schedule("off", enabled=False), cursor=T0, next_run=T0)
    assert [s.id for s in store.due_schedules(T0 + dt.timedelta(hours=1))] == [early.id]


def test_a_tick_fires_once_with_one_execution(store) -> None:
    s = store.create_schedule(_schedule(), cursor=T0, next_run=T0)
    due = T0 + dt.timedelta(hours=1)
    claim = FiringClaim(s.id, due, script_version=3, content_hash="ab" * 32)
    first = store.fire_schedule(claim, _new(store))
    assert first is not None
    before = len(store.list_executions().items)
    assert store.fire_schedule(claim, _new(store)) is None
    assert len(store.list_executions().items) == before  # the loser stored nothing
    (firing,) = store.list_firings(s.id)
    assert (firing.due_at, firing.status, firing.execution_id) == (
        due,
        FiringStatus.FIRED,
        first.id,
    )
    assert (firing.script_version, firing.content_hash, firing.manual) == (3, "ab" * 32, False)
    after = store.get_schedule(s.id)
    assert after.runs == 1 and after.last_execution_id == first.id
    assert after.last_firing_status is FiringStatus.FIRED and after.last_run is not None


def test_run_now_is_recorded_but_not_counted(store) -> None:
    s = store.create_schedule(_schedule(), cursor=T0, next_run=T0)
    fired = store.fire_schedule(FiringClaim(s.id, T0, manual=True), _new(store))
    assert fired is not None
    assert store.get_schedule(s.id).runs == 0
    assert store.list_firings(s.id)[0].manual


def test_ticks_that_started_nothing_are_recorded_once(store) -> None:
    s = store.create_schedule(_schedule(), cursor=T0, next_run=T0)
    ticks = [TickRecord(T0 + dt.timedelta(hours=h), FiringStatus.MISSED, "down") for h in (1, 2, 3)]
    assert store.record_ticks(s.id, ticks) == 3
    assert store.record_ticks(s.id, [*ticks, TickRecord(T0, FiringStatus.SKIPPED)]) == 1
    firings = store.list_firings(s.id)
    assert [f.due_at for f in firings] == [T0 + dt.timedelta(hours=h) for h in (3, 2, 1, 0)]
    assert [f.status for f in firings][:3] == [FiringStatus.MISSED] * 3
    assert store.list_firings(s.id, limit=2, offset=1)[0].due_at == T0 + dt.timedelta(hours=2)
    # a fired tick already recorded as missed stays missed: nothing fires twice
    assert store.fire_schedule(FiringClaim(s.id, T0 + dt.timedelta(hours=1)), _new(store)) is None
    store.delete_schedule(s.id)
    assert store.list_firings(s.id) == []


def test_the_cursor_moves_by_compare_and_set(store) -> None:
    s = store.create_schedule(_schedule(), cursor=T0, next_run=T0)
    later = T0 + dt.timedelta(hours=1)
    assert store.advance_schedule(s.id, expected_cursor=T0, cursor=later, next_run=later)
    assert not store.advance_schedule(s.id, expected_cursor=T0, cursor=T0, next_run=None)
    got = store.get_schedule(s.id)
    assert (got.cursor, got.next_run) == (later, later)


def test_concurrent_firers_fire_each_tick_once(store, peers) -> None:
    s = store.create_schedule(_schedule(), cursor=T0, next_run=T0)
    targets = make_hosts(store, 1, prefix="c")
    handles = peers(4)
    ticks = [T0 + dt.timedelta(minutes=m) for m in range(20)]
    won: list[str] = []
    lock = threading.Lock()

    def fire(handle) -> None:
        for due in ticks:
            new = NewExecution(kind=ExecutionKind.COMMAND, targets=targets, timeout=5, command="x")
            got = handle.fire_schedule(FiringClaim(s.id, due), new)
            if got is not None:
                with lock:
                    won.append(got.id)

    threads = [threading.Thread(target=fire, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(won) == len(set(won)) == 20
    assert len(store.list_executions(limit=100).items) == 20
    assert store.get_schedule(s.id).runs == 20


def test_one_scheduler_leads(store, peers) -> None:
    other = peers(1)[0]
    mine, theirs = store.scheduler_lock(), other.scheduler_lock()
    assert mine.try_acquire() and mine.held()
    assert not theirs.try_acquire() and not theirs.held()
    mine.release()
    assert not mine.held()
    assert theirs.try_acquire()
    theirs.release()

"""Maintenance windows in the store: the windows, and the gate in the claim.

The gate is in the claim, so it holds however many workers claim: a run
outside its host's window is never handed out; it goes back to the queue
with the next opening as ``available_at`` and a reason naming it. The
sweep (run with every reap) acts on closes: unstarted claims are deferred,
started runs under a ``stop`` window are asked to stop with the window's
reason. Each test runs on SQLite, PostgreSQL and InMemoryStore.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.states import HostRunState
from muster.domain.throttle import group_key
from muster.domain.windows import (
    ClosePolicy,
    MaintenanceWindow,
    WindowKind,
    WindowScope,
    parse_recurring,
)
from muster.errors import NotFoundError
from muster.store.base import HostTarget, LeaseStatus, Store

from .conftest import script_execution

S = HostRunState
# The FakeClock starts on Tuesday 2030-01-01 00:00 UTC; Sunday is 2030-01-06.
SUNDAY_1AM = dt.datetime(2030, 1, 6, 1, 0, tzinfo=dt.UTC)


def hosts(store: Store, names: dict[str, list[str]]) -> list[HostTarget]:
    out = []
    for name, groups in names.items():
        rec = store.create_host(Host(name=name, transport=TransportKind.LOCAL, groups=groups))
        out.append(HostTarget(rec.id, rec.name, group_key=group_key(groups)))
    return out


def sunday_window(
    policy: ClosePolicy = ClosePolicy.FINISH, target: str = "db"
) -> MaintenanceWindow:
    return parse_recurring(
        "Sun 01:00-03:00 UTC", name="db sunday", target=target, close_policy=policy
    )


def advance_to(clock, at: dt.datetime) -> None:
    clock.advance((at - clock()).total_seconds())


def test_windows_round_trip(store):
    rec = store.create_window(sunday_window(ClosePolicy.STOP), created_by="alice")
    blackout = store.create_window(
        MaintenanceWindow(
            name="freeze",
            kind=WindowKind.BLACKOUT,
            scope=WindowScope.ALL,
            timezone="Europe/Berlin",
            starts_at=dt.datetime(2030, 12, 24, tzinfo=dt.UTC),
            ends_at=dt.datetime(2030, 12, 27, tzinfo=dt.UTC),
        )
    )
    assert rec.id and blackout.id and rec.id != blackout.id
    got = store.get_window(rec.id)
    assert got.spec() == "Sun 01:00-03:00 UTC"
    assert got.close_policy is ClosePolicy.STOP and got.target == "db"
    assert store.get_window(blackout.id).starts_at == dt.datetime(2030, 12, 24, tzinfo=dt.UTC)
    assert [w.name for w in store.list_windows()] == ["db sunday", "freeze"]
    store.delete_window(rec.id)
    assert [w.id for w in store.list_windows()] == [blackout.id]
    with pytest.raises(NotFoundError):
        store.get_window(rec.id)
    with pytest.raises(NotFoundError):
        store.delete_window(rec.id)


def test_claim_defers_hosts_outside_their_window_and_starts_them_when_it_opens(store, clock):
    store.create_window(sunday_window())
    targets = hosts(store, {"db1": ["db"], "db2": ["db"], "web1": ["web"]})
    ex = script_execution(store, targets)
    got = store.claim_host_runs("w1", 10, 7 * 86400)
    assert [c.run.host_name for c in got] == ["web1"]  # no window names web1: always open
    waiting = {r.host_name: r for r in store.get_execution(ex.id).host_runs if r.state is S.QUEUED}
    assert set(waiting) == {"db1", "db2"}
    for r in waiting.values():
        assert r.waiting_reason == "outside maintenance window; next opens Sun 01:00 UTC"
    assert store.claim_host_runs("w2", 10, 30) == []
    # Waiting for a window is not "not picked up": the reaper leaves them alone.
    clock.advance(3 * 3600)
    store.reap()
    assert {r.state for r in store.get_execution(ex.id).host_runs if r.host_name != "web1"} == {
        S.QUEUED
    }
    advance_to(clock, SUNDAY_1AM - dt.timedelta(seconds=1))
    assert store.claim_host_runs("w2", 10, 30) == []
    clock.advance(1)
    assert sorted(c.run.host_name for c in store.claim_host_runs("w2", 10, 30)) == ["db1", "db2"]


def test_claim_fills_its_batch_past_deferred_runs(store):
    store.create_window(sunday_window())
    many = hosts(store, {f"db{i}": ["db"] for i in range(12)})
    script_execution(store, many, name="closed")
    script_execution(store, hosts(store, {"web1": ["web"], "web2": ["web"]}), name="open")
    got = store.claim_host_runs("w", 2, 30)
    assert sorted(c.run.host_name for c in got) == ["web1", "web2"]


def test_stop_window_close_defers_unstarted_and_stops_running(store, clock):
    store.create_window(sunday_window(ClosePolicy.STOP))
    advance_to(clock, SUNDAY_1AM + dt.timedelta(hours=1))
    ex = script_execution(store, hosts(store, {"db1": ["db"], "db2": ["db"]}))
    a, b = store.claim_host_runs("w", 10, 3 * 3600)
    assert store.mark_started(a.id, "w", a.epoch)
    assert store.sweep_windows().stopping == ()  # still open
    clock.advance(3600)  # 03:00: closed
    swept = store.sweep_windows()
    assert swept.stopping == (a.id,)
    assert swept.deferred == (b.id,)
    assert store.heartbeat("w", [(a.id, a.epoch)], 30)[a.id] is LeaseStatus.CANCEL_REQUESTED
    reason = store.stop_reasons([a.id, b.id])
    assert list(reason) == [a.id]
    assert "'db sunday' closed at 2030-01-06 03:00 UTC" in reason[a.id]
    late = store.get_host_run(b.id)
    assert late.state is S.QUEUED
    assert late.waiting_reason == "outside maintenance window; next opens Sun 2030-01-13 01:00 UTC"
    assert not store.mark_started(b.id, "w", b.epoch)  # its claim is gone
    assert store.sweep_windows() == type(swept)()  # acted on once
    assert store.get_execution(ex.id).host_runs  # the execution is intact


def test_finish_window_close_lets_running_hosts_finish(store, clock):
    store.create_window(sunday_window(ClosePolicy.FINISH))
    advance_to(clock, SUNDAY_1AM)
    script_execution(store, hosts(store, {"db1": ["db"]}))
    (a,) = store.claim_host_runs("w", 10, 5 * 3600)
    assert store.mark_started(a.id, "w", a.epoch)
    clock.advance(3 * 3600)
    assert store.sweep_windows().stopping == ()
    assert store.heartbeat("w", [(a.id, a.epoch)], 30)[a.id] is LeaseStatus.RENEWED
    assert store.stop_reasons([a.id]) == {}


def test_new_window_rechecks_runs_and_deleting_it_releases_them(store, clock):
    ex = script_execution(store, hosts(store, {"db1": ["db"]}))
    w = store.create_window(sunday_window())
    assert store.claim_host_runs("w", 10, 30) == []
    (run,) = store.get_execution(ex.id).host_runs
    assert run.waiting_reason.startswith("outside maintenance window")
    # An extra window today opens it at once.
    extra = store.create_window(
        MaintenanceWindow(
            name="today",
            kind=WindowKind.EXTRA,
            target="db",
            starts_at=clock(),
            ends_at=clock() + dt.timedelta(hours=1),
        )
    )
    assert [c.run.host_name for c in store.claim_host_runs("w", 10, 30)] == ["db1"]
    store.delete_window(extra.id)
    store.delete_window(w.id)
    assert store.list_windows() == []


def test_deleting_the_window_releases_waiting_runs(store):
    w = store.create_window(sunday_window())
    ex = script_execution(store, hosts(store, {"db1": ["db"]}))
    assert store.claim_host_runs("w", 10, 30) == []
    store.delete_window(w.id)
    got = store.claim_host_runs("w", 10, 30)
    assert [c.execution.id for c in got] == [ex.id]


def test_override_runs_an_execution_outside_its_window(store):
    store.create_window(sunday_window(ClosePolicy.STOP))
    ex = script_execution(store, hosts(store, {"db1": ["db"], "db2": ["db"]}))
    other = script_execution(store, hosts(store, {"db3": ["db"]}), name="other")
    assert store.claim_host_runs("w", 10, 30) == []
    assert not store.windows_overridden(ex.id)
    assert store.override_windows(ex.id, by="alice") == 2
    assert store.windows_overridden(ex.id)
    got = store.claim_host_runs("w", 10, 30)
    assert sorted(c.run.host_name for c in got) == ["db1", "db2"]
    assert {c.execution.id for c in got} == {ex.id}
    (waiting,) = store.get_execution(other.id).host_runs
    assert waiting.state is S.QUEUED


def test_host_window_and_fleet_blackout(store, clock):
    store.create_window(
        parse_recurring(
            "daily 00:00-23:59 UTC", name="web1 always", scope=WindowScope.HOST, target="web1"
        )
    )
    store.create_window(
        MaintenanceWindow(
            name="freeze",
            kind=WindowKind.BLACKOUT,
            scope=WindowScope.ALL,
            starts_at=clock(),
            ends_at=clock() + dt.timedelta(hours=2),
            close_policy=ClosePolicy.STOP,
        )
    )
    script_execution(store, hosts(store, {"web1": [], "app1": ["app"]}))
    assert store.claim_host_runs("w", 10, 30) == []
    clock.advance(2 * 3600)
    assert sorted(c.run.host_name for c in store.claim_host_runs("w", 10, 30)) == [
        "app1",
        "web1",
    ]


def test_concurrent_claimers_never_start_a_host_outside_its_window(store, peers):
    """Four claimers (on SQL, each its own connection) race over open and closed hosts:
    every open host is claimed exactly once, no closed one ever."""
    store.create_window(sunday_window())
    closed = hosts(store, {f"db{i:02d}": ["db"] for i in range(30)})
    opened = hosts(store, {f"web{i:02d}": ["web"] for i in range(30)})
    script_execution(store, closed + opened)
    stores = peers(4)
    barrier = threading.Barrier(len(stores))
    got: list[list[str]] = [[] for _ in stores]

    def go(i: int) -> None:
        barrier.wait()
        for _ in range(6):
            got[i] += [c.run.host_name for c in stores[i].claim_host_runs(f"w{i}", 4, 300)]

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    names = [n for g in got for n in g]
    assert sorted(names) == sorted(t.host_name for t in opened)  # each once, none closed

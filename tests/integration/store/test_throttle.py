"""Server-side throttling: the claim keeps an execution's forks, per_group and delay.

The limits live in the database, so they hold however many workers claim:
a run of a throttled execution starts only while its execution has a free
slot, counted under a lock on the execution's row.
"""

from __future__ import annotations

import threading

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.states import FailureReason, HostRunState
from muster.domain.throttle import Throttle, group_key
from muster.errors import ValidationError
from muster.store.base import HostTarget, RunResult, Store

from .conftest import make_hosts, script_execution

S = HostRunState


def grouped_hosts(store: Store, n: int, groups: int) -> list[HostTarget]:
    out = []
    for i in range(n):
        g = [f"g{i % groups}"]
        rec = store.create_host(Host(name=f"gh{i:03d}", transport=TransportKind.LOCAL, groups=g))
        out.append(HostTarget(rec.id, rec.name, group_key=group_key(g)))
    return out


def finish(store: Store, claims, owner: str) -> None:
    for c in claims:
        assert store.mark_started(c.id, owner, c.epoch)
    done = store.finish_host_runs(
        owner, [RunResult(c.id, c.epoch, S.SUCCEEDED, exit_code=0) for c in claims]
    )
    assert done == {c.id for c in claims}


def test_forks_bound_a_claim_and_free_slots_reopen(store):
    ex = script_execution(store, make_hosts(store, 10), throttle=Throttle(forks=3))
    first = store.claim_host_runs("w1", 100, 30)
    assert len(first) == 3
    assert store.claim_host_runs("w2", 100, 30) == []
    finish(store, first[:2], "w1")
    again = store.claim_host_runs("w2", 100, 30)
    assert len(again) == 2
    assert {c.execution.id for c in again} == {ex.id}
    assert store.get_execution(ex.id).throttle == Throttle(forks=3)


def test_per_group_bounds_each_group(store):
    targets = grouped_hosts(store, 12, groups=3)
    script_execution(store, targets, throttle=Throttle(forks=100, per_group=2))
    got = store.claim_host_runs("w", 100, 30)
    names = [c.run.host_name for c in got]
    per_group: dict[int, int] = {}
    for n in names:
        g = int(n[2:]) % 3
        per_group[g] = per_group.get(g, 0) + 1
    assert per_group == {0: 2, 1: 2, 2: 2}


def test_unthrottled_work_is_claimed_beside_throttled(store):
    hosts = make_hosts(store, 6)
    script_execution(store, hosts, name="slow", throttle=Throttle(forks=1))
    free = script_execution(store, hosts, name="free")
    got = store.claim_host_runs("w", 100, 30)
    by_exec: dict[str, int] = {}
    for c in got:
        by_exec[c.execution.id] = by_exec.get(c.execution.id, 0) + 1
    assert by_exec[free.id] == 6
    assert sorted(by_exec.values()) == [1, 6]


def test_delay_spaces_starts(store, clock):
    script_execution(store, make_hosts(store, 3), throttle=Throttle(delay=10))
    assert len(store.claim_host_runs("w", 100, 30)) == 1
    assert store.claim_host_runs("w", 100, 30) == []
    clock.advance(9.5)
    assert store.claim_host_runs("w", 100, 30) == []
    clock.advance(0.5)
    assert len(store.claim_host_runs("w", 100, 30)) == 1


def test_waiting_for_a_slot_is_not_not_picked_up(store, clock):
    ex = script_execution(store, make_hosts(store, 3), throttle=Throttle(forks=1), timeout=7200)
    [held] = store.claim_host_runs("w", 100, 3600 * 3)
    assert store.mark_started(held.id, "w", held.epoch)
    clock.advance(3600)  # past the 30-minute "not picked up" clock, one run still running
    assert store.heartbeat("w", [(held.id, held.epoch)], 3600 * 3)[held.id].value == "renewed"
    report = store.reap()
    assert report.not_picked_up == ()
    states = {r.state for r in store.get_execution(ex.id).host_runs}
    assert states == {S.RUNNING, S.QUEUED}


def test_a_stalled_throttled_execution_is_still_reaped(store, clock):
    ex = script_execution(store, make_hosts(store, 2), throttle=Throttle(forks=1))
    clock.advance(3600)
    report = store.reap()
    assert len(report.not_picked_up) == 2
    reasons = {r.reason for r in store.get_execution(ex.id).host_runs}
    assert reasons == {FailureReason.NOT_PICKED_UP}


def test_concurrent_claimers_never_exceed_forks(store, peers):
    """Four claimers (on SQL, on separate connections) race for one execution's 5 slots."""
    stores = peers(4)
    script_execution(store, make_hosts(store, 40), throttle=Throttle(forks=5))
    barrier = threading.Barrier(len(stores))
    got: list[int] = [0] * len(stores)

    def go(i: int) -> None:
        barrier.wait()
        for _ in range(5):
            got[i] += len(stores[i].claim_host_runs(f"w{i}", 3, 30))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(got) == 5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"forks": 0}, "forks"), ({"per_group": -1}, "per_group"), ({"delay": -1.0}, "delay")],
)
def test_bad_limits_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValidationError) as err:
        Throttle(**kwargs)
    assert err.value.field == field

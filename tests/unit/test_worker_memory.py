"""The Worker on the in-memory store, with a scripted transport and a hand-moved clock.

What the worker adds to the engine (claims, leases, heartbeats, cancel, lease
loss, drain, stop) is driven here step by step: no database, no processes and
no sleeps. Waits are on the store's notifications or the transport's
condition, each under a deadline; heartbeats are sent by calling
``Worker.beat()`` (the heartbeat period is far longer than any test) and lease
time passes by ``FakeClock.advance``. The same life on real processes and a
real database is in ``tests/integration/store/test_worker.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.plans import Plan
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.secret import Secret
from muster.domain.states import ExecutionStatus, FailureReason, HostRunState
from muster.domain.throttle import Throttle, group_key
from muster.store.base import (
    ExecutionKind,
    ExecutionRecord,
    HostRunRecord,
    HostTarget,
    LeaseStatus,
    NewExecution,
)
from muster.store.notify import execution_key
from muster.testing import FakeClock, InMemoryStore, ScriptedRun, ScriptedTransport
from muster.transports.base import Stream, TransportOutcome
from muster.worker import Worker

S = HostRunState
T = TypeVar("T")

#: Far longer than any test: heartbeats happen only when a test calls ``beat()``.
LEASE = 600.0
BEAT = 300.0
#: Every wait's deadline (a wake-up normally comes in milliseconds).
DEADLINE = 10.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[InMemoryStore]:
    s = InMemoryStore(clock=clock, output_cap_bytes=10_000)
    yield s
    s.close()


def _hosts(
    store: InMemoryStore, n: int, prefix: str = "h", groups: Sequence[str] = ()
) -> list[HostTarget]:
    out = []
    for i in range(n):
        g = [groups[i % len(groups)]] if groups else []
        rec = store.create_host(Host(name=f"{prefix}{i}", transport=TransportKind.LOCAL, groups=g))
        out.append(HostTarget(rec.id, rec.name, group_key=group_key(g) if g else None))
    return out


def _execute(
    store: InMemoryStore,
    targets: list[HostTarget],
    *,
    name: str = "job",
    params: tuple[ParameterSpec, ...] = (),
    values: dict[str, object] | None = None,
    throttle: Throttle | None = None,
    idempotent: bool = False,
) -> ExecutionRecord:
    # An hour's timeout: the lease tests move the clock by many minutes.
    v = store.save_script(
        ScriptVersion(
            name=name,
            shell=Shell.BASH,
            body="echo hi",
            parameters=params,
            idempotent=idempotent,
            timeout=3600,
        )
    ).version
    return store.create_execution(
        NewExecution(
            kind=ExecutionKind.SCRIPT,
            targets=targets,
            timeout=v.timeout,
            script_id=v.script_id,
            script_version=v.number,
            content_hash=v.content_hash,
            parameters=values or {},
            idempotent=idempotent,
            throttle=throttle or Throttle(),
        )
    )


async def _until(
    store: InMemoryStore, execution_id: str, check: Callable[[], T], what: str = "condition"
) -> T:
    """``check()`` once it is truthy, re-checked on every change of the execution."""
    with store.notifier.subscribe(execution_key(execution_id)) as sub:
        try:
            async with asyncio.timeout(DEADLINE):
                while not (value := check()):
                    await sub.wait(DEADLINE)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None
    return value


async def _finished(store: InMemoryStore, execution_id: str) -> ExecutionRecord:
    def done() -> ExecutionRecord | None:
        rec = store.get_execution(execution_id)
        return rec if rec.status.terminal else None

    return await _until(store, execution_id, done, "the execution to end")


async def _started(
    store: InMemoryStore, transport: ScriptedTransport, execution_id: str, n: int = 1
) -> list[HostRunRecord]:
    """The execution's started runs, once ``n`` are inside the transport (a start
    is recorded before the command is sent, and wakes nobody: the transport tells)."""
    await transport.wait_running(n, DEADLINE)
    runs = [r for r in store.get_execution(execution_id).host_runs if r.started_at]
    assert len(runs) >= n
    return runs


@contextlib.asynccontextmanager
async def _running(
    store: InMemoryStore, transport: ScriptedTransport, **kw: Any
) -> AsyncIterator[Worker]:
    kw.setdefault("concurrency", 4)
    worker = Worker(
        store,
        {TransportKind.LOCAL: transport},
        worker_id="w-mem",
        lease_seconds=LEASE,
        heartbeat_seconds=BEAT,
        # Claims must come from the store's wake-ups, never from the poll.
        poll_seconds=DEADLINE * 3,
        **kw,
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stop(grace=0)
        await asyncio.wait_for(task, DEADLINE)


def _gated(gate: asyncio.Event) -> Callable[[Host, Plan], ScriptedRun]:
    return lambda _h, _p: ScriptedRun(output=[(Stream.STDOUT, "working\n")], gate=gate)


async def test_claims_runs_and_records_each_outcome(store: InMemoryStore) -> None:
    outcomes = {
        "h0": ScriptedRun(
            output=[(Stream.STDOUT, "hello\n"), (Stream.STDERR, "warn\n")],
            outcome=TransportOutcome(S.SUCCEEDED, exit_code=0),
        ),
        "h1": ScriptedRun(outcome=TransportOutcome(S.FAILED, exit_code=7)),
        "h2": ScriptedRun(raises=OSError("connection reset")),
        "h3": ScriptedRun(output=[(Stream.STDOUT, '@@{"step": 1}\n@@{"step": 2}\n')]),
    }
    transport = ScriptedTransport(lambda host, _plan: outcomes[host.name])
    ex = _execute(store, _hosts(store, 4))
    async with _running(store, transport):
        rec = await _finished(store, ex.id)
    runs = {r.host_name: r for r in rec.host_runs}
    assert rec.status is ExecutionStatus.FAILED
    assert (runs["h0"].state, runs["h0"].exit_code, runs["h0"].reason) == (S.SUCCEEDED, 0, None)
    assert (runs["h0"].stdout_tail, runs["h0"].stderr_tail) == ("hello\n", "warn\n")
    assert (runs["h1"].state, runs["h1"].exit_code, runs["h1"].reason) == (
        S.FAILED,
        7,
        FailureReason.COMMAND_FAILED,
    )
    assert runs["h2"].state is S.FAILED and runs["h2"].reason == FailureReason.TRANSPORT_ERROR
    assert "connection reset" in (runs["h2"].message or "")
    assert runs["h3"].events == 2
    for run in runs.values():
        assert run.owner == "w-mem" and run.epoch == 1 and run.started_at is not None
        assert run.lease_expires_at is None and run.finished_at is not None
    chunks = store.read_output(run_id=runs["h0"].id)
    assert [(c.stream, c.data) for c in chunks] == [("stdout", "hello\n"), ("stderr", "warn\n")]
    assert sorted(transport.started) == ["h0", "h1", "h2", "h3"]


async def test_concurrency_bounds_the_runs_held(store: InMemoryStore) -> None:
    gate = asyncio.Event()
    transport = ScriptedTransport(_gated(gate))
    ex = _execute(store, _hosts(store, 5))
    async with _running(store, transport, concurrency=2) as worker:
        await transport.wait_running(2, DEADLINE)
        counts = store.get_execution(ex.id).counts
        assert (counts["running"], counts["queued"]) == (2, 3)
        assert worker.describe()["running"] == 2
        gate.set()
        rec = await _finished(store, ex.id)
    assert rec.status is ExecutionStatus.SUCCEEDED
    assert transport.max_running == 2 and len(transport.started) == 5


async def test_throttled_execution_keeps_forks_and_per_group(store: InMemoryStore) -> None:
    """The claim, not the worker, keeps an execution's limits: a worker with room
    for eight still runs two hosts at once, one per group."""
    gates = {f"h{i}": asyncio.Event() for i in range(6)}
    transport = ScriptedTransport(lambda h, _p: ScriptedRun(gate=gates[h.name]))
    targets = _hosts(store, 6, groups=("web", "db"))
    ex = _execute(store, targets, throttle=Throttle(forks=3, per_group=1))
    async with _running(store, transport, concurrency=8):
        await transport.wait_running(2, DEADLINE)
        assert store.get_execution(ex.id).counts["running"] == 2
        for gate in gates.values():
            gate.set()
        rec = await _finished(store, ex.id)
    assert rec.status is ExecutionStatus.SUCCEEDED
    assert transport.max_running == 2
    assert transport.max_running_per_group == {"web": 1, "db": 1}


async def test_heartbeat_renews_leases_so_the_reaper_leaves_them(
    store: InMemoryStore, clock: FakeClock
) -> None:
    gate = asyncio.Event()
    transport = ScriptedTransport(_gated(gate))
    ex = _execute(store, _hosts(store, 2))
    async with _running(store, transport) as worker:
        await _started(store, transport, ex.id, 2)
        clock.advance(LEASE - 1)
        await worker.beat()
        for run in store.get_execution(ex.id).host_runs:
            assert run.lease_expires_at == clock.now + dt.timedelta(seconds=LEASE)
        clock.advance(LEASE - 1)  # past the first lease, within the renewed one
        assert store.reap().total == 0
        gate.set()
        rec = await _finished(store, ex.id)
    assert rec.status is ExecutionStatus.SUCCEEDED and transport.cancelled == []


async def test_cancel_request_kills_a_started_run_on_the_next_heartbeat(
    store: InMemoryStore,
) -> None:
    transport = ScriptedTransport(_gated(asyncio.Event()))  # never opens
    ex = _execute(store, _hosts(store, 1))
    async with _running(store, transport) as worker:
        [run] = await _started(store, transport, ex.id)
        store.cancel_execution(ex.id)
        assert store.get_host_run(run.id).cancel_requested
        await worker.beat()
        rec = await _finished(store, ex.id)
    [done] = rec.host_runs
    assert (done.state, done.reason, done.message) == (
        S.CANCELLED,
        FailureReason.CANCELLED,
        "cancelled on request",
    )
    assert transport.cancelled == ["h0"]
    assert [c.data for c in store.read_output(run_id=run.id)] == ["working\n"]


class _CancelBeforeStart(InMemoryStore):
    """A user cancels between the claim and the start: at the start's compare-and-set."""

    def mark_started_many(self, owner: str, runs: Sequence[tuple[str, int]]) -> set[str]:
        for run_id, _ in runs:
            self.cancel_host_run(run_id)
        return super().mark_started_many(owner, runs)


async def test_a_run_cancelled_before_it_started_is_never_sent(clock: FakeClock) -> None:
    store = _CancelBeforeStart(clock=clock)
    transport = ScriptedTransport()
    ex = _execute(store, _hosts(store, 1))
    async with _running(store, transport):
        rec = await _finished(store, ex.id)
    [run] = rec.host_runs
    assert (run.state, run.started_at, run.message) == (S.CANCELLED, None, "cancelled on request")
    assert transport.started == []
    store.close()


async def test_a_reaped_run_is_killed_and_its_worker_writes_nothing_more(
    store: InMemoryStore, clock: FakeClock
) -> None:
    gate = asyncio.Event()
    transport = ScriptedTransport(_gated(gate))
    ex = _execute(store, _hosts(store, 1))
    async with _running(store, transport) as worker:
        [run] = await _started(store, transport, ex.id)
        clock.advance(LEASE + 1)  # the worker missed its heartbeats: the lease lapsed
        assert store.reap().lost == (run.id,)
        lost = store.get_host_run(run.id)
        status = store.heartbeat(worker.worker_id, [(run.id, run.epoch)], LEASE)
        assert status == {run.id: LeaseStatus.LOST}
        await worker.beat()
        await transport.wait_for(lambda t: t.cancelled == ["h0"], DEADLINE)
        assert worker.describe()["running"] <= 1
    # Stopped (its run ended): nothing the worker did after losing the lease was stored.
    assert store.get_host_run(run.id) == lost
    assert lost.state is S.LOST and lost.reason == FailureReason.WORKER_LOST
    assert store.get_execution(ex.id).status is ExecutionStatus.FAILED


async def test_a_lost_idempotent_run_is_run_again_as_a_new_attempt(
    store: InMemoryStore, clock: FakeClock
) -> None:
    gates = [asyncio.Event(), asyncio.Event()]
    attempts: list[str] = []

    def script(host: Host, plan: Plan) -> ScriptedRun:
        attempts.append(host.name)
        return ScriptedRun(gate=gates[len(attempts) - 1])

    transport = ScriptedTransport(script)
    ex = _execute(store, _hosts(store, 1), idempotent=True)
    async with _running(store, transport) as worker:
        [first] = await _started(store, transport, ex.id)
        clock.advance(LEASE + 1)
        report = store.reap()
        assert report.lost == (first.id,) and len(report.retried) == 1
        await worker.beat()  # the first attempt is killed...
        await transport.wait_for(lambda t: t.cancelled == ["h0"], DEADLINE)
        gates[1].set()  # ...and the second one, claimed again, runs to the end
        rec = await _finished(store, ex.id)
    [current] = rec.host_runs
    assert (current.id, current.attempt, current.state) == (report.retried[0], 2, S.SUCCEEDED)
    assert attempts == ["h0", "h0"] and transport.cancelled == ["h0"]


async def test_drain_stops_claiming_keeps_running_work_and_resume_restarts(
    store: InMemoryStore, clock: FakeClock
) -> None:
    gate = asyncio.Event()
    transport = ScriptedTransport(_gated(gate))
    first = _execute(store, _hosts(store, 1), name="first")
    async with _running(store, transport) as worker:
        await _started(store, transport, first.id)
        worker.drain()
        assert worker.describe()["draining"] and worker.alive
        # Queued while the worker has free slots and is woken: it must not claim it.
        later = _execute(store, _hosts(store, 2, "l"), name="later")
        gate.set()  # the held run is not stopped by draining
        assert (await _finished(store, first.id)).status is ExecutionStatus.SUCCEEDED
        assert store.get_execution(later.id).counts["queued"] == 2
        resumed_at = clock.advance(1)
        worker.resume()
        rec = await _finished(store, later.id)
    assert rec.status is ExecutionStatus.SUCCEEDED
    # Claimed only once resumed (a claim while draining would carry the earlier time).
    assert {r.claimed_at for r in rec.host_runs} == {resumed_at}
    assert sorted(transport.started) == ["h0", "l0", "l1"]


async def test_stop_cancels_runs_still_going_after_the_grace(store: InMemoryStore) -> None:
    transport = ScriptedTransport(_gated(asyncio.Event()))
    ex = _execute(store, _hosts(store, 2))
    worker = Worker(
        store,
        {TransportKind.LOCAL: transport},
        worker_id="w-stop",
        lease_seconds=LEASE,
        heartbeat_seconds=BEAT,
        poll_seconds=DEADLINE * 3,
    )
    task = asyncio.create_task(worker.run())
    await _started(store, transport, ex.id, 2)
    await worker.stop(grace=0)
    await asyncio.wait_for(task, DEADLINE)
    runs = store.get_execution(ex.id).host_runs
    assert {r.state for r in runs} == {S.CANCELLED}
    assert all("w-stop shut down before the run finished" in (r.message or "") for r in runs)
    assert not worker.alive and sorted(transport.cancelled) == ["h0", "h1"]


async def test_secret_values_are_masked_before_the_store_hears_them(
    store: InMemoryStore,
) -> None:
    secret = "s3cr3t-token-value"
    transport = ScriptedTransport(
        lambda _h, _p: ScriptedRun(output=[(Stream.STDOUT, f"token={secret}\n")])
    )
    ex = _execute(
        store,
        _hosts(store, 1),
        params=(ParameterSpec("token", ParameterType.SECRET),),
        values={"token": Secret(secret)},
    )
    async with _running(store, transport):
        rec = await _finished(store, ex.id)
    [run] = rec.host_runs
    assert run.stdout_tail == "token=***\n"
    assert secret in transport.plans["h0"].secrets  # the host got it, nothing stored did
    assert secret not in repr(vars(store)) and rec.parameters == {"token": "***"}


async def test_a_host_deleted_after_queueing_fails_without_being_sent(
    store: InMemoryStore,
) -> None:
    transport = ScriptedTransport()
    [target] = _hosts(store, 1)
    ex = _execute(store, [target])
    assert target.host_id is not None
    store.delete_host(target.host_id)
    async with _running(store, transport):
        rec = await _finished(store, ex.id)
    [run] = rec.host_runs
    assert (run.state, run.reason, run.started_at) == (S.FAILED, FailureReason.HOST_DELETED, None)
    assert transport.started == []


@pytest.mark.parametrize("method", ["mark_started_many", "finish_host_runs"])
async def test_a_busy_store_delays_a_start_or_outcome_and_never_changes_it(
    store: InMemoryStore, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    # CI saw a PostgreSQL lock timeout on a batch of finishes turn hosts that had
    # succeeded into "failed: worker error". The write is a CAS: try it again.
    from muster.errors import StoreUnavailable

    real = getattr(store, method)
    refusals = iter([True, True])

    def busy_twice(*args: Any, **kwargs: Any) -> Any:
        if next(refusals, False):
            raise StoreUnavailable("the database is busy; try again shortly")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, method, busy_twice)
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(output=[(Stream.STDOUT, "ok\n")]))
    ex = _execute(store, _hosts(store, 3))
    async with _running(store, transport):
        rec = await _finished(store, ex.id)
    assert next(refusals, None) is None  # both refusals happened
    assert [(r.state, r.reason) for r in rec.host_runs] == [(S.SUCCEEDED, None)] * 3
    assert sorted(transport.started) == ["h0", "h1", "h2"]


async def test_a_store_busy_past_patience_leaves_the_run_to_its_lease(
    store: InMemoryStore, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # Never "failed" on a guess: the outcome could not be written, so the run
    # stays running until its lease lapses and the reaper settles it.
    # Busy for longer than the worker's patience (2 leases = 0.8 s), then well
    # again: a fallback "failed" write after giving up would land; none may.
    import time

    from muster.errors import StoreUnavailable

    real = store.finish_host_runs
    busy_until: list[float] = []

    def busy_for_a_while(*args: Any, **kwargs: Any) -> Any:
        if not busy_until:
            busy_until.append(time.monotonic() + 1.5)
        if time.monotonic() < busy_until[0]:
            raise StoreUnavailable("the database is busy; try again shortly")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "finish_host_runs", busy_for_a_while)
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun())
    ex = _execute(store, _hosts(store, 1))
    worker = Worker(
        store,
        {TransportKind.LOCAL: transport},
        worker_id="w-busy",
        lease_seconds=0.4,
        heartbeat_seconds=0.2,
        poll_seconds=DEADLINE * 3,
    )
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(DEADLINE):
            while worker.completed < 1:
                await asyncio.sleep(0.05)
            await asyncio.sleep(max(0.0, busy_until[0] - time.monotonic()) + 0.5)
    finally:
        await worker.stop(grace=0)
        await asyncio.wait_for(task, DEADLINE)
    run = store.get_execution(ex.id).host_runs[0]
    assert run.state is S.RUNNING and run.owner == "w-busy"

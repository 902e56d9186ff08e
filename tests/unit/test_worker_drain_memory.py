"""A worker's presence and the drain flag, on the in-memory store.

The flag in the store is the one truth: an operator sets it for any worker
(``request_drain``), the worker reads it back with its heartbeat and stops
claiming; what it holds finishes; it reports ``draining`` and then
``drained``; resume clears the flag and it claims again. Heartbeats are
sent by calling ``Worker.report()`` (the period is far longer than any
test), so nothing here sleeps. The same on real processes and a real
database is in ``tests/integration/store/test_worker_drain.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.states import ExecutionStatus
from muster.domain.workers import WorkerState
from muster.store.base import ExecutionKind, ExecutionRecord, HostTarget, NewExecution
from muster.store.notify import execution_key
from muster.testing import FakeClock, InMemoryStore, ScriptedRun, ScriptedTransport
from muster.transports.base import Stream
from muster.worker import Worker

W = WorkerState
LEASE = 600.0
BEAT = 300.0
DEADLINE = 10.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[InMemoryStore]:
    s = InMemoryStore(clock=clock)
    yield s
    s.close()


def _execute(store: InMemoryStore, n: int, prefix: str) -> ExecutionRecord:
    targets = []
    for i in range(n):
        rec = store.create_host(Host(name=f"{prefix}{i}", transport=TransportKind.LOCAL))
        targets.append(HostTarget(rec.id, rec.name))
    v = store.save_script(
        ScriptVersion(name=prefix, shell=Shell.BASH, body="echo hi", timeout=3600)
    ).version
    return store.create_execution(
        NewExecution(
            kind=ExecutionKind.SCRIPT,
            targets=targets,
            timeout=v.timeout,
            script_id=v.script_id,
            script_version=v.number,
            content_hash=v.content_hash,
        )
    )


async def _finished(store: InMemoryStore, execution_id: str) -> ExecutionRecord:
    with store.notifier.subscribe(execution_key(execution_id)) as sub:
        async with asyncio.timeout(DEADLINE):
            while not (rec := store.get_execution(execution_id)).status.terminal:
                await sub.wait(DEADLINE)
    return rec


@contextlib.asynccontextmanager
async def _running(
    store: InMemoryStore, transport: ScriptedTransport, worker_id: str = "w-a"
) -> AsyncIterator[Worker]:
    worker = Worker(
        store,
        {TransportKind.LOCAL: transport},
        worker_id=worker_id,
        concurrency=4,
        lease_seconds=LEASE,
        heartbeat_seconds=BEAT,
        poll_seconds=DEADLINE * 3,
    )
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(DEADLINE):
            while not worker.alive:
                await asyncio.sleep(0)
        yield worker
    finally:
        await worker.stop(grace=0)
        await asyncio.wait_for(task, DEADLINE)


def _gated(gate: asyncio.Event) -> ScriptedTransport:
    return ScriptedTransport(
        lambda _h, _p: ScriptedRun(output=[(Stream.STDOUT, "working\n")], gate=gate)
    )


async def test_a_worker_registers_where_it_runs_and_records_its_clean_stop(
    store: InMemoryStore,
) -> None:
    async with _running(store, _gated(asyncio.Event())):
        rec = store.get_worker("w-a")
        assert (rec.state, rec.hostname, rec.pid) == (W.RUNNING, socket.gethostname(), os.getpid())
        assert rec.lease_seconds == LEASE
    rec = store.get_worker("w-a")
    assert rec.state is W.STOPPED and rec.stopped_at is not None


async def test_a_drain_set_in_the_store_stops_claims_finishes_held_runs_then_resume(
    store: InMemoryStore, clock: FakeClock
) -> None:
    gate = asyncio.Event()
    transport = _gated(gate)
    first = _execute(store, 1, "first")
    async with _running(store, transport) as worker:
        await transport.wait_running(1, DEADLINE)
        store.request_drain("w-a", by="alice")
        assert not worker.draining, "the flag reaches the worker with its heartbeat"
        await worker.report()
        assert worker.draining
        rec = store.get_worker("w-a")
        assert (rec.state, rec.runs_held, rec.drain_requested_by) == (W.DRAINING, 1, "alice")
        later = _execute(store, 2, "later")
        gate.set()  # draining does not stop what the worker holds
        assert (await _finished(store, first.id)).status is ExecutionStatus.SUCCEEDED
        assert store.get_execution(later.id).counts["queued"] == 2
        # The run is finished in the store a moment before the worker lets go of it:
        # heartbeat until it holds nothing (a worker that never lets go times out here).
        async with asyncio.timeout(DEADLINE):
            while True:
                await worker.report()
                if store.get_worker("w-a").state is W.DRAINED:
                    break
                await asyncio.sleep(0.01)
        assert store.get_execution(later.id).counts["queued"] == 2
        resumed_at = clock.advance(1)
        store.request_resume("w-a", by="bob")
        await worker.report()
        assert not worker.draining and store.get_worker("w-a").state is W.RUNNING
        done = await _finished(store, later.id)
    assert done.status is ExecutionStatus.SUCCEEDED
    assert {r.claimed_at for r in done.host_runs} == {resumed_at}
    assert {r.owner for r in done.host_runs} == {"w-a"}


async def test_a_local_drain_is_written_to_the_flag_and_a_later_operator_resume_wins(
    store: InMemoryStore,
) -> None:
    async with _running(store, _gated(asyncio.Event())) as worker:
        worker.drain()
        await worker.report()
        rec = store.get_worker("w-a")
        assert rec.drain_requested and rec.drain_requested_by == "signal"
        assert rec.state is W.DRAINED
        store.request_resume("w-a", by="alice")
        await worker.report()
        assert not worker.draining and store.get_worker("w-a").state is W.RUNNING


async def test_a_worker_whose_row_is_gone_registers_again_at_its_heartbeat(
    store: InMemoryStore,
) -> None:
    async with _running(store, _gated(asyncio.Event())) as worker:
        with store._lock:
            store._workers.clear()
        assert store.list_workers() == []
        await worker.report()
        assert [r.id for r in store.list_workers()] == ["w-a"]


async def test_a_worker_that_dies_without_a_word_is_listed_lost(
    store: InMemoryStore, clock: FakeClock
) -> None:
    async with _running(store, _gated(asyncio.Event())):
        pass
    # A clean stop: stopped, whatever the time.
    clock.advance(LEASE * 10)
    assert store.get_worker("w-a").observed(clock.now) is W.STOPPED
    # One that never said goodbye: its last word stays, read as lost once a lease passed.
    store.register_worker("w-b", hostname="gone", pid=1, lease_seconds=LEASE)
    clock.advance(LEASE + 1)
    rec = store.get_worker("w-b")
    assert rec.state is W.RUNNING and rec.observed(clock.now) is W.LOST

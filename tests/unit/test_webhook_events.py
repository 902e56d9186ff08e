"""The webhook watcher on the in-memory store: what reaches the outbox, and when.

A change becomes one outbox row per webhook, whoever sees it and however
often; an execution that finished while no watcher ran is reported by the
sweep from the stored watermark; one that finished before any watermark is
not (nothing was promised for it). Time is a FakeClock; waits are on a
condition under a deadline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.scripts import ScriptVersion
from muster.domain.states import HostRunState
from muster.services.webhook_events import ExecutionWatcher, execution_event, host_run_event
from muster.store.base import ExecutionKind, ExecutionRecord, HostTarget, NewExecution
from muster.testing import FakeClock, InMemoryStore

S = HostRunState
DEADLINE = 10.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> InMemoryStore:
    return InMemoryStore(clock=clock)


def _execution(store: InMemoryStore, hosts: int = 2) -> ExecutionRecord:
    targets = []
    for i in range(hosts):
        rec = store.create_host(
            Host(name=f"h{i}-{len(store.list_hosts())}", transport=TransportKind.LOCAL)
        )
        targets.append(HostTarget(rec.id, rec.name))
    v = store.save_script(ScriptVersion(name="s", shell="bash", body="true")).version
    return store.create_execution(
        NewExecution(
            kind=ExecutionKind.SCRIPT,
            targets=targets,
            timeout=60,
            script_id=v.script_id,
            script_version=v.number,
            content_hash=v.content_hash,
        )
    )


def _run_all(store: InMemoryStore, state: HostRunState = S.SUCCEEDED) -> None:
    for c in store.claim_host_runs("w", 100, 60):
        store.mark_started(c.id, "w", c.epoch)
        store.finish_host_run(c.id, "w", c.epoch, state, exit_code=0 if state is S.SUCCEEDED else 1)


def _sent(store: InMemoryStore, hook: str) -> list[tuple[str, str]]:
    """(event, the run's or execution's id) of every outbox row, from its key."""
    keys = [d.event_key.split(":") for d in store.list_webhook_deliveries(hook, limit=1000)]
    return sorted((name, ident) for name, ident, _ in keys)


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE):
        while not check():
            await asyncio.sleep(0.01)


def test_the_same_change_has_the_same_key_and_a_retry_a_new_one(store: InMemoryStore) -> None:
    ex = _execution(store, hosts=1)
    _run_all(store, S.FAILED)
    failed = store.get_execution(ex.id)
    assert execution_event(failed) == execution_event(store.get_execution(ex.id))
    run = failed.host_runs[0]
    assert host_run_event(run).key == host_run_event(store.get_host_run(run.id)).key
    store.retry_execution(ex.id)
    _run_all(store, S.FAILED)
    again = store.get_execution(ex.id)
    assert again.status is failed.status
    assert execution_event(again).key != execution_event(failed).key
    assert json.loads(execution_event(again).body)["event"] == "execution.failed"


async def test_following_writes_each_change_once(store: InMemoryStore, clock: FakeClock) -> None:
    hook = store.create_webhook("https://a.example/hook", "whsec-12345678", ["*"]).id
    watcher = ExecutionWatcher(store, store.notifier, min_interval=0, fallback=0.05, clock=clock)
    await watcher.start()
    try:
        ex = _execution(store)
        watcher.watch(ex.id)
        runs = [r.id for r in ex.host_runs]
        await _until(lambda: ("execution.queued", ex.id) in _sent(store, hook))
        _run_all(store)
        finals = {("execution.succeeded", ex.id), *(("host_run.succeeded", r) for r in runs)}
        await _until(lambda: finals <= set(_sent(store, hook)))
        # A second watcher (a restart, another server) adds nothing.
        assert await ExecutionWatcher(store, store.notifier, clock=clock).sweep() == 1
        sent = _sent(store, hook)
        assert len(sent) == len(set(sent))
    finally:
        await watcher.stop()


async def test_the_sweep_reports_what_finished_while_no_one_watched(
    store: InMemoryStore, clock: FakeClock
) -> None:
    hook = store.create_webhook("https://a.example/hook", "whsec-12345678", ["*"]).id
    before = _execution(store, hosts=1)
    _run_all(store)
    clock.advance(300)
    first = ExecutionWatcher(store, store.notifier, clock=clock)
    assert await first.sweep() == 0  # no watermark yet: nothing before it is promised
    assert _sent(store, hook) == [] and store.webhook_watermark() == clock.now
    clock.advance(300)
    ex = _execution(store)  # runs and ends with no watcher at all (the server was down)
    _run_all(store)
    restarted = ExecutionWatcher(store, store.notifier, clock=clock)
    await restarted.start()
    await restarted.stop()
    runs = store.get_execution(ex.id).host_runs
    assert _sent(store, hook) == sorted(
        [("execution.succeeded", ex.id), *(("host_run.succeeded", r.id) for r in runs)]
    )
    assert before.id not in {ident for _, ident in _sent(store, hook)}
    assert store.webhook_watermark() == clock.now

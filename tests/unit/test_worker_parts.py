"""Worker parts without a database: group commit, notifications."""

from __future__ import annotations

import asyncio

from muster.store.notify import Notifier
from muster.worker.batching import Batcher


async def test_batcher_groups_concurrent_submits_and_reports_each_result():
    calls: list[list[str]] = []
    gate = asyncio.Event()

    async def write(items):
        calls.append(list(items))
        await gate.wait()
        return {i for i in items if not i.startswith("x")}

    b: Batcher[str] = Batcher(write, lambda s: s)
    first = asyncio.ensure_future(b.submit("a"))
    await asyncio.sleep(0)  # let the first batch start
    rest = [asyncio.ensure_future(b.submit(k)) for k in ("b", "xc", "d")]
    await asyncio.sleep(0)
    gate.set()
    assert await first is True
    assert [await r for r in rest] == [True, False, True]
    assert calls == [["a"], ["b", "xc", "d"]]  # the later three shared one write


async def test_batcher_propagates_errors_to_every_waiter():
    async def write(items):
        raise RuntimeError("db down")

    b: Batcher[str] = Batcher(write, lambda s: s)
    results = await asyncio.gather(b.submit("a"), b.submit("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_notifier_wakes_subscribers_of_a_key_only():
    hub = Notifier()
    with hub.subscribe("execution:1") as one, hub.subscribe("execution:2") as two:
        hub.publish("execution:1")
        assert await one.wait(1.0)
        assert not await two.wait(0.01)
        await asyncio.to_thread(hub.publish, "execution:2")  # from another thread
        assert await two.wait(1.0)
    assert hub._subs == {}

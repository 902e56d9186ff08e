"""Worker parts without a database: group commit, the output path, notifications."""

from __future__ import annotations

import asyncio

from muster.store.notify import Notifier
from muster.transports.base import Stream
from muster.worker.batching import Batcher
from muster.worker.capture import RunOutput


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


async def test_run_output_masks_splits_and_caps_in_bounded_memory():
    writes: list[tuple[str, str, int]] = []

    async def writer(stream, text, dropped):
        writes.append((stream, text, dropped))
        return True

    out = RunOutput(writer, ["hunter2"], cap_bytes=100, tail_chars=10, flush_seconds=60)
    out.start()
    out.sink(Stream.STDOUT, "pw=hun")
    out.sink(Stream.STDOUT, "ter2\n")
    out.sink(Stream.STDERR, "e" * 150)
    for _ in range(1000):
        out.sink(Stream.STDOUT, "y" * 1000)  # 1 MB past the cap: only counted
    assert out._streams[Stream.STDOUT].over.endswith("y" * 10)
    assert len(out._streams[Stream.STDOUT].over) == 10
    await out.close()
    stdout = "".join(t for s, t, d in writes if s == "stdout" and not d)
    assert stdout == "pw=***\n" and "hunter2" not in "".join(t for _, t, _ in writes)
    over = [(t, d) for s, t, d in writes if s == "stdout" and d]
    assert over == [("y" * 10, 1_000_000 - 10)]
    assert ("stderr", "e" * 150, 0) in writes  # the text that crossed the cap is sent whole


async def test_run_output_marks_lost_when_the_store_refuses():
    async def writer(stream, text, dropped):
        return False

    out = RunOutput(writer, [], cap_bytes=100, flush_seconds=60)
    out.start()
    out.sink(Stream.STDOUT, "hi")
    await out.close()
    assert out.lost


async def test_notifier_wakes_subscribers_of_a_key_only():
    hub = Notifier()
    with hub.subscribe("execution:1") as one, hub.subscribe("execution:2") as two:
        hub.publish("execution:1")
        assert await one.wait(1.0)
        assert not await two.wait(0.01)
        await asyncio.to_thread(hub.publish, "execution:2")  # from another thread
        assert await two.wait(1.0)
    assert hub._subs == {}

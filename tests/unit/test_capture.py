"""The engine's output path: masked capture into a spool that writes in bounded memory."""

from __future__ import annotations

import asyncio

from muster.engine.capture import OutputSpool, RunCapture
from muster.transports.base import Stream


async def test_spooled_output_is_masked_split_and_capped_in_bounded_memory() -> None:
    writes: list[tuple[str, str, int]] = []

    async def writer(stream: str, text: str, dropped: int) -> bool:
        writes.append((stream, text, dropped))
        return True

    spool = OutputSpool(writer, cap_bytes=100, tail_chars=10, flush_seconds=60)
    capture = RunCapture(["hunter2"], 0, spool.take)
    spool.start()
    capture.sink(Stream.STDOUT, "pw=hun")
    capture.sink(Stream.STDOUT, "ter2\n")
    capture.sink(Stream.STDERR, "e" * 150)
    for _ in range(1000):
        capture.sink(Stream.STDOUT, "y" * 1000)  # 1 MB past the cap: only counted
    assert spool._buffers[Stream.STDOUT].over == "y" * 10
    assert capture.stdout.text == "" and capture.stdout.total_bytes == 1_000_007
    capture.close()
    await spool.close()
    stdout = "".join(t for s, t, d in writes if s == "stdout" and not d)
    assert stdout == "pw=***\n" and "hunter2" not in "".join(t for _, t, _ in writes)
    over = [(t, d) for s, t, d in writes if s == "stdout" and d]
    assert over == [("y" * 10, 1_000_000 - 10)]
    assert ("stderr", "e" * 150, 0) in writes  # the text that crossed the cap is sent whole


async def test_a_spool_whose_writer_refuses_is_lost() -> None:
    async def writer(stream: str, text: str, dropped: int) -> bool:
        return False

    spool = OutputSpool(writer, cap_bytes=100, flush_seconds=60)
    spool.start()
    spool.take(Stream.STDOUT, "hi")
    await spool.close()
    assert spool.lost


async def test_a_flush_past_flush_bytes_does_not_wait_for_the_timer() -> None:
    written: list[str] = []
    wrote = asyncio.Event()

    async def writer(stream: str, text: str, dropped: int) -> bool:
        written.append(text)
        wrote.set()
        return True

    spool = OutputSpool(writer, cap_bytes=10_000, flush_seconds=3600, flush_bytes=100)
    spool.start()
    spool.take(Stream.STDOUT, "z" * 150)
    await asyncio.wait_for(wrote.wait(), 5)
    assert written == ["z" * 150]
    await spool.close()

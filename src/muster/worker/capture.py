"""Per-run output path from a transport's sink to the store, in bounded memory.

The transport's sink is synchronous and called on the event loop; the store
is reached from a thread. Between them, each stream passes through an
``OutputCapture`` (masking the plan's secrets, counting ``@@`` events; it
keeps nothing itself) and a small buffer flushed every ``flush_seconds`` or
when it grows past ``flush_bytes``. Once the run has passed ``cap_bytes`` to
the store, a stream's later text is only counted, plus a short tail for the
record's tail column: the store states the truncation; memory never grows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from muster.domain.output import OutputCapture
from muster.transports.base import Stream

__all__ = ["RunOutput"]

#: (stream, text, dropped_bytes) -> still ours?
Writer = Callable[[str, str, int], Awaitable[bool]]


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class _StreamBuffer:
    __slots__ = ("capture", "over", "over_bytes", "over_mode", "parts", "size")

    def __init__(self, secrets: Sequence[str]) -> None:
        self.capture = OutputCapture(0, secrets)
        #: Text within the cap, to be stored.
        self.parts: list[str] = []
        self.size = 0
        #: Past the cap: only the latest ``tail`` characters, and a byte count.
        self.over_mode = False
        self.over = ""
        self.over_bytes = 0


class RunOutput:
    """Buffers one run's output and flushes it in order through ``writer``."""

    def __init__(
        self,
        writer: Writer,
        secrets: Sequence[str],
        *,
        cap_bytes: int,
        tail_chars: int = 4096,
        flush_seconds: float = 0.2,
        flush_bytes: int = 64 * 1024,
    ) -> None:
        self._writer = writer
        self._cap = cap_bytes
        self._tail = tail_chars
        self._flush_seconds = flush_seconds
        self._flush_bytes = flush_bytes
        self._streams = {s: _StreamBuffer(secrets) for s in Stream}
        #: Bytes within the cap, sent or pending, both streams together.
        self._budget_used = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._lock = asyncio.Lock()
        #: Set when the store refused a write: the run is no longer ours.
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    @property
    def events(self) -> int:
        return sum(len(b.capture.events) for b in self._streams.values())

    def start(self) -> None:
        self._task = asyncio.create_task(self._flusher())

    def sink(self, stream: Stream, text: str) -> None:
        """The transport's OutputSink."""
        buf = self._streams[Stream(stream)]
        self._take(buf, buf.capture.feed(text))

    def _take(self, buf: _StreamBuffer, text: str) -> None:
        if not text:
            return
        size = _size(text)
        if not buf.over_mode and self._budget_used < self._cap:
            buf.parts.append(text)
            buf.size += size
            self._budget_used += size
            if buf.size >= self._flush_bytes:
                self._wake.set()
            return
        buf.over_mode = True
        buf.over = (buf.over + text)[-self._tail :]
        buf.over_bytes += size

    async def _flusher(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            for stream, buf in self._streams.items():
                if buf.parts:
                    text = "".join(buf.parts)
                    buf.parts, buf.size = [], 0
                    await self._write(stream, text, 0)
                if buf.over_bytes:
                    tail, counted = buf.over, buf.over_bytes
                    buf.over, buf.over_bytes = "", 0
                    await self._write(stream, tail, counted - _size(tail))

    async def _write(self, stream: Stream, text: str, dropped: int) -> None:
        if not self.lost and not await self._writer(stream.value, text, dropped):
            self.lost = True

    async def close(self) -> None:
        """Flush everything, including text a capture held back to mask a secret."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        for buf in self._streams.values():
            self._take(buf, buf.capture.close())
        await self.flush()

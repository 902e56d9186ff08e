"""Per-run output path from a transport's sink to the store, in bounded memory.

The transport's sink is synchronous and called on the event loop; the store
is reached from a thread. Between them, each stream passes through an
``OutputCapture`` (masking the plan's secrets, counting ``@@`` events; it
keeps nothing itself) and a small buffer flushed every ``flush_seconds`` or
when it grows past ``flush_bytes``. Once the run has sent ``cap_bytes`` to
the store, later text is only counted (plus a short tail for the record's
tail column): the store states the truncation; memory never grows.
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


class _StreamBuffer:
    __slots__ = ("capture", "dropped", "parts", "size")

    def __init__(self, secrets: Sequence[str]) -> None:
        self.capture = OutputCapture(0, secrets)
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0


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
        self._sent = 0
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
        size = len(text.encode("utf-8")) if not text.isascii() else len(text)
        if self._sent + self._pending() < self._cap:
            buf.parts.append(text)
            buf.size += size
        else:
            # Over the cap: keep only what the tail column can show.
            kept = text[-self._tail :]
            kept_size = len(kept.encode("utf-8"))
            buf.dropped += size - kept_size
            buf.parts.append(kept)
            buf.size += kept_size
            joined = "".join(buf.parts)
            if len(joined) > self._tail:
                cut = joined[: len(joined) - self._tail]
                buf.dropped += len(cut.encode("utf-8"))
                joined = joined[-self._tail :]
                buf.size = len(joined.encode("utf-8"))
            buf.parts = [joined]
        if self._pending() >= self._flush_bytes:
            self._wake.set()

    def _pending(self) -> int:
        return sum(b.size for b in self._streams.values())

    async def _flusher(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            for stream, buf in self._streams.items():
                if not buf.parts and not buf.dropped:
                    continue
                text, dropped = "".join(buf.parts), buf.dropped
                buf.parts, buf.size, buf.dropped = [], 0, 0
                self._sent += len(text.encode("utf-8"))
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

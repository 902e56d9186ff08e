"""One run's output on its way out of a transport: masked, bounded, events extracted.

:class:`RunCapture` is what every face puts between a transport's sink and
whoever records the run: each stream passes through an
:class:`~muster.domain.output.OutputCapture` (masking the plan's secrets,
``@@`` events from stdout), and only masked text is forwarded. It keeps at
most ``keep_bytes`` per stream in memory (the in-memory dispatcher keeps the
output there; the worker keeps none, its store does).

:class:`OutputSpool` is for a recorder whose writes are slow (a database
reached from a thread): masked text waits in a small buffer flushed every
``flush_seconds`` or past ``flush_bytes``, in order. Once ``cap_bytes`` of the
run (both streams together) were passed on, later text is only counted, plus
a short tail: the writer is told how many bytes it did not get, and memory
never grows with the output.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from muster.domain.output import OutputCapture
from muster.transports.base import Stream

__all__ = ["OutputSpool", "RunCapture", "SpoolWriter"]

#: (stream, text, dropped_bytes) -> is the run still ours?
SpoolWriter = Callable[[str, str, int], Awaitable[bool]]


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class RunCapture:
    """Both streams of one run; ``forward`` hears masked text only, in order."""

    __slots__ = ("_forward", "stderr", "stdout")

    def __init__(
        self, secrets: Sequence[str], keep_bytes: int, forward: Callable[[Stream, str], None]
    ) -> None:
        self.stdout = OutputCapture(keep_bytes, secrets)
        self.stderr = OutputCapture(keep_bytes, secrets, extract_events=False)
        self._forward = forward

    def sink(self, stream: Stream, text: str) -> None:
        """The transport's OutputSink."""
        if stream == Stream.STDOUT:
            masked = self.stdout.feed(text)
            if masked:
                self._forward(Stream.STDOUT, masked)
        else:
            masked = self.stderr.feed(text)
            if masked:
                self._forward(Stream.STDERR, masked)

    def close(self) -> None:
        """Forward what a capture held back to mask a secret; idempotent."""
        for stream, capture in ((Stream.STDOUT, self.stdout), (Stream.STDERR, self.stderr)):
            tail = capture.close()
            if tail:
                self._forward(stream, tail)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The ``@@`` events printed on stdout, in order."""
        return self.stdout.events


class _Buffer:
    __slots__ = ("over", "over_bytes", "over_mode", "parts", "size")

    def __init__(self) -> None:
        #: Text within the cap, to be written.
        self.parts: list[str] = []
        self.size = 0
        #: Past the cap: only the latest ``tail`` characters, and a byte count.
        self.over_mode = False
        self.over = ""
        self.over_bytes = 0


class OutputSpool:
    """Buffers one run's masked output and writes it in order through ``writer``."""

    def __init__(
        self,
        writer: SpoolWriter,
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
        self._buffers = {s: _Buffer() for s in Stream}
        #: Bytes within the cap, written or pending, both streams together.
        self._budget_used = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._lock = asyncio.Lock()
        #: Set when the writer refused: the run is no longer ours.
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._flusher())

    def take(self, stream: Stream, text: str) -> None:
        """Queue masked ``text``; never blocks, never grows past the cap plus a tail."""
        if not text:
            return
        buf = self._buffers[Stream(stream)]
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
            for stream, buf in self._buffers.items():
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
        """Write everything still buffered; idempotent."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

"""Group commit: many runs' store writes in one call, with no timer.

Callers ``await submit(item)``; while one batch is in the store, the next
gathers, so a busy worker commits many runs at once and an idle one commits
each at once. Every caller learns whether its own item won its
compare-and-set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Batcher"]

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[set[str]]],
        key: Callable[[T], str],
        *,
        max_batch: int = 256,
    ) -> None:
        self._write = write
        self._key = key
        self._max = max_batch
        self._pending: list[tuple[T, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> bool:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                won = await self._write([item for item, _ in batch])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for item, fut in batch:
                if not fut.done():
                    fut.set_result(self._key(item) in won)

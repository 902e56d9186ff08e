"""Throttling inside a rollout wave, host by host.

A wave runs one workflow instance per host, so the workflow's throttle
(seed 004's ``max_parallel_servers``, ``max_parallel_per_group``,
``delay_between_servers``) bounds hosts in progress: at most ``forks`` hosts
at once, at most ``per_group`` of any group (a host in several groups takes a
slot in each), host starts ``delay`` seconds apart. Slots are granted in the
order hosts asked, except that a host whose group is full lets the next one by.
A paused rollout starts no host (``resumed`` is cleared).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from muster.domain.hosts import Host

__all__ = ["HostLimiter"]


class HostLimiter:
    def __init__(
        self,
        forks: int,
        per_group: int | None,
        delay: float,
        sleep: Callable[[float], Awaitable[None]],
        resumed: asyncio.Event,
    ) -> None:
        self.forks = max(1, forks)
        self.per_group = per_group
        self.delay = delay
        self._sleep = sleep
        self._resumed = resumed
        self._running = 0
        self._groups: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._start_lock = asyncio.Lock()
        self._started = 0

    def _fits(self, host: Host) -> bool:
        if self._running >= self.forks:
            return False
        if self.per_group is None:
            return True
        return all(self._groups.get(g, 0) < self.per_group for g in set(host.groups))

    @contextlib.asynccontextmanager
    async def slot(self, host: Host) -> AsyncIterator[None]:
        """Hold a slot for ``host`` while the body runs."""
        await self._resumed.wait()
        async with self._changed:
            await self._changed.wait_for(lambda: self._fits(host))
            self._running += 1
            for g in set(host.groups):
                self._groups[g] = self._groups.get(g, 0) + 1
        try:
            if self.delay:
                async with self._start_lock:
                    if self._started:
                        await self._sleep(self.delay)
                    self._started += 1
            await self._resumed.wait()
            yield
        finally:
            async with self._changed:
                self._running -= 1
                for g in set(host.groups):
                    self._groups[g] -= 1
                self._changed.notify_all()

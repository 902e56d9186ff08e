"""Store writes a worker must not give up on at the first busy database.

A run's start and its outcome are compare-and-set writes on the claim's
(owner, epoch), so writing one again is safe: if the first try did commit, the
second finds the run no longer running and changes nothing. A database that is
busy for a moment (SQLite's lock, a PostgreSQL lock or pool timeout under a
burst of finishes) must therefore delay the write, not turn a host that
succeeded into a failed one. The run stays held meanwhile, so its heartbeats
keep its lease; past the patience the error goes up and the run's lease is
left to lapse, which the reaper settles truthfully.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from muster.errors import StoreUnavailable

__all__ = ["retry_unavailable"]

T = TypeVar("T")
_log = logging.getLogger("muster.worker.runner")

#: First pause after a busy store, doubled each time up to :data:`_MAX_PAUSE`.
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 2.0


async def retry_unavailable(call: Callable[[], Awaitable[T]], *, patience: float, what: str) -> T:
    """``await call()``, again after a pause while it raises StoreUnavailable, for
    up to ``patience`` seconds in all."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    pause = _FIRST_PAUSE
    while True:
        try:
            return await call()
        except StoreUnavailable as exc:
            if loop.time() + pause > deadline:
                raise
            _log.warning("%s: %s; trying again in %.2fs", what, exc, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)

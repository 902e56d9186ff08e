"""The one reaper loop: expire leases, time out overdue runs, fail unclaimed ones, act on
maintenance windows that closed (muster.store.windows), and
pass approval deadlines into rejection.

Every process that holds a store and may outlive a dead peer runs it: the
server's lifespan (``muster serve``) and ``muster worker``. Each pass is the
store's :meth:`~muster.store.base.Store.reap`, a compare-and-set on every
run it touches, so any number of reapers (and late workers) can run at
once and only one wins each change; then, when given, the approvals'
:meth:`~muster.services.approvals.Approvals.sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from muster.store.base import ReapReport, Store

if TYPE_CHECKING:
    from muster.services.approvals import Approvals

__all__ = ["Reaper", "reap_interval"]

_log = logging.getLogger(__name__)


def reap_interval(lease_seconds: float) -> float:
    """How often to reap: three times per lease, so a dead worker's runs move on within
    about one lease period; at most every 0.5 s, at least every 5 s."""
    return min(5.0, max(0.5, lease_seconds / 3))


class Reaper:
    """Runs :meth:`tick` every ``interval`` seconds from :meth:`start` until :meth:`stop`.

    A failed pass is logged and the loop goes on: a database that is briefly
    unreachable must not end recovery for the life of the process.
    """

    def __init__(
        self,
        store: Store,
        *,
        interval: float,
        approvals: Approvals | None = None,
        name: str = "muster-reaper",
    ) -> None:
        if interval <= 0:
            raise ValueError("the reaper's interval must be positive")
        self.store = store
        self.interval = interval
        self.approvals = approvals
        self.name = name
        self.passes = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def tick(self) -> ReapReport | None:
        """One pass (blocking: run it in a thread); ``None`` when reaping failed."""
        report: ReapReport | None = None
        try:
            report = self.store.reap()
            if report.total:
                _log.info("%s: %s", self.name, report)
        except Exception:
            _log.exception("%s: reap failed", self.name)
        try:
            swept = self.store.sweep_windows()
            if swept.deferred or swept.stopping:
                _log.info("%s: maintenance windows closed: %s", self.name, swept)
        except Exception:
            _log.exception("%s: window sweep failed", self.name)
        if self.approvals is not None:
            try:
                changed = self.approvals.sync()
                if changed:
                    _log.info("%s: %d approval requests settled or opened", self.name, changed)
            except Exception:
                _log.exception("%s: approval upkeep failed", self.name)
        self.passes += 1
        return report

    async def run(self) -> None:
        """Pass, then wait ``interval`` (or until :meth:`stop`), until stopped."""
        while not self._stop.is_set():
            await asyncio.to_thread(self.tick)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def start(self) -> asyncio.Task[None]:
        """Run the loop as a task of the running event loop (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)
        return self._task

    async def stop(self, timeout: float = 10.0) -> None:
        """End the loop after the pass in progress, waiting at most ``timeout`` for it
        (a pass stuck on an unreachable database is abandoned, not awaited)."""
        self._stop.set()
        task = self._task
        if task is None:
            return
        await asyncio.wait({task}, timeout=timeout)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

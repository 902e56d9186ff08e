"""A worker's presence: its row in the store and the drain flag it follows.

The worker registers a row in the store's ``workers`` table when it starts
and, with every heartbeat, writes its state (``running``, ``draining`` while
it still holds runs after a drain, ``drained`` once it holds none) and reads
back the drain flag. That flag is the one truth: an operator drains any
worker of the fleet by setting it (the API, the console), and the worker
follows at its next heartbeat. A local ``drain()``/``resume()`` (SIGUSR1,
SIGUSR2) takes effect at once and is written to the flag with the next
report. A clean end writes ``stopped``; a worker that dies writes nothing and
is read as ``lost`` once its heartbeat is older than its lease.

Kept apart from the claiming and running of host runs (:mod:`.runner`): the
two meet only in the worker's state (drained or not, how many runs held) and
in the main loop's wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from muster.domain.workers import WorkerState
from muster.errors import NotFoundError
from muster.store.base import Store
from muster.store.worker_records import WorkerRecord

__all__ = ["Presence"]

T = TypeVar("T")
_log = logging.getLogger("muster.worker.runner")


class Presence:
    """One worker's row and drain flag; see the module docstring."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        *,
        lease_seconds: float,
        call: Callable[..., Awaitable[Any]],
        state: Callable[[], WorkerState],
        wake: Callable[[], None],
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self._call = call
        self._state = state
        self._wake = wake
        #: Claim nothing new while set.
        self.draining = False
        #: A local drain (True) or resume (False) not yet written to the store's flag.
        self.pending: bool | None = None
        #: The state changed in a way a listing should see before the next heartbeat.
        self.due = False
        self._reporting = asyncio.Lock()

    def drain(self) -> None:
        self.draining = True
        self.pending = True
        self._changed()

    def resume(self) -> None:
        self.draining = False
        self.pending = False
        self._changed()

    def apply(self, requested: bool) -> None:
        """Follow the store's flag (read back, or written by the server itself)."""
        self.pending = None
        if requested != self.draining:
            self.draining = requested
            self._changed()

    def _changed(self) -> None:
        self.due = True
        self._wake()

    async def register(self) -> WorkerRecord | None:
        try:
            rec: WorkerRecord = await self._call(
                self.store.register_worker,
                self.worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                lease_seconds=self.lease_seconds,
            )
        except Exception:
            _log.exception(
                "worker %s: registering failed; retrying at the next heartbeat", self.worker_id
            )
            return None
        if self.pending is None:
            self.apply(rec.drain_requested)
        return rec

    async def report(self) -> None:
        """Write this worker's state and follow the drain flag read back with it.

        One report at a time (the heartbeat, the main loop and tests all call it), so a
        state computed before a drain changed can never land after the new one."""
        async with self._reporting:
            await self._report()

    async def _report(self) -> None:
        try:
            pending = self.pending
            if pending is not None:
                ask = self.store.request_drain if pending else self.store.request_resume
                try:
                    await self._call(ask, self.worker_id, "signal")
                except NotFoundError:
                    await self.register()
                    await self._call(ask, self.worker_id, "signal")
                if self.pending is pending:
                    self.pending = None
            rec: WorkerRecord | None = await self._call(
                self.store.report_worker, self.worker_id, self._state()
            )
        except Exception:
            _log.exception("worker %s: reporting its state failed", self.worker_id)
            return
        if rec is None:
            # The row is gone (pruned, or registering failed at start): make it again.
            rec = await self.register()
            if rec is None:
                return
        if rec.drain_requested != self.draining and self.pending is None:
            self.apply(rec.drain_requested)
            with contextlib.suppress(Exception):
                await self._call(self.store.report_worker, self.worker_id, self._state())

    async def report_stopped(self) -> None:
        try:
            await self._call(self.store.report_worker, self.worker_id, WorkerState.STOPPED)
        except Exception:
            _log.exception("worker %s: recording its stop failed", self.worker_id)

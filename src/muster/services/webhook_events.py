"""Execution and host-run state changes, written to the webhook outbox.

Each watched execution is followed on its notifier key (a wake-up per
change; a one-second safety net; reads throttled), and every change seen
becomes ``host_run.<state>`` or ``execution.<status>``, written to the
outbox (:mod:`muster.store.outbox`) before it counts as seen: if the write
fails, the next read writes it. Payloads carry ids, states and exit codes,
never parameter values, so no secret can leave in one.

Each event has a key naming the change itself (the run, its epoch and
state; the execution, its attempts and status), so the same change seen
again (after a restart, by a second server, by the sweep) is the same row.
Changes between two reads may merge (a run seen ``queued`` then
``succeeded`` has no ``running`` event); terminal states are always
written, because nothing is lost on the way to them:

- at start, every unfinished execution is followed again;
- the sweep reads executions finished since the stored watermark (less
  a margin for commits in flight and clocks that differ) and writes their
  final events; the watermark moves once they are written. So an execution
  that finished while no server watched it (the server was down, killed
  between a commit and its write, or another process ran it) is reported
  when a server next sweeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from muster.domain.states import ExecutionStatus
from muster.errors import NotFoundError
from muster.store.base import ExecutionRecord, HostRunRecord, Store
from muster.store.notify import Notifier, execution_key
from muster.store.outbox import WebhookEvent, WebhookStore

__all__ = [
    "ExecutionWatcher",
    "WatchedStore",
    "execution_event",
    "execution_payload",
    "host_run_event",
    "host_run_payload",
]

_log = logging.getLogger(__name__)
_UNFINISHED = (ExecutionStatus.PENDING_APPROVAL, ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


class WatchedStore(Store, WebhookStore, Protocol):
    """What the watcher reads (executions) and writes (the outbox)."""


def execution_payload(e: ExecutionRecord) -> dict[str, Any]:
    return {
        "execution_id": e.id,
        "status": e.status.value,
        "kind": e.kind.value,
        "description": e.description,
        "script_id": e.script_id,
        "script_version": e.script_version,
        "content_hash": e.content_hash,
        "counts": {k: v for k, v in e.counts.items() if v},
        "created_at": e.created_at.isoformat(),
        "finished_at": e.finished_at.isoformat() if e.finished_at else None,
    }


def host_run_payload(r: HostRunRecord) -> dict[str, Any]:
    return {
        "execution_id": r.execution_id,
        "host_run_id": r.id,
        "host": r.host_name,
        "state": r.state.value,
        "attempt": r.attempt,
        "exit_code": r.exit_code,
        "reason": r.reason,
        "message": r.message,
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
    }


def _body(name: str, payload: dict[str, Any]) -> str:
    return json.dumps(
        {"event": name, **payload}, sort_keys=True, separators=(",", ":"), default=str
    )


def host_run_event(r: HostRunRecord) -> WebhookEvent:
    """A run's state; the epoch tells a run started again after a requeue from the first."""
    name = f"host_run.{r.state.value}"
    return WebhookEvent(f"{name}:{r.id}:{r.epoch}", name, _body(name, host_run_payload(r)))


def execution_event(e: ExecutionRecord) -> WebhookEvent:
    """An execution's status; its runs' attempts tell a retried execution's second
    ``succeeded`` from its first."""
    name = f"execution.{e.status.value}"
    attempts = sum(r.attempt for r in e.host_runs)
    return WebhookEvent(f"{name}:{e.id}:{attempts}", name, _body(name, execution_payload(e)))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ExecutionWatcher:
    """Writes the webhook events of executions as they change (see the module docstring)."""

    def __init__(
        self,
        store: WatchedStore,
        notifier: Notifier,
        *,
        min_interval: float = 0.2,
        fallback: float = 1.0,
        sweep_interval: float = 10.0,
        sweep_margin: float = 120.0,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._min_interval = min_interval
        self._fallback = fallback
        self._sweep_interval = sweep_interval
        self._margin = dt.timedelta(seconds=sweep_margin)
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None
        #: Executions the sweep wrote, with the finish it saw (dropped past the margin).
        self._swept: dict[str, dt.datetime] = {}

    async def start(self) -> None:
        """Follow every unfinished execution; report what finished while no one watched."""
        self._loop = asyncio.get_running_loop()
        for status in _UNFINISHED:
            offset = 0
            while True:
                page = await asyncio.to_thread(
                    self._store.list_executions, status=status, limit=500, offset=offset
                )
                for e in page.items:
                    self._spawn(e.id)
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    break
        try:
            await self.sweep()
        except Exception:
            _log.exception("webhook sweep failed; trying again in %ss", self._sweep_interval)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="muster-webhook-sweep")

    def watch(self, execution_id: str) -> None:
        """Follow an execution; callable from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._spawn, execution_id)

    def _spawn(self, execution_id: str) -> None:
        if execution_id not in self._tasks:
            task = asyncio.create_task(self._follow(execution_id))
            self._tasks[execution_id] = task
            task.add_done_callback(lambda _t: self._tasks.pop(execution_id, None))

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def sweep(self) -> int:
        """Write the events of executions finished since the watermark; move it. Returns
        how many executions were read."""
        started = self._clock()
        mark = await asyncio.to_thread(self._store.webhook_watermark)
        if mark is None:  # first run on this database: nothing before now was promised
            await asyncio.to_thread(self._store.advance_webhook_watermark, started)
            return 0
        since, after, read = mark - self._margin, "", 0
        while True:
            page = await asyncio.to_thread(
                self._store.executions_finished_since, since, after_id=after
            )
            for finished_at, execution_id in page:
                if self._swept.get(execution_id) == finished_at:
                    continue
                with contextlib.suppress(NotFoundError):  # deleted since: nothing to say
                    record = await asyncio.to_thread(self._store.get_execution, execution_id)
                    read += 1
                    if record.status.terminal:
                        await self._write(_events(record))
                    else:  # retried since it finished: its new run is followed
                        self._spawn(execution_id)
                self._swept[execution_id] = finished_at
            if not page:
                break
            since, after = page[-1]
        await asyncio.to_thread(self._store.advance_webhook_watermark, started)
        horizon = started - self._margin
        self._swept = {k: v for k, v in self._swept.items() if v >= horizon}
        return read

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except Exception:
                _log.exception("webhook sweep failed; trying again in %ss", self._sweep_interval)

    async def _write(self, events: list[WebhookEvent]) -> None:
        if events:
            await asyncio.to_thread(self._store.enqueue_webhook_events, events)

    async def _follow(self, execution_id: str) -> None:
        seen: set[str] = set()
        try:
            with self._notifier.subscribe(execution_key(execution_id)) as sub:
                while True:
                    try:
                        record = await asyncio.to_thread(self._store.get_execution, execution_id)
                    except NotFoundError:
                        return
                    fresh = [e for e in _events(record) if e.key not in seen]
                    try:
                        await self._write(fresh)
                    except Exception:
                        _log.exception("cannot write webhook events of %s; retrying", execution_id)
                    else:
                        seen.update(e.key for e in fresh)
                        if record.status.terminal:
                            return
                    await sub.wait(self._fallback)
                    await asyncio.sleep(self._min_interval)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("stopped watching execution %s", execution_id)


def _events(record: ExecutionRecord) -> list[WebhookEvent]:
    """Every run's current state, then the execution's status: the order they happened."""
    return [*(host_run_event(r) for r in record.host_runs), execution_event(record)]

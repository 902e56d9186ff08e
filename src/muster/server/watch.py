"""Execution and host-run state changes as webhook events.

Each watched execution is followed on its notifier key (no polling loop;
one-second safety net, reads throttled), and every change seen becomes
``host_run.<state>`` or ``execution.<status>``. Payloads carry ids, states
and exit codes, never parameter values, so no secret can leave in one.
Executions still unfinished when the server starts are watched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool

from muster.domain.states import ExecutionStatus
from muster.errors import NotFoundError
from muster.store.base import ExecutionRecord, HostRunRecord, Store
from muster.store.notify import Notifier, execution_key

__all__ = ["ExecutionWatcher", "execution_payload", "host_run_payload"]

_log = logging.getLogger(__name__)
_UNFINISHED = (ExecutionStatus.PENDING_APPROVAL, ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


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


class ExecutionWatcher:
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        publish: Callable[[str, Mapping[str, Any]], None],
        *,
        min_interval: float = 0.2,
        fallback: float = 1.0,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._publish = publish
        self._min_interval = min_interval
        self._fallback = fallback
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for status in _UNFINISHED:
            offset = 0
            while True:
                page = await run_in_threadpool(
                    partial(self._store.list_executions, status=status, limit=500, offset=offset)
                )
                for e in page.items:
                    self._spawn(e.id)
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    break

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
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, execution_id: str) -> None:
        states: dict[str, tuple[str, int]] = {}
        status: str | None = None
        try:
            with self._notifier.subscribe(execution_key(execution_id)) as sub:
                while True:
                    try:
                        record = await run_in_threadpool(self._store.get_execution, execution_id)
                    except NotFoundError:
                        return
                    for run in record.host_runs:
                        key = (run.state.value, run.attempt)
                        if states.get(run.id) != key:
                            states[run.id] = key
                            self._publish(f"host_run.{run.state.value}", host_run_payload(run))
                    if record.status.value != status:
                        status = record.status.value
                        self._publish(f"execution.{status}", execution_payload(record))
                    if record.status.terminal:
                        return
                    await sub.wait(self._fallback)
                    await asyncio.sleep(self._min_interval)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("stopped watching execution %s", execution_id)

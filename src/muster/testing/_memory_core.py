"""The in-memory store's state, its one lock, and the compare-and-set every change takes.

:class:`MemoryCore` holds what the store holds and the few rules every part
of :class:`~muster.testing.InMemoryStore` builds on: an operation is one
``_tx`` under the lock (its wake-ups sent once it is done), a host-run state
change is one ``_move`` (checked, compared, counted), and an execution's
status is moved with its counters in the same step.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from muster.domain.approvals import ApprovalRequest
from muster.domain.states import HostRunState, check_transition, rollup
from muster.domain.windows import MaintenanceWindow
from muster.errors import NotFoundError
from muster.store.base import ExecutionRecord, HostRecord, OutputChunk
from muster.store.notify import Notifier, execution_key
from muster.store.worker_records import WorkerRecord
from muster.testing._memory_rows import ExecutionRow, RunRow, ScriptRow

__all__ = ["ANY_OWNER", "Changes", "MemoryCore", "new_id"]

S = HostRunState

#: Sentinel: the compare-and-set does not look at the owner.
ANY_OWNER: Final = object()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Changes:
    """The wake-up keys one operation sends when it is done."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[str] = []

    def notify(self, key: str) -> None:
        if key not in self.keys:
            self.keys.append(key)


class MemoryCore:
    """State, lock and compare-and-set shared by the parts of ``InMemoryStore``."""

    def __init__(
        self,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        notifier: Notifier | None = None,
        output_cap_bytes: int = 1024 * 1024,
        tail_chars: int = 4096,
        queued_timeout: float = 30 * 60.0,
    ) -> None:
        self.clock = clock
        self.notifier = notifier or Notifier()
        self.output_cap_bytes = output_cap_bytes
        self.tail_chars = tail_chars
        self.queued_timeout = queued_timeout
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything stored (between tests sharing one store)."""
        with self._lock:
            self._scripts: dict[str, ScriptRow] = {}
            self._hosts: dict[str, HostRecord] = {}
            self._executions: dict[str, ExecutionRow] = {}
            self._runs: dict[str, RunRow] = {}
            #: Ids of the runs in each live state (claims and the reaper read only these).
            self._live: dict[HostRunState, dict[str, RunRow]] = {S.QUEUED: {}, S.RUNNING: {}}
            self._chunks_by_run: dict[str, list[OutputChunk]] = {}
            self._chunks_by_execution: dict[str, list[OutputChunk]] = {}
            self._chunk_ids = itertools.count(1)
            #: Approval requests written with a retry, per execution, oldest first.
            self._approvals: dict[str, list[tuple[ApprovalRequest, str | None]]] = {}
            #: Maintenance windows (``_memory_windows``): by id, with when they were made;
            #: the hold of each run started under one; executions allowed outside them.
            self._mwindows: dict[str, tuple[MaintenanceWindow, dt.datetime]] = {}
            self._holds: dict[str, Any] = {}
            self._overrides: dict[str, tuple[str | None, dt.datetime]] = {}
            #: Worker processes by id (``_memory_workers``).
            self._workers: dict[str, WorkerRecord] = {}

    def close(self) -> None:
        self.notifier.close()

    @contextmanager
    def _tx(self, *keys: str) -> Iterator[Changes]:
        """One atomic operation; its keys wake waiters once it is done (not if it raised)."""
        changes = Changes()
        for key in keys:
            changes.notify(key)
        with self._lock:
            yield changes
        self.notifier.publish_many(changes.keys)

    def _move(
        self,
        changes: Changes,
        run: RunRow,
        old: HostRunState,
        new: HostRunState,
        *,
        owner: object = ANY_OWNER,
        epoch: int | None = None,
        when: bool = True,
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """Compare-and-set ``old -> new`` on (state, owner, epoch) and ``when``; if won,
        set ``values`` too and return True.

        Raises StateTransitionError for an illegal move before looking at the run.
        """
        check_transition(old, new)
        if (
            run.state is not old
            or (owner is not ANY_OWNER and run.owner != owner)
            or (epoch is not None and run.epoch != epoch)
            or not when
        ):
            return False
        for name, value in (values or {}).items():
            setattr(run, name, value)
        self._count(run, -1)
        self._live.get(old, {}).pop(run.id, None)
        run.state = new
        self._count(run, +1)
        self._index(run)
        changes.notify(execution_key(run.execution_id))
        return True

    def _index(self, run: RunRow) -> None:
        live = self._live.get(run.state)
        if live is not None:
            live[run.id] = run

    def _queued(self) -> list[RunRow]:
        return list(self._live[S.QUEUED].values())

    def _running(self) -> list[RunRow]:
        return list(self._live[S.RUNNING].values())

    def _count(self, run: RunRow, n: int) -> None:
        """Move the execution's counter of ``run.state`` by ``n`` and its status with it.

        Superseded attempts are history: they are not counted. The status is
        ``rollup`` of one of each state present, which equals ``rollup`` of
        them all (it asks only which states are present and whether one state
        is all of them), so it costs the same for ten hosts or ten thousand.
        """
        if run.superseded:
            return
        ex = self._executions[run.execution_id]
        ex.counts[run.state.value] += n
        ex.status = rollup(S(s) for s, k in ex.counts.items() if k)
        if not ex.status.terminal:
            ex.finished_at = None
        elif ex.finished_at is None:
            ex.finished_at = self.clock()

    def _supersede(self, run: RunRow) -> None:
        self._count(run, -1)
        run.superseded = True

    def _add_run(self, changes: Changes, run: RunRow) -> None:
        self._runs[run.id] = run
        self._executions[run.execution_id].run_ids.append(run.id)
        self._count(run, +1)
        self._index(run)
        changes.notify(execution_key(run.execution_id))

    def _next_attempt(
        self, changes: Changes, old: RunRow, now: dt.datetime, why: str, state: HostRunState
    ) -> RunRow:
        run = RunRow(
            id=new_id(),
            execution_id=old.execution_id,
            host_id=old.host_id,
            host_name=old.host_name,
            state=state,
            attempt=old.attempt + 1,
            retry_of=old.id,
            priority=old.priority,
            timeout=old.timeout,
            queued_at=now,
            available_at=now,
            waiting_reason=why,
            group_key=old.group_key,
            throttled=old.throttled,
        )
        self._add_run(changes, run)
        return run

    def _execution(self, execution_id: str) -> ExecutionRow:
        ex = self._executions.get(execution_id)
        if ex is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        return ex

    def _record(
        self, execution_id: str, *, with_runs: bool, history: bool = False
    ) -> ExecutionRecord:
        ex = self._execution(execution_id)
        if not with_runs:
            return ex.record()
        runs = [self._runs[i] for i in ex.run_ids]
        if not history:
            runs = [r for r in runs if not r.superseded]
        runs.sort(key=lambda r: (r.host_name, r.attempt))
        return ex.record(tuple(r.record() for r in runs))

    def _run(self, run_id: str) -> RunRow:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFoundError(f"no host run {run_id!r}")
        return run

    def _current(self, execution_id: str, run_id: str | None = None) -> list[RunRow]:
        ex = self._execution(execution_id)
        runs = [self._runs[i] for i in ex.run_ids]
        return [r for r in runs if not r.superseded and (run_id is None or r.id == run_id)]

"""Worker presence in memory, as ``store/worker_ops.py`` keeps it: one record per
worker id, the drain flag read back with each heartbeat, runs held counted from
the queue's running runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from muster.domain.states import HostRunState
from muster.domain.workers import WorkerState
from muster.errors import NotFoundError
from muster.store.worker_records import WorkerRecord, check_report, drain_refusal
from muster.testing._memory_core import MemoryCore

__all__ = ["WorkerOps"]


class WorkerOps(MemoryCore):
    """The :class:`~muster.store.worker_records.WorkerStore` area of ``InMemoryStore``."""

    def _held_by(self) -> Counter[str]:
        return Counter(
            r.owner for r in self._live[HostRunState.RUNNING].values() if r.owner is not None
        )

    def _with_held(self, rec: WorkerRecord) -> WorkerRecord:
        return replace(rec, runs_held=self._held_by()[rec.id])

    def _must_worker(self, worker_id: str) -> WorkerRecord:
        rec = self._workers.get(worker_id)
        if rec is None:
            raise NotFoundError(f"no worker {worker_id!r}")
        return rec

    def register_worker(
        self, worker_id: str, *, hostname: str, pid: int, lease_seconds: float
    ) -> WorkerRecord:
        check_report(worker_id, WorkerState.RUNNING)
        with self._tx():
            now = self.clock()
            old = self._workers.get(worker_id)
            rec = WorkerRecord(
                id=worker_id,
                hostname=hostname[:253],
                pid=pid,
                started_at=now,
                last_heartbeat=now,
                lease_seconds=lease_seconds,
                state=WorkerState.RUNNING,
                drain_requested=old.drain_requested if old else False,
                drain_requested_at=old.drain_requested_at if old else None,
                drain_requested_by=old.drain_requested_by if old else None,
                stopped_at=None,
            )
            self._workers[worker_id] = rec
            return self._with_held(rec)

    def report_worker(self, worker_id: str, state: WorkerState) -> WorkerRecord | None:
        check_report(worker_id, state)
        with self._tx():
            old = self._workers.get(worker_id)
            if old is None:
                return None
            now = self.clock()
            rec = replace(
                old,
                state=state,
                last_heartbeat=now,
                stopped_at=now if state is WorkerState.STOPPED else old.stopped_at,
            )
            self._workers[worker_id] = rec
            return self._with_held(rec)

    def request_drain(self, worker_id: str, by: str | None) -> WorkerRecord:
        with self._tx():
            old = self._must_worker(worker_id)
            drain_refusal(old)
            rec = replace(
                old, drain_requested=True, drain_requested_at=self.clock(), drain_requested_by=by
            )
            self._workers[worker_id] = rec
            return self._with_held(rec)

    def request_resume(self, worker_id: str, by: str | None) -> WorkerRecord:
        with self._tx():
            old = self._must_worker(worker_id)
            rec = replace(
                old, drain_requested=False, drain_requested_at=None, drain_requested_by=None
            )
            self._workers[worker_id] = rec
            return self._with_held(rec)

    def get_worker(self, worker_id: str) -> WorkerRecord:
        with self._tx():
            return self._with_held(self._must_worker(worker_id))

    def list_workers(self) -> list[WorkerRecord]:
        with self._tx():
            held = self._held_by()
            ordered = sorted(
                self._workers.values(), key=lambda r: (-r.last_heartbeat.timestamp(), r.id)
            )
            return [replace(r, runs_held=held[r.id]) for r in ordered]

"""Worker presence over SQLAlchemy (see :mod:`muster.store.worker_records` for the contract).

A heartbeat is one ``UPDATE`` and one read of the same row (the drain flag
comes back with it); the runs a worker holds are counted from ``host_runs``
(``owner`` and ``running``) when rows are read, so the count is the queue's
own truth rather than what the worker last said.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, func, insert, select, update

from muster.domain.states import HostRunState
from muster.domain.workers import WorkerState
from muster.errors import NotFoundError
from muster.store._core import StoreCore
from muster.store.tables import host_runs
from muster.store.worker_records import WorkerRecord, check_report, drain_refusal
from muster.store.worker_tables import workers

__all__ = ["WorkerOps"]

_w = workers


def _record(r: RowMapping, held: int) -> WorkerRecord:
    return WorkerRecord(
        id=r["id"],
        hostname=r["hostname"],
        pid=r["pid"],
        started_at=r["started_at"],
        last_heartbeat=r["last_heartbeat"],
        lease_seconds=r["lease_seconds"],
        state=WorkerState(r["state"]),
        drain_requested=bool(r["drain_requested"]),
        drain_requested_at=r["drain_requested_at"],
        drain_requested_by=r["drain_requested_by"],
        stopped_at=r["stopped_at"],
        runs_held=held,
    )


def _held(conn: Connection, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    rows = conn.execute(
        select(host_runs.c.owner, func.count())
        .where(host_runs.c.owner.in_(ids), host_runs.c.state == HostRunState.RUNNING.value)
        .group_by(host_runs.c.owner)
    )
    return {owner: int(n) for owner, n in rows}


def _one(conn: Connection, worker_id: str) -> WorkerRecord | None:
    row = conn.execute(select(_w).where(_w.c.id == worker_id)).mappings().first()
    if row is None:
        return None
    return _record(row, _held(conn, [worker_id]).get(worker_id, 0))


def _must(conn: Connection, worker_id: str) -> WorkerRecord:
    rec = _one(conn, worker_id)
    if rec is None:
        raise NotFoundError(f"no worker {worker_id!r}")
    return rec


class WorkerOps(StoreCore):
    """The :class:`~muster.store.worker_records.WorkerStore` area of ``SqlStore``."""

    def register_worker(
        self, worker_id: str, *, hostname: str, pid: int, lease_seconds: float
    ) -> WorkerRecord:
        check_report(worker_id, WorkerState.RUNNING)
        now = self.clock()
        values: dict[str, Any] = {
            "hostname": hostname[:253],
            "pid": pid,
            "started_at": now,
            "last_heartbeat": now,
            "lease_seconds": lease_seconds,
            "state": WorkerState.RUNNING.value,
            "stopped_at": None,
        }
        with self._tx() as tx:
            changed = tx.conn.execute(update(_w).where(_w.c.id == worker_id).values(**values))
            if changed.rowcount == 0:
                tx.conn.execute(insert(_w).values(id=worker_id, drain_requested=False, **values))
            return _must(tx.conn, worker_id)

    def report_worker(self, worker_id: str, state: WorkerState) -> WorkerRecord | None:
        check_report(worker_id, state)
        now = self.clock()
        values: dict[str, Any] = {"state": state.value, "last_heartbeat": now}
        if state is WorkerState.STOPPED:
            values["stopped_at"] = now
        with self._tx() as tx:
            tx.conn.execute(update(_w).where(_w.c.id == worker_id).values(**values))
            return _one(tx.conn, worker_id)

    def request_drain(self, worker_id: str, by: str | None) -> WorkerRecord:
        with self._tx() as tx:
            drain_refusal(_must(tx.conn, worker_id))
            tx.conn.execute(
                update(_w)
                .where(_w.c.id == worker_id)
                .values(
                    drain_requested=True,
                    drain_requested_at=self.clock(),
                    drain_requested_by=by,
                )
            )
            return _must(tx.conn, worker_id)

    def request_resume(self, worker_id: str, by: str | None) -> WorkerRecord:
        with self._tx() as tx:
            _must(tx.conn, worker_id)
            tx.conn.execute(
                update(_w)
                .where(_w.c.id == worker_id)
                .values(drain_requested=False, drain_requested_at=None, drain_requested_by=None)
            )
            return _must(tx.conn, worker_id)

    def get_worker(self, worker_id: str) -> WorkerRecord:
        with self._read() as conn:
            return _must(conn, worker_id)

    def list_workers(self) -> list[WorkerRecord]:
        with self._read() as conn:
            rows = list(
                conn.execute(select(_w).order_by(_w.c.last_heartbeat.desc(), _w.c.id)).mappings()
            )
            held = _held(conn, [r["id"] for r in rows])
        return [_record(r, held.get(r["id"], 0)) for r in rows]

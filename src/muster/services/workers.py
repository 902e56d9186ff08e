"""The fleet of worker processes as a service: list them, drain and resume any of them.

A drain is a request written to the store (who, when); the worker follows it
at its next heartbeat, wherever it runs, and answers with its state
(``draining`` while it finishes what it holds, then ``drained``). Draining
and resuming need ``admin`` (the service checks it whatever the face
checked) and each leaves an audit record. A listing shows every worker ever
registered, a stale one as ``lost`` (see :func:`muster.domain.workers.observed_state`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from muster.domain.workers import WorkerState
from muster.errors import PermissionDeniedError
from muster.security.rbac import Permission
from muster.services.actor import Actor, AuditSink
from muster.store.worker_records import WorkerRecord, WorkerStore

__all__ = ["WorkerService", "WorkerView"]


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A worker as a listing shows it: its record and the state read from it now."""

    record: WorkerRecord
    state: WorkerState

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def may_drain(self) -> bool:
        """Drain is offered while no drain is asked and the worker has not stopped."""
        return not self.record.drain_requested and self.state is not WorkerState.STOPPED

    @property
    def may_resume(self) -> bool:
        return self.record.drain_requested


class WorkerService:
    """Worker presence over a store; drains and resumes are audited through ``audit``."""

    def __init__(
        self,
        store: WorkerStore,
        audit: AuditSink | None,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    def _view(self, rec: WorkerRecord) -> WorkerView:
        return WorkerView(rec, rec.observed(self.clock()))

    def workers(self) -> list[WorkerView]:
        now = self.clock()
        return [WorkerView(r, r.observed(now)) for r in self.store.list_workers()]

    def get(self, worker_id: str) -> WorkerView:
        return self._view(self.store.get_worker(worker_id))

    def drain(self, who: Actor, worker_id: str) -> WorkerView:
        """Ask ``worker_id`` to claim nothing new; what it holds finishes."""
        self._allowed(who, "draining")
        view = self._view(self.store.request_drain(worker_id, who.name))
        self._record(who, "worker.drain", view)
        return view

    def resume(self, who: Actor, worker_id: str) -> WorkerView:
        """Withdraw a drain: the worker claims again at its next heartbeat."""
        self._allowed(who, "resuming")
        view = self._view(self.store.request_resume(worker_id, who.name))
        self._record(who, "worker.resume", view)
        return view

    @staticmethod
    def _allowed(who: Actor, doing: str) -> None:
        if not who.can(Permission.ADMIN):
            raise PermissionDeniedError(f"{doing} a worker needs admin")

    def _record(self, who: Actor, action: str, view: WorkerView) -> None:
        if self.audit is None:
            return
        rec = view.record
        self.audit.record_audit(
            actor=who.name,
            action=action,
            target=f"worker:{rec.id}",
            address=who.address,
            details={
                "hostname": rec.hostname,
                "pid": rec.pid,
                "state": view.state.value,
                "runs_held": rec.runs_held,
            },
        )

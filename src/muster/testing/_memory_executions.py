"""Executions and seed 001's actions, in memory, as ``store/_executions.py`` does them.

Cancel applies to pending, queued and running host runs (a started one gets
``cancel_requested``: its worker kills it); retry to failed, timed-out and
lost ones (a new attempt; the old one is kept, superseded); delete only
when every host run is terminal. Refused actions raise ConflictError and
change nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from muster.domain.approvals import ApprovalRequest
from muster.domain.secret import MASK, Secret
from muster.domain.states import TERMINAL_STATES, ExecutionStatus, FailureReason, HostRunState
from muster.errors import ConflictError, ValidationError
from muster.store.base import (
    CANCELLABLE_STATES,
    RETRYABLE_STATES,
    WAITING_FOR_APPROVAL,
    WAITING_FOR_WORKER,
    ExecutionRecord,
    HostRunRecord,
    NewExecution,
    Page,
)
from muster.store.notify import QUEUE_KEY, execution_key
from muster.testing._memory_core import Changes, MemoryCore, new_id
from muster.testing._memory_rows import ExecutionRow, RunRow, as_json

__all__ = ["ExecutionOps"]

S = HostRunState


def _json_value(name: str, value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | int | float | bool) for v in value
    ):
        return list(value)
    raise ValidationError(
        f"value of {name!r} cannot be stored ({type(value).__name__})", field=name
    )


class ExecutionOps(MemoryCore):
    """Executions and their actions for ``InMemoryStore``."""

    def create_execution(self, new: NewExecution) -> ExecutionRecord:
        if not new.targets:
            raise ValidationError("an execution needs at least one host", field="host_ids")
        params: dict[str, Any] = {}
        secrets: dict[str, Secret] = {}
        for name, value in new.parameters.items():
            if isinstance(value, Secret):
                params[name] = MASK
                secrets[name] = value
            else:
                params[name] = _json_value(name, value)
        policy = as_json(dict(new.policy))
        execution_id = new_id()
        with self._tx(QUEUE_KEY, execution_key(execution_id)) as changes:
            now = self.clock()
            initial = S.PENDING_APPROVAL if new.requires_approval else S.QUEUED
            waiting = WAITING_FOR_APPROVAL if new.requires_approval else WAITING_FOR_WORKER
            ex = ExecutionRow(
                id=execution_id,
                kind=new.kind,
                job_type=new.job_type,
                description=new.description,
                script_id=new.script_id,
                script_version=new.script_version,
                content_hash=new.content_hash,
                command=new.command,
                shell=new.shell,
                timeout=new.timeout,
                idempotent=new.idempotent,
                parameters=params,
                secret_fields=tuple(sorted(secrets)),
                priority=new.priority,
                requested_by=new.requested_by,
                policy=policy,
                created_at=now,
                throttle=new.throttle,
                status=ExecutionStatus.QUEUED,
                secrets=secrets,
            )
            self._executions[execution_id] = ex
            for t in new.targets:
                skipped = t.skip_reason is not None
                self._add_run(
                    changes,
                    RunRow(
                        id=new_id(),
                        execution_id=execution_id,
                        host_id=t.host_id,
                        host_name=t.host_name,
                        state=S.SKIPPED if skipped else initial,
                        priority=new.priority,
                        timeout=new.timeout,
                        queued_at=now,
                        available_at=now,
                        finished_at=now if skipped else None,
                        message=t.skip_reason,
                        waiting_reason=None if skipped else waiting,
                        group_key=t.group_key,
                        throttled=new.throttle.limited,
                    ),
                )
            return self._record(execution_id, with_runs=True)

    def get_execution(self, execution_id: str, *, history: bool = False) -> ExecutionRecord:
        """The execution with its current host runs (every attempt with ``history``)."""
        with self._lock:
            return self._record(execution_id, with_runs=True, history=history)

    def list_executions(
        self,
        *,
        status: ExecutionStatus | None = None,
        script_id: str | Sequence[str] | None = None,
        host_id: str | Sequence[str] | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[ExecutionRecord]:
        wanted = None if status is None else ExecutionStatus(status)
        scripts = None if script_id is None else _keys(script_id)
        hosts = None if host_id is None else _keys(host_id)
        with self._lock:
            rows = [
                ex
                for ex in self._executions.values()
                if (wanted is None or ex.status is wanted)
                and (scripts is None or ex.script_id in scripts)
                and (since is None or ex.created_at >= since)
                and (until is None or ex.created_at < until)
                and (
                    hosts is None
                    or any(
                        self._runs[i].host_id in hosts or self._runs[i].host_name in hosts
                        for i in ex.run_ids
                    )
                )
            ]
            rows.sort(key=lambda ex: ex.id)
            rows.sort(key=lambda ex: ex.created_at, reverse=True)
            items = tuple(ex.record() for ex in rows[offset : offset + limit])
        return Page(items, len(rows), limit, offset)

    def get_host_run(self, run_id: str) -> HostRunRecord:
        with self._lock:
            return self._run(run_id).record()

    def cancel_execution(self, execution_id: str) -> ExecutionRecord:
        with self._tx(execution_key(execution_id)) as changes:
            self._cancel(changes, self._current(execution_id))
            return self._record(execution_id, with_runs=True)

    def cancel_host_run(self, run_id: str) -> HostRunRecord:
        with self._tx() as changes:
            run = self._run(run_id)
            changes.notify(execution_key(run.execution_id))
            self._cancel(changes, self._current(run.execution_id, run_id))
            return run.record()

    def _cancel(self, changes: Changes, runs: list[RunRow]) -> None:
        live = [r for r in runs if r.state in CANCELLABLE_STATES]
        if not live:
            raise ConflictError("nothing to cancel: every host run has already finished")
        now = self.clock()
        done: Mapping[str, Any] = {
            "finished_at": now,
            "reason": FailureReason.CANCELLED.value,
            "message": "cancelled on request",
            "waiting_reason": None,
            "lease_expires_at": None,
        }
        for run in live:
            if run.state is not S.RUNNING:
                self._move(changes, run, run.state, S.CANCELLED, values=done)
            elif not self._move(
                changes,
                run,
                S.RUNNING,
                S.CANCELLED,
                epoch=run.epoch,
                when=run.started_at is None,
                values=done,
            ):
                # Started: the worker must kill it, then finish it ``cancelled``.
                run.cancel_requested = True

    def retry_execution(
        self,
        execution_id: str,
        *,
        approval: ApprovalRequest | None = None,
        approval_record: Mapping[str, Any] | None = None,
    ) -> ExecutionRecord:
        """New attempts for the failed hosts; with ``approval`` they wait for it,
        and the request is recorded with them (see :meth:`approval_requests`)."""
        with self._tx(QUEUE_KEY, execution_key(execution_id)) as changes:
            runs = self._current(execution_id)
            if approval is None:
                self._retry(changes, runs)
            else:
                ex = self._executions[execution_id]
                policy = ex.policy
                if approval_record is not None:
                    policy = {**ex.policy, "approval": as_json(dict(approval_record))}
                self._retry(changes, runs, state=S.PENDING_APPROVAL)
                self._approvals.setdefault(execution_id, []).append((approval, ex.content_hash))
                ex.policy = policy
            return self._record(execution_id, with_runs=True)

    def retry_host_run(self, run_id: str) -> HostRunRecord:
        with self._tx(QUEUE_KEY) as changes:
            run = self._run(run_id)
            changes.notify(execution_key(run.execution_id))
            [new] = self._retry(changes, self._current(run.execution_id, run_id))
            return new.record()

    def _retry(
        self, changes: Changes, runs: list[RunRow], *, state: HostRunState = S.QUEUED
    ) -> list[RunRow]:
        failed = [r for r in runs if r.state in RETRYABLE_STATES]
        if not failed:
            raise ConflictError("nothing to retry: only failed, timed-out or lost host runs retry")
        now = self.clock()
        waiting = WAITING_FOR_WORKER if state is S.QUEUED else WAITING_FOR_APPROVAL
        out = []
        for run in failed:
            self._supersede(run)
            out.append(self._next_attempt(changes, run, now, f"{waiting} (retry)", state))
        return out

    def approval_requests(self, execution_id: str) -> list[tuple[ApprovalRequest, str | None]]:
        """Requests written by :meth:`retry_execution` (with the content hash they
        bind), oldest first: the last one covers the execution's pending runs."""
        with self._lock:
            return list(self._approvals.get(execution_id, ()))

    def delete_execution(self, execution_id: str) -> None:
        with self._tx():
            ex = self._execution(execution_id)
            if any(self._runs[i].state not in TERMINAL_STATES for i in ex.run_ids):
                raise ConflictError("an execution can be deleted only when every host run finished")
            for run_id in ex.run_ids:
                del self._runs[run_id]
                self._chunks_by_run.pop(run_id, None)
            self._chunks_by_execution.pop(execution_id, None)
            self._approvals.pop(execution_id, None)
            del self._executions[execution_id]

    def approve_execution(self, execution_id: str) -> ExecutionRecord:
        return self._decide(execution_id, S.QUEUED, None)

    def reject_execution(self, execution_id: str, message: str) -> ExecutionRecord:
        return self._decide(execution_id, S.REJECTED, message)

    def _decide(self, execution_id: str, new: HostRunState, message: str | None) -> ExecutionRecord:
        with self._tx(QUEUE_KEY, execution_key(execution_id)) as changes:
            pending = [r for r in self._current(execution_id) if r.state is S.PENDING_APPROVAL]
            if not pending:
                raise ConflictError("this execution is not awaiting approval")
            now = self.clock()
            values: dict[str, Any]
            if new is S.QUEUED:
                values = {"available_at": now, "waiting_reason": WAITING_FOR_WORKER}
            else:
                values = {"finished_at": now, "message": message, "waiting_reason": None}
            for run in pending:
                self._move(changes, run, S.PENDING_APPROVAL, new, values=values)
            return self._record(execution_id, with_runs=True)

    def set_waiting_reason(self, run_ids: Sequence[str], reason: str) -> int:
        """Explain why queued or pending runs wait (window closed, host offline, ...)."""
        n = 0
        with self._tx():
            for run_id in set(run_ids):
                run = self._runs.get(run_id)
                if run is not None and run.state in (S.QUEUED, S.PENDING_APPROVAL):
                    run.waiting_reason = reason
                    n += 1
        return n


def _keys(value: str | Sequence[str]) -> frozenset[str | None]:
    """One id or name, or several (``list_executions`` takes either)."""
    return frozenset([value] if isinstance(value, str) else value)

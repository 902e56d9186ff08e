"""Executions: create (with sealed secrets), read, list, and seed 001's actions.

Actions (seed 001, DESIGN "States"): cancel applies to pending-approval,
queued and running host runs (a running one that already started gets
``cancel_requested``; its worker kills it and records ``cancelled``); retry
applies to failed, timed-out and lost ones and queues a new attempt (the old
one is kept as history, ``superseded``); delete only when every host run is
terminal. Refused actions raise ConflictError and change nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, exists, func, insert, select, update

from muster.domain.approvals import ApprovalRequest
from muster.domain.secret import MASK, Secret
from muster.domain.states import (
    TERMINAL_STATES,
    ExecutionStatus,
    FailureReason,
    HostRunState,
    rollup,
)
from muster.errors import ConflictError, NotFoundError, ValidationError
from muster.security.vault import Vault, VaultError
from muster.store._core import StoreCore, new_id
from muster.store._ledger import Deltas, transition
from muster.store._rows import execution_record, host_run_record
from muster.store.approval_store import insert_approval
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
from muster.store.tables import STATE_COUNTERS, execution_secrets, executions, host_runs

__all__ = [
    "RETRYABLE_STATES",
    "ExecutionOps",
    "insert_attempt",
    "insert_execution",
    "secret_aad",
]

S = HostRunState
_CANCELLABLE = CANCELLABLE_STATES


def secret_aad(execution_id: str, field: str) -> str:
    """Binds a sealed value to its execution and field."""
    return f"execution:{execution_id}:{field}"


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


def insert_attempt(
    conn: Connection,
    old: RowMapping,
    now: dt.datetime,
    why: str,
    *,
    state: HostRunState = S.QUEUED,
) -> str:
    """Queue attempt N+1 of ``old`` (which the caller marks superseded); a retry that
    needs a new approval starts it ``pending_approval`` instead."""
    run_id = new_id()
    conn.execute(
        insert(host_runs).values(
            id=run_id,
            execution_id=old["execution_id"],
            host_id=old["host_id"],
            host_name=old["host_name"],
            state=state.value,
            attempt=old["attempt"] + 1,
            retry_of=old["id"],
            priority=old["priority"],
            timeout=old["timeout"],
            queued_at=now,
            available_at=now,
            waiting_reason=why,
            group_key=old["group_key"],
            throttled=old["throttled"],
        )
    )
    return run_id


def insert_execution(
    conn: Connection, new: NewExecution, now: dt.datetime, vault: Vault | None
) -> str:
    """Store ``new`` (execution, sealed secrets, host runs) inside the caller's
    transaction; return its id. The caller notifies ``QUEUE_KEY`` and the
    execution's key when it commits.

    The workflow driver stores a step's executions in the same transaction as
    the step that dispatches them, so a step never gets two.
    """
    if not new.targets:
        raise ValidationError("an execution needs at least one host", field="host_ids")
    params: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, value in new.parameters.items():
        if isinstance(value, Secret):
            params[name] = MASK
            secrets[name] = value.reveal()
        else:
            params[name] = _json_value(name, value)
    if secrets and vault is None:
        raise VaultError(
            "this execution has secret values but no secret key is configured "
            "(MUSTER_SECRET_KEY or the key file): refusing to store them"
        )
    execution_id = new_id()
    initial = S.PENDING_APPROVAL if new.requires_approval else S.QUEUED
    waiting = WAITING_FOR_APPROVAL if new.requires_approval else WAITING_FOR_WORKER
    runs: list[dict[str, Any]] = []
    for t in new.targets:
        skipped = t.skip_reason is not None
        runs.append(
            {
                "id": new_id(),
                "execution_id": execution_id,
                "host_id": t.host_id,
                "host_name": t.host_name,
                "state": (S.SKIPPED if skipped else initial).value,
                "priority": int(new.priority),
                "timeout": new.timeout,
                "queued_at": now,
                "available_at": now,
                "finished_at": now if skipped else None,
                "message": t.skip_reason,
                "waiting_reason": None if skipped else waiting,
                "group_key": t.group_key,
                "throttled": new.throttle.limited,
            }
        )
    counts = {s: 0 for s in STATE_COUNTERS}
    for r in runs:
        counts[r["state"]] += 1
    status = rollup(S(s) for s, n in counts.items() if n)
    conn.execute(
        insert(executions).values(
            id=execution_id,
            kind=new.kind.value,
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
            secret_fields=sorted(secrets),
            priority=int(new.priority),
            requested_by=new.requested_by,
            policy=dict(new.policy),
            forks=new.throttle.forks,
            per_group=new.throttle.per_group,
            delay_seconds=new.throttle.delay,
            created_at=now,
            finished_at=now if status.terminal else None,
            status=status.value,
            **{f"n_{s}": n for s, n in counts.items()},
        )
    )
    if secrets:
        assert vault is not None
        conn.execute(
            insert(execution_secrets),
            [
                {
                    "execution_id": execution_id,
                    "field": name,
                    "key_id": vault.key_id,
                    "token": vault.seal(value, secret_aad(execution_id, name)),
                }
                for name, value in secrets.items()
            ],
        )
    conn.execute(insert(host_runs), runs)
    return execution_id


class ExecutionOps(StoreCore):
    def create_execution(self, new: NewExecution) -> ExecutionRecord:
        if not new.targets:
            raise ValidationError("an execution needs at least one host", field="host_ids")
        with self._tx(notify=(QUEUE_KEY,)) as tx:
            execution_id = insert_execution(tx.conn, new, self.clock(), self.vault)
            tx.notify(execution_key(execution_id))
            return self._execution(tx.conn, execution_id, with_runs=True)

    def _execution(
        self, conn: Connection, execution_id: str, *, with_runs: bool, history: bool = False
    ) -> ExecutionRecord:
        row = (
            conn.execute(select(executions).where(executions.c.id == execution_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        runs: tuple[HostRunRecord, ...] = ()
        if with_runs:
            stmt = select(host_runs).where(host_runs.c.execution_id == execution_id)
            if not history:
                stmt = stmt.where(host_runs.c.superseded.is_(False))
            stmt = stmt.order_by(host_runs.c.host_name, host_runs.c.attempt)
            runs = tuple(host_run_record(r) for r in conn.execute(stmt).mappings())
        return execution_record(row, runs)

    def get_execution(self, execution_id: str, *, history: bool = False) -> ExecutionRecord:
        """The execution with its current host runs (every attempt with ``history``)."""
        with self._read() as conn:
            return self._execution(conn, execution_id, with_runs=True, history=history)

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
        conds = []
        if status is not None:
            conds.append(executions.c.status == ExecutionStatus(status).value)
        if isinstance(script_id, str):
            conds.append(executions.c.script_id == script_id)
        elif script_id is not None:
            conds.append(executions.c.script_id.in_(list(script_id)))
        if since is not None:
            conds.append(executions.c.created_at >= since)
        if until is not None:
            conds.append(executions.c.created_at < until)
        if host_id is not None:
            # One id or name, or any of several (a group's hosts): an id or a name matches.
            keys = [host_id] if isinstance(host_id, str) else list(host_id)
            conds.append(
                exists().where(
                    host_runs.c.execution_id == executions.c.id,
                    host_runs.c.host_id.in_(keys) | host_runs.c.host_name.in_(keys),
                )
            )
        with self._read() as conn:
            total = conn.execute(
                select(func.count()).select_from(executions).where(*conds)
            ).scalar_one()
            rows = conn.execute(
                select(executions)
                .where(*conds)
                .order_by(executions.c.created_at.desc(), executions.c.id)
                .limit(limit)
                .offset(offset)
            ).mappings()
            return Page(tuple(execution_record(r) for r in rows), total, limit, offset)

    def get_host_run(self, run_id: str) -> HostRunRecord:
        with self._read() as conn:
            row = conn.execute(select(host_runs).where(host_runs.c.id == run_id)).mappings().first()
            if row is None:
                raise NotFoundError(f"no host run {run_id!r}")
            return host_run_record(row)

    # -- actions -------------------------------------------------------------

    def _runs(
        self, conn: Connection, execution_id: str, run_id: str | None = None
    ) -> list[RowMapping]:
        self._execution(conn, execution_id, with_runs=False)  # NotFoundError first
        stmt = select(host_runs).where(
            host_runs.c.execution_id == execution_id, host_runs.c.superseded.is_(False)
        )
        if run_id is not None:
            stmt = stmt.where(host_runs.c.id == run_id)
        return list(conn.execute(stmt).mappings())

    def _run_execution_id(self, run_id: str) -> str:
        return self.get_host_run(run_id).execution_id

    def cancel_execution(self, execution_id: str) -> ExecutionRecord:
        with self._tx(notify=(execution_key(execution_id),)) as tx:
            self._cancel(tx.conn, self._runs(tx.conn, execution_id))
            return self._execution(tx.conn, execution_id, with_runs=True)

    def cancel_host_run(self, run_id: str) -> HostRunRecord:
        execution_id = self._run_execution_id(run_id)
        with self._tx(notify=(execution_key(execution_id),)) as tx:
            self._cancel(tx.conn, self._runs(tx.conn, execution_id, run_id))
            return self._one_run(tx.conn, run_id)

    @staticmethod
    def _one_run(conn: Connection, run_id: str) -> HostRunRecord:
        return host_run_record(
            conn.execute(select(host_runs).where(host_runs.c.id == run_id)).mappings().one()
        )

    def _cancel(self, conn: Connection, rows: list[RowMapping]) -> None:
        live = [r for r in rows if S(r["state"]) in _CANCELLABLE]
        if not live:
            raise ConflictError("nothing to cancel: every host run has already finished")
        now = self.clock()
        done = {
            "finished_at": now,
            "reason": FailureReason.CANCELLED.value,
            "message": "cancelled on request",
            "waiting_reason": None,
            "lease_expires_at": None,
        }
        deltas = Deltas()
        for r in live:
            state = S(r["state"])
            if state is not S.RUNNING:
                if transition(conn, r["id"], state, S.CANCELLED, values=done):
                    deltas.move(r["execution_id"], state, S.CANCELLED)
                continue
            # Not started yet: nothing to kill, so it ends here and the worker's
            # mark_started loses. Started: the worker must kill it first.
            won = transition(
                conn,
                r["id"],
                S.RUNNING,
                S.CANCELLED,
                epoch=r["epoch"],
                where=[host_runs.c.started_at.is_(None)],
                values=done,
            )
            if won:
                deltas.move(r["execution_id"], S.RUNNING, S.CANCELLED)
            else:
                conn.execute(
                    update(host_runs)
                    .where(host_runs.c.id == r["id"], host_runs.c.state == S.RUNNING.value)
                    .values(cancel_requested=True)
                )
        deltas.apply(conn, now)

    def retry_execution(
        self,
        execution_id: str,
        *,
        approval: ApprovalRequest | None = None,
        approval_record: Mapping[str, Any] | None = None,
    ) -> ExecutionRecord:
        """New attempts for the failed hosts; with ``approval`` they wait for it.

        The pending attempts and their request are written in one transaction,
        so the execution's newest request is always the one covering its
        pending runs: an earlier, already approved request can never promote
        them. ``approval_record`` (why approval is needed) replaces the
        execution's ``policy["approval"]``.
        """
        with self._tx(notify=(QUEUE_KEY, execution_key(execution_id))) as tx:
            rows = self._runs(tx.conn, execution_id)
            if approval is None:
                self._retry(tx.conn, rows)
            else:
                self._retry(tx.conn, rows, state=S.PENDING_APPROVAL)
                current = self._execution(tx.conn, execution_id, with_runs=False)
                insert_approval(
                    tx.conn,
                    approval,
                    execution_id=execution_id,
                    content_hash=current.content_hash,
                )
                if approval_record is not None:
                    tx.conn.execute(
                        update(executions)
                        .where(executions.c.id == execution_id)
                        .values(policy={**current.policy, "approval": dict(approval_record)})
                    )
            return self._execution(tx.conn, execution_id, with_runs=True)

    def retry_host_run(self, run_id: str) -> HostRunRecord:
        execution_id = self._run_execution_id(run_id)
        with self._tx(notify=(QUEUE_KEY, execution_key(execution_id))) as tx:
            new_ids = self._retry(tx.conn, self._runs(tx.conn, execution_id, run_id))
            return self._one_run(tx.conn, new_ids[0])

    def _retry(
        self, conn: Connection, rows: list[RowMapping], *, state: HostRunState = S.QUEUED
    ) -> list[str]:
        failed = [r for r in rows if S(r["state"]) in RETRYABLE_STATES]
        if not failed:
            raise ConflictError("nothing to retry: only failed, timed-out or lost host runs retry")
        now = self.clock()
        deltas = Deltas()
        new_ids = []
        for r in failed:
            won = conn.execute(
                update(host_runs)
                .where(host_runs.c.id == r["id"], host_runs.c.superseded.is_(False))
                .values(superseded=True)
            ).rowcount
            if not won:
                continue
            waiting = WAITING_FOR_WORKER if state is S.QUEUED else WAITING_FOR_APPROVAL
            new_ids.append(insert_attempt(conn, r, now, f"{waiting} (retry)", state=state))
            deltas.remove(r["execution_id"], S(r["state"]))
            deltas.add(r["execution_id"], state)
        deltas.apply(conn, now)
        if not new_ids:
            raise ConflictError("these host runs were retried concurrently")
        return new_ids

    def delete_execution(self, execution_id: str) -> None:
        with self._tx() as tx:
            self._execution(tx.conn, execution_id, with_runs=False)
            states = tx.conn.execute(
                select(host_runs.c.state).where(host_runs.c.execution_id == execution_id)
            ).scalars()
            if any(S(s) not in TERMINAL_STATES for s in states):
                raise ConflictError("an execution can be deleted only when every host run finished")
            tx.conn.execute(delete(executions).where(executions.c.id == execution_id))

    def approve_execution(self, execution_id: str) -> ExecutionRecord:
        return self._decide(execution_id, S.QUEUED, None)

    def reject_execution(self, execution_id: str, message: str) -> ExecutionRecord:
        return self._decide(execution_id, S.REJECTED, message)

    def _decide(self, execution_id: str, new: HostRunState, message: str | None) -> ExecutionRecord:
        with self._tx(notify=(QUEUE_KEY, execution_key(execution_id))) as tx:
            pending = [
                r
                for r in self._runs(tx.conn, execution_id)
                if r["state"] == S.PENDING_APPROVAL.value
            ]
            if not pending:
                raise ConflictError("this execution is not awaiting approval")
            now = self.clock()
            values: dict[str, Any]
            if new is S.QUEUED:
                values = {"available_at": now, "waiting_reason": WAITING_FOR_WORKER}
            else:
                values = {"finished_at": now, "message": message, "waiting_reason": None}
            deltas = Deltas()
            for r in pending:
                if transition(tx.conn, r["id"], S.PENDING_APPROVAL, new, values=values):
                    deltas.move(execution_id, S.PENDING_APPROVAL, new)
            deltas.apply(tx.conn, now)
            return self._execution(tx.conn, execution_id, with_runs=True)

    def set_waiting_reason(self, run_ids: Sequence[str], reason: str) -> int:
        """Explain why queued or pending runs wait (window closed, host offline, ...)."""
        with self._tx() as tx:
            return tx.conn.execute(
                update(host_runs)
                .where(
                    host_runs.c.id.in_(list(run_ids)),
                    host_runs.c.state.in_([S.QUEUED.value, S.PENDING_APPROVAL.value]),
                )
                .values(waiting_reason=reason)
            ).rowcount

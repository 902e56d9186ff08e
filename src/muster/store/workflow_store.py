"""Workflows on the SQL store: definitions, instances, and what the durable driver needs.

:class:`WorkflowSqlOps` implements :class:`~muster.engine.workflow_store.WorkflowStore`
(the contract the in-process driver and the server share) and
:class:`~muster.store.workflow_durable.DurableWorkflowStore`, the part only the
server's driver uses:

* **Claims.** ``claim_instances`` hands unfinished instances that are due
  (``wake_at`` passed or unset) to one process at a time, with a lease; on
  PostgreSQL one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``,
  on SQLite a ``BEGIN IMMEDIATE`` transaction. A holder that died loses its
  claim when the lease ends.
* **One commit per step of progress.** ``commit_progress`` writes, in one
  transaction and only if the instance is still at the revision the driver
  read: the new state, the step results, the executions the steps dispatch
  (:func:`~muster.store._executions.insert_execution`), the approval requests
  approval steps open and the ones they close. A driver that lost the race
  (another process, a user's pause or kill) writes nothing, so a step is
  never dispatched twice and a finished step never runs again.
* **Secrets.** A secret parameter is stored as ``***`` in the record and
  sealed with the vault (bound to the instance and name) for the driver,
  which needs it after a restart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, delete, func, insert, or_, select, update

from muster.domain.approvals import ApprovalRequest, ApprovalStatus
from muster.domain.secret import Secret
from muster.domain.workflows import (
    InstanceState,
    InstanceStatus,
    StepResult,
    Workflow,
    parse_workflow,
    workflow_hash,
    workflow_to_dict,
)
from muster.engine.workflow_store import InstanceRecord, WorkflowRecord, stored_params
from muster.errors import ConflictError, NotFoundError
from muster.security.vault import VaultError
from muster.store._core import StoreCore, new_id
from muster.store._executions import insert_execution
from muster.store.approval_store import insert_approval
from muster.store.notify import QUEUE_KEY, execution_key
from muster.store.security_tables import approval_requests
from muster.store.workflow_durable import Dispatch, InstanceDetail, StepLink, WindowHold
from muster.store.workflow_tables import (
    workflow_instances,
    workflow_secret_aad,
    workflow_steps,
    workflow_versions,
    workflows,
)

__all__ = ["WORKFLOWS_KEY", "WorkflowSqlOps", "instance_key"]

#: Wake-up key when an instance needs its driver (a user action, a decision).
WORKFLOWS_KEY = "workflows"
_TERMINAL = tuple(s.value for s in InstanceStatus if s.terminal)
_i = workflow_instances
_s = workflow_steps


def instance_key(instance_id: str) -> str:
    return f"workflow:{instance_id}"


_secret_aad = workflow_secret_aad


def _machine(state: InstanceState) -> dict[str, Any]:
    data = state.to_dict()
    data.pop("steps", None)
    return data


def _step_values(state: InstanceState, sid: str) -> dict[str, Any]:
    st = state.steps[sid]
    return {
        "state": st.status.value,
        "attempt": st.attempt,
        "data": st.to_dict(),
        "started_at": st.started_at,
        "finished_at": st.finished_at,
    }


def _instance_values(state: InstanceState) -> dict[str, Any]:
    reason = state.wait_reason
    return {
        "status": state.status.value,
        "waiting_reason": reason.value if reason is not None else None,
        "machine": _machine(state),
        "paused_until": state.paused_until,
        "message": state.message or None,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
    }


class WorkflowSqlOps(StoreCore):
    """The workflow areas of the SQL store (see the module docstring)."""

    # -- definitions -------------------------------------------------------------

    def save_workflow(
        self, workflow: Workflow, *, created_by: str | None = None, source: str | None = None
    ) -> tuple[WorkflowRecord, bool]:
        digest = workflow_hash(workflow)
        definition = workflow_to_dict(workflow)
        now = self.clock()
        with self._tx() as tx:
            conn = tx.conn
            stmt = select(workflows).where(workflows.c.name == workflow.name)
            if self.is_postgres:
                stmt = stmt.with_for_update()
            row = conn.execute(stmt).mappings().first()
            if row is None:
                wid = new_id()
                conn.execute(
                    insert(workflows).values(
                        id=wid,
                        name=workflow.name,
                        description=workflow.description,
                        latest_version=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                latest = 0
            else:
                wid, latest = row["id"], int(row["latest_version"])
                current = self._wf_version_row(conn, wid, latest)
                if current is not None and current["content_hash"] == digest:
                    return self._wf_record(row["name"], current), False
            number = latest + 1
            values = {
                "workflow_id": wid,
                "number": number,
                "content_hash": digest,
                "source": source if source is not None else _as_yaml(definition),
                "definition": definition,
                "steps": len(workflow.steps),
                "created_at": now,
                "created_by": created_by,
            }
            conn.execute(insert(workflow_versions).values(**values))
            conn.execute(
                update(workflows)
                .where(workflows.c.id == wid)
                .values(latest_version=number, updated_at=now, description=workflow.description)
            )
            return (
                WorkflowRecord(
                    name=workflow.name,
                    version=number,
                    content_hash=digest,
                    workflow=workflow,
                    created_at=now,
                    created_by=created_by,
                ),
                True,
            )

    @staticmethod
    def _wf_version_row(conn: Connection, wid: str, number: int) -> RowMapping | None:
        return (
            conn.execute(
                select(workflow_versions).where(
                    workflow_versions.c.workflow_id == wid, workflow_versions.c.number == number
                )
            )
            .mappings()
            .first()
        )

    @staticmethod
    def _wf_record(name: str, v: RowMapping) -> WorkflowRecord:
        return WorkflowRecord(
            name=name,
            version=int(v["number"]),
            content_hash=v["content_hash"],
            workflow=parse_workflow(v["definition"]),
            created_at=v["created_at"],
            created_by=v["created_by"],
        )

    def _wf_row(self, conn: Connection, name: str) -> RowMapping:
        row = (
            conn.execute(
                select(workflows).where(or_(workflows.c.name == name, workflows.c.id == name))
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"no workflow {name!r}")
        return row

    def get_workflow(self, name: str, version: int | None = None) -> WorkflowRecord:
        with self._read() as conn:
            row = self._wf_row(conn, name)
            number = int(row["latest_version"]) if version is None else version
            v = self._wf_version_row(conn, row["id"], number)
            if v is None:
                raise NotFoundError(f"workflow {row['name']!r} has no version {version}")
            return self._wf_record(row["name"], v)

    def workflow_source(self, name: str, version: int | None = None) -> str:
        """The text a version was pushed as (YAML or JSON), for editors and ``show``."""
        with self._read() as conn:
            row = self._wf_row(conn, name)
            number = int(row["latest_version"]) if version is None else version
            v = self._wf_version_row(conn, row["id"], number)
            if v is None:
                raise NotFoundError(f"workflow {row['name']!r} has no version {version}")
            return str(v["source"])

    def list_workflows(self) -> list[WorkflowRecord]:
        with self._read() as conn:
            rows = conn.execute(
                select(workflows.c.name, workflow_versions)
                .join(
                    workflow_versions,
                    and_(
                        workflow_versions.c.workflow_id == workflows.c.id,
                        workflow_versions.c.number == workflows.c.latest_version,
                    ),
                )
                .order_by(workflows.c.name)
            ).mappings()
            return [self._wf_record(r["name"], r) for r in rows]

    def list_workflow_versions(self, name: str) -> list[WorkflowRecord]:
        with self._read() as conn:
            row = self._wf_row(conn, name)
            rows = conn.execute(
                select(workflow_versions)
                .where(workflow_versions.c.workflow_id == row["id"])
                .order_by(workflow_versions.c.number)
            ).mappings()
            return [self._wf_record(row["name"], v) for v in rows]

    def delete_workflow(self, name: str) -> None:
        with self._tx() as tx:
            row = self._wf_row(tx.conn, name)
            busy = tx.conn.execute(
                select(_i.c.id)
                .where(_i.c.workflow_id == row["id"], _i.c.status.not_in(_TERMINAL))
                .limit(1)
            ).scalar()
            if busy is not None:
                raise ConflictError(f"workflow {row['name']!r} has an unfinished instance {busy}")
            tx.conn.execute(delete(workflows).where(workflows.c.id == row["id"]))

    # -- instances -----------------------------------------------------------------

    def create_instance(
        self,
        workflow: WorkflowRecord,
        state: InstanceState,
        *,
        params: Mapping[str, Any],
        targets: str | None = None,
        created_by: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> InstanceRecord:
        with self._tx(notify=(WORKFLOWS_KEY,)) as tx:
            iid = self._insert_instance(
                tx.conn, workflow, state, params, targets, created_by, context, self.clock()
            )
            return self._wf_instance(tx.conn, iid)

    def _insert_instance(
        self,
        conn: Connection,
        workflow: Any,
        state: InstanceState,
        params: Mapping[str, Any],
        targets: str | None,
        created_by: str | None,
        context: Mapping[str, Any] | None,
        now: dt.datetime,
        iid: str | None = None,
    ) -> str:
        """Insert one instance and its step rows (secrets sealed to its id); its id.

        ``workflow`` is anything with the definition's name, version and content_hash."""
        secrets = {k: v.reveal() for k, v in params.items() if isinstance(v, Secret)}
        if secrets and self.vault is None:
            raise VaultError(
                "this instance has secret values but no secret key is configured: "
                "refusing to store them"
            )
        iid = iid or new_id()
        wf = self._wf_row(conn, workflow.name)
        sealed = {}
        if secrets:
            assert self.vault is not None
            sealed = {k: self.vault.seal(v, _secret_aad(iid, k)) for k, v in secrets.items()}
        conn.execute(
            insert(_i).values(
                id=iid,
                workflow_id=wf["id"],
                workflow_name=workflow.name,
                version=workflow.version,
                content_hash=workflow.content_hash,
                parameters=stored_params(params),
                secrets=sealed,
                targets=targets,
                context=dict(context or {}),
                revision=1,
                requested_by=created_by,
                created_at=now,
                **_instance_values(state),
            )
        )
        rows = [
            {"instance_id": iid, "step_id": sid, "execution_ids": [], **_step_values(state, sid)}
            for sid in state.steps
        ]
        if rows:
            conn.execute(insert(_s), rows)
        state.changed.clear()
        return iid

    def _wf_instance(self, conn: Connection, instance_id: str) -> InstanceRecord:
        row = conn.execute(select(_i).where(_i.c.id == instance_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no workflow instance {instance_id!r}")
        steps = conn.execute(select(_s.c.data).where(_s.c.instance_id == instance_id)).scalars()
        return self._wf_instance_record(row, list(steps))

    @staticmethod
    def _wf_instance_record(row: RowMapping, steps: Sequence[Mapping[str, Any]]) -> InstanceRecord:
        data = dict(row["machine"])
        data["steps"] = list(steps)
        return InstanceRecord(
            id=row["id"],
            workflow=row["workflow_name"],
            version=int(row["version"]),
            content_hash=row["content_hash"],
            state=InstanceState.from_dict(data),
            params=dict(row["parameters"]),
            targets=row["targets"],
            created_at=row["created_at"],
            created_by=row["requested_by"],
            revision=int(row["revision"]),
        )

    def get_instance(self, instance_id: str) -> InstanceRecord:
        with self._read() as conn:
            return self._wf_instance(conn, instance_id)

    def list_instances(
        self,
        *,
        workflow: str | None = None,
        status: InstanceStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[InstanceRecord]:
        stmt = select(_i)
        if workflow is not None:
            stmt = stmt.where(_i.c.workflow_name == workflow)
        if status is not None:
            stmt = stmt.where(_i.c.status == InstanceStatus(status).value)
        stmt = stmt.order_by(_i.c.created_at.desc(), _i.c.id).limit(limit).offset(offset)
        with self._read() as conn:
            rows = list(conn.execute(stmt).mappings())
            ids = [r["id"] for r in rows]
            by: dict[str, list[Mapping[str, Any]]] = {i: [] for i in ids}
            if ids:
                for iid, data in conn.execute(
                    select(_s.c.instance_id, _s.c.data).where(_s.c.instance_id.in_(ids))
                ):
                    by[iid].append(data)
            return [self._wf_instance_record(r, by[r["id"]]) for r in rows]

    def count_instances(
        self, *, workflow: str | None = None, status: InstanceStatus | str | None = None
    ) -> int:
        stmt = select(func.count()).select_from(_i)
        if workflow is not None:
            stmt = stmt.where(_i.c.workflow_name == workflow)
        if status is not None:
            stmt = stmt.where(_i.c.status == InstanceStatus(status).value)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def _save_instance_state(
        self, conn: Connection, instance_id: str, state: InstanceState, revision: int
    ) -> int:
        done = conn.execute(
            update(_i)
            .where(_i.c.id == instance_id, _i.c.revision == revision)
            .values(revision=revision + 1, **_instance_values(state))
        )
        if done.rowcount != 1:
            exists = conn.execute(select(_i.c.revision).where(_i.c.id == instance_id)).scalar()
            if exists is None:
                raise NotFoundError(f"no workflow instance {instance_id!r}")
            raise ConflictError(f"instance {instance_id} moved (revision {exists}, not {revision})")
        for sid in sorted(state.changed):
            if sid not in state.steps:
                continue
            values = _step_values(state, sid)
            moved = conn.execute(
                update(_s)
                .where(_s.c.instance_id == instance_id, _s.c.step_id == sid)
                .values(**values)
            )
            if moved.rowcount == 0:
                conn.execute(
                    insert(_s).values(
                        instance_id=instance_id, step_id=sid, execution_ids=[], **values
                    )
                )
        state.changed.clear()
        return revision + 1

    def save_instance(self, instance_id: str, state: InstanceState, *, revision: int) -> int:
        with self._tx(notify=(instance_key(instance_id),)) as tx:
            return self._save_instance_state(tx.conn, instance_id, state, revision)

    def _wf_record_result(self, conn: Connection, instance_id: str, result: StepResult) -> None:
        old = conn.execute(
            select(_s.c.result).where(
                _s.c.instance_id == instance_id, _s.c.step_id == result.step_id
            )
        ).first()
        if old is None:
            raise NotFoundError(f"instance {instance_id} has no step {result.step_id!r}")
        if old[0] is not None and int(old[0].get("attempt", 0)) > result.attempt:
            return
        conn.execute(
            update(_s)
            .where(_s.c.instance_id == instance_id, _s.c.step_id == result.step_id)
            .values(result=result.to_dict())
        )

    def record_step_result(self, instance_id: str, result: StepResult) -> None:
        with self._tx(notify=(instance_key(instance_id),)) as tx:
            self._wf_record_result(tx.conn, instance_id, result)

    def step_results(self, instance_id: str) -> dict[str, StepResult]:
        with self._read() as conn:
            rows = conn.execute(
                select(_s.c.step_id, _s.c.result).where(
                    _s.c.instance_id == instance_id, _s.c.result.is_not(None)
                )
            )
            return {sid: StepResult.from_dict(data) for sid, data in rows if data}

    # -- the durable driver ----------------------------------------------------------

    def instance_detail(self, instance_id: str) -> InstanceDetail:
        """The instance, its steps' links (executions, approval), results and context."""
        with self._read() as conn:
            row = conn.execute(select(_i).where(_i.c.id == instance_id)).mappings().first()
            if row is None:
                raise NotFoundError(f"no workflow instance {instance_id!r}")
            steps = list(conn.execute(select(_s).where(_s.c.instance_id == instance_id)).mappings())
        record = self._wf_instance_record(row, [s["data"] for s in steps])
        return InstanceDetail(
            record=record,
            links={
                s["step_id"]: StepLink(
                    tuple(s["execution_ids"] or ()), s["approval_id"], int(s["attempt"])
                )
                for s in steps
            },
            results={s["step_id"]: StepResult.from_dict(s["result"]) for s in steps if s["result"]},
            context=dict(row["context"] or {}),
            owner=row["owner"],
            wake_at=row["wake_at"],
        )

    def executions_finished(self, execution_ids: Sequence[str]) -> set[str]:
        """Which of these executions have ended (one query per 500 ids)."""
        from muster.domain.states import ExecutionStatus
        from muster.store.tables import executions

        done = [s.value for s in ExecutionStatus if s.terminal]
        out: set[str] = set()
        ids = list(execution_ids)
        with self._read() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                out.update(
                    conn.execute(
                        select(executions.c.id).where(
                            executions.c.id.in_(chunk), executions.c.status.in_(done)
                        )
                    ).scalars()
                )
        return out

    def window_holds(self, execution_ids: Sequence[str]) -> dict[str, WindowHold]:
        """Per execution whose every unfinished host run waits outside its maintenance
        window (queued by the claim with a later ``available_at``): the hold, naming the
        earliest opening. Executions with a run that may start now are left out."""
        from muster.domain.states import HostRunState
        from muster.store.tables import host_runs
        from muster.store.windows import DEFERRED_PREFIX

        hr = host_runs.c
        live = [s.value for s in HostRunState if not s.terminal]
        now = self.clock()
        held: dict[str, WindowHold] = {}
        free: set[str] = set()
        ids = list(execution_ids)
        with self._read() as conn:
            for i in range(0, len(ids), 500):
                rows = conn.execute(
                    select(hr.execution_id, hr.state, hr.waiting_reason, hr.available_at).where(
                        hr.execution_id.in_(ids[i : i + 500]), hr.state.in_(live)
                    )
                ).all()
                for eid, state, why, when in rows:
                    if (
                        state == HostRunState.QUEUED.value
                        and (why or "").startswith(DEFERRED_PREFIX)
                        and when is not None
                        and when > now
                    ):
                        seen = held.get(eid)
                        if seen is None or when < seen.opens_at:
                            held[eid] = WindowHold(str(why), when)
                    else:
                        free.add(eid)
        return {eid: hold for eid, hold in held.items() if eid not in free}

    def open_instance_secrets(self, instance_id: str) -> dict[str, Secret]:
        """The instance's secret parameter values, for its driver only."""
        with self._read() as conn:
            sealed = conn.execute(select(_i.c.secrets).where(_i.c.id == instance_id)).scalar()
        if sealed is None:
            raise NotFoundError(f"no workflow instance {instance_id!r}")
        if sealed and self.vault is None:
            raise VaultError("the instance has sealed values but no secret key is configured")
        return {
            k: Secret(self.vault.open(v, _secret_aad(instance_id, k)))  # type: ignore[union-attr]
            for k, v in dict(sealed).items()
        }

    def claim_instances(self, owner: str, *, limit: int, lease_seconds: float) -> list[str]:
        """Unfinished instances that are due, held by ``owner`` for ``lease_seconds``."""
        now = self.clock()
        until = now + dt.timedelta(seconds=lease_seconds)
        due = and_(
            _i.c.status.not_in(_TERMINAL),
            or_(_i.c.owner.is_(None), _i.c.lease_expires_at <= now, _i.c.owner == owner),
            or_(_i.c.wake_at.is_(None), _i.c.wake_at <= now),
        )
        pick = select(_i.c.id).where(due).order_by(_i.c.wake_at, _i.c.created_at).limit(limit)
        with self._tx() as tx:
            if self.is_postgres:
                pick = pick.with_for_update(skip_locked=True)
                ids = list(
                    tx.conn.execute(
                        update(_i)
                        .where(_i.c.id.in_(pick.scalar_subquery()))
                        .values(owner=owner, lease_expires_at=until)
                        .returning(_i.c.id)
                    ).scalars()
                )
            else:
                ids = list(tx.conn.execute(pick).scalars())
                if ids:
                    tx.conn.execute(
                        update(_i)
                        .where(_i.c.id.in_(ids))
                        .values(owner=owner, lease_expires_at=until)
                    )
            return ids

    def release_instance(
        self, instance_id: str, owner: str, *, wake_at: dt.datetime | None
    ) -> bool:
        """Give the claim back; the instance is due again at ``wake_at`` (None: at once)."""
        with self._single() as conn:
            done = conn.execute(
                update(_i)
                .where(_i.c.id == instance_id, _i.c.owner == owner)
                .values(owner=None, lease_expires_at=None, wake_at=wake_at)
            )
            return done.rowcount == 1

    def poke_instance(self, instance_id: str) -> None:
        """Make the instance due now (a user acted, an approval was decided)."""
        with self._tx(notify=(WORKFLOWS_KEY,)) as tx:
            tx.conn.execute(update(_i).where(_i.c.id == instance_id).values(wake_at=None))

    def commit_progress(
        self,
        instance_id: str,
        state: InstanceState,
        *,
        revision: int,
        results: Sequence[StepResult] = (),
        dispatches: Sequence[Dispatch] = (),
        approvals: Sequence[tuple[str, ApprovalRequest]] = (),
        closed_approvals: Sequence[tuple[str, str]] = (),
    ) -> tuple[int, dict[str, tuple[str, ...]]]:
        """Everything one pass of the driver decided, in one transaction, if the
        instance is still at ``revision`` (else ConflictError, nothing written).

        Returns the new revision and, per dispatched step, its new execution ids.
        """
        now = self.clock()
        dispatched: dict[str, tuple[str, ...]] = {}
        with self._tx(notify=(instance_key(instance_id),)) as tx:
            conn = tx.conn
            new_revision = self._save_instance_state(conn, instance_id, state, revision)
            for result in results:
                self._wf_record_result(conn, instance_id, result)
            for d in dispatches:
                ids = tuple(insert_execution(conn, new, now, self.vault) for new in d.executions)
                for eid in ids:
                    tx.notify(execution_key(eid))
                if ids:
                    tx.notify(QUEUE_KEY)
                conn.execute(
                    update(_s)
                    .where(_s.c.instance_id == instance_id, _s.c.step_id == d.step_id)
                    .values(execution_ids=list(ids))
                )
                dispatched[d.step_id] = ids
            for sid, request in approvals:
                insert_approval(conn, request)
                conn.execute(
                    update(_s)
                    .where(_s.c.instance_id == instance_id, _s.c.step_id == sid)
                    .values(approval_id=request.id)
                )
            for approval_id, reason in closed_approvals:
                conn.execute(
                    update(approval_requests)
                    .where(
                        approval_requests.c.id == approval_id,
                        approval_requests.c.status == ApprovalStatus.PENDING.value,
                    )
                    .values(status=ApprovalStatus.REJECTED.value, decided_at=now, reason=reason)
                )
            return new_revision, dispatched


def _as_yaml(definition: Mapping[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(dict(definition), sort_keys=False, allow_unicode=True))

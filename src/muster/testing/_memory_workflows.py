"""Workflow definitions and instances in memory, with the SQL store's contract
(:class:`~muster.engine.workflow_store.WorkflowStore`): versions by content hash,
compare-and-set on an instance's revision, secrets never kept."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from muster.domain.workflows import (
    InstanceState,
    InstanceStatus,
    StepResult,
    Workflow,
    workflow_hash,
)
from muster.engine.workflow_store import InstanceRecord, WorkflowRecord, stored_params
from muster.errors import ConflictError, NotFoundError
from muster.testing._memory_core import MemoryCore, new_id

__all__ = ["WorkflowOps"]


@dataclasses.dataclass(slots=True)
class _InstanceRow:
    """Instance fields and one entry per step, as the SQL store keeps rows: a save
    writes the fields and the steps that moved, never the whole instance."""

    record: InstanceRecord
    fields: dict[str, Any]
    steps: dict[str, dict[str, Any]]
    results: dict[str, StepResult]

    @property
    def state(self) -> dict[str, Any]:
        return {**self.fields, "steps": list(self.steps.values())}


class WorkflowOps(MemoryCore):
    """The WorkflowStore part of InMemoryStore."""

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._wf_versions: dict[str, list[WorkflowRecord]] = {}
            self._wf_instances: dict[str, _InstanceRow] = {}

    def _workflow_tables(self) -> tuple[dict[str, list[WorkflowRecord]], dict[str, _InstanceRow]]:
        return self._wf_versions, self._wf_instances

    def save_workflow(
        self, workflow: Workflow, *, created_by: str | None = None
    ) -> tuple[WorkflowRecord, bool]:
        versions, _ = self._workflow_tables()
        digest = workflow_hash(workflow)
        with self._tx():
            existing = versions.setdefault(workflow.name, [])
            if existing and existing[-1].content_hash == digest:
                return existing[-1], False
            record = WorkflowRecord(
                name=workflow.name,
                version=len(existing) + 1 if not existing else existing[-1].version + 1,
                content_hash=digest,
                workflow=workflow,
                created_at=self.clock(),
                created_by=created_by,
            )
            existing.append(record)
            return record, True

    def get_workflow(self, name: str, version: int | None = None) -> WorkflowRecord:
        versions, _ = self._workflow_tables()
        with self._lock:
            found = versions.get(name)
            if not found:
                raise NotFoundError(f"no workflow {name!r}")
            if version is None:
                return found[-1]
            for record in found:
                if record.version == version:
                    return record
            raise NotFoundError(f"workflow {name!r} has no version {version}")

    def list_workflows(self) -> list[WorkflowRecord]:
        versions, _ = self._workflow_tables()
        with self._lock:
            return [v[-1] for _, v in sorted(versions.items()) if v]

    def delete_workflow(self, name: str) -> None:
        versions, instances = self._workflow_tables()
        with self._tx():
            if name not in versions:
                raise NotFoundError(f"no workflow {name!r}")
            for row in instances.values():
                if (
                    row.record.workflow == name
                    and not InstanceStatus(row.fields["status"]).terminal
                ):
                    raise ConflictError(
                        f"workflow {name!r} has an unfinished instance {row.record.id}"
                    )
            del versions[name]

    def create_instance(
        self,
        workflow: WorkflowRecord,
        state: InstanceState,
        *,
        params: Mapping[str, Any],
        targets: str | None = None,
        created_by: str | None = None,
    ) -> InstanceRecord:
        _, instances = self._workflow_tables()
        with self._tx():
            record = InstanceRecord(
                id=new_id(),
                workflow=workflow.name,
                version=workflow.version,
                content_hash=workflow.content_hash,
                state=InstanceState.from_dict(state.to_dict()),
                params=stored_params(params),
                targets=targets,
                created_at=self.clock(),
                created_by=created_by,
                revision=1,
            )
            state.changed.clear()
            instances[record.id] = _InstanceRow(
                record,
                state.fields_dict(),
                {sid: st.to_dict() for sid, st in state.steps.items()},
                {},
            )
            return record

    def _instance_row(self, instance_id: str) -> _InstanceRow:
        _, instances = self._workflow_tables()
        row = instances.get(instance_id)
        if row is None:
            raise NotFoundError(f"no workflow instance {instance_id!r}")
        return row

    def get_instance(self, instance_id: str) -> InstanceRecord:
        with self._lock:
            row = self._instance_row(instance_id)
            return dataclasses.replace(row.record, state=InstanceState.from_dict(row.state))

    def list_instances(
        self,
        *,
        workflow: str | None = None,
        status: InstanceStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[InstanceRecord]:
        _, instances = self._workflow_tables()
        wanted = InstanceStatus(status) if status is not None else None
        with self._lock:
            rows = [
                r
                for r in instances.values()
                if (workflow is None or r.record.workflow == workflow)
                and (wanted is None or r.fields["status"] == wanted.value)
            ]
            rows.sort(key=lambda r: r.record.created_at, reverse=True)
            return [
                dataclasses.replace(r.record, state=InstanceState.from_dict(r.state))
                for r in rows[offset : offset + limit]
            ]

    def save_instance(self, instance_id: str, state: InstanceState, *, revision: int) -> int:
        with self._tx(f"workflow:{instance_id}"):
            row = self._instance_row(instance_id)
            if row.record.revision != revision:
                raise ConflictError(
                    f"instance {instance_id} moved (revision {row.record.revision}, not {revision})"
                )
            row.fields = state.fields_dict()
            for sid in state.changed:
                row.steps[sid] = state.steps[sid].to_dict()
            row.record = dataclasses.replace(row.record, revision=revision + 1)
            state.changed.clear()
            return revision + 1

    def record_step_result(self, instance_id: str, result: StepResult) -> None:
        with self._tx(f"workflow:{instance_id}"):
            row = self._instance_row(instance_id)
            old = row.results.get(result.step_id)
            if old is None or old.attempt <= result.attempt:
                row.results[result.step_id] = copy.deepcopy(result)

    def step_results(self, instance_id: str) -> dict[str, StepResult]:
        with self._lock:
            return dict(self._instance_row(instance_id).results)

"""What the server's durable workflow driver needs of a store, beyond
:class:`~muster.engine.workflow_store.WorkflowStore`.

The in-process driver keeps an instance in one process's memory; the server's
driver (:mod:`muster.services.workflows`) may run in several processes at once
and must survive a ``kill -9``. So it claims instances with a lease, commits a
pass (state, results, the executions steps dispatch, approval requests) as one
compare-and-set on the instance's revision, and keeps the links from steps to
their executions and approval requests. :class:`DurableWorkflowStore` names
those operations; the SQL store implements them
(:mod:`muster.store.workflow_store`), and so does ``InMemoryStore``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from muster.domain.approvals import ApprovalRequest
from muster.domain.secret import Secret
from muster.domain.workflows import InstanceState, StepResult, Workflow
from muster.engine.workflow_store import InstanceRecord, WorkflowRecord, WorkflowStore
from muster.store.base import NewExecution

__all__ = [
    "ChildInstance",
    "Dispatch",
    "DurableWorkflowStore",
    "InstanceDetail",
    "StepLink",
    "WindowHold",
]


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A host step's attempt as executions (one per distinct rendering of its body)."""

    step_id: str
    executions: Sequence[NewExecution]


@dataclass(frozen=True, slots=True)
class ChildInstance:
    """An instance a rollout starts (one host's part of a wave, a soak check, a
    rollback step): its id is chosen by the caller, so the rollout's own state can
    name it in the same transaction that creates it."""

    id: str
    state: InstanceState
    params: Mapping[str, Any]
    targets: str | None
    context: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StepLink:
    """What a step is running as: its executions and its approval request."""

    execution_ids: tuple[str, ...] = ()
    approval_id: str | None = None
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class WindowHold:
    """Host runs the queue keeps back outside their maintenance window."""

    #: The queue's reason ("outside maintenance window; next opens ...").
    reason: str
    opens_at: dt.datetime


@dataclass(frozen=True, slots=True)
class InstanceDetail:
    record: InstanceRecord
    links: Mapping[str, StepLink]
    results: Mapping[str, StepResult]
    #: Pinned script versions and the starter's permissions (see the driver).
    context: Mapping[str, Any] = field(default_factory=dict)
    owner: str | None = None
    wake_at: dt.datetime | None = None


class DurableWorkflowStore(WorkflowStore, Protocol):
    """Claims, one-transaction progress and links (see the module docstring)."""

    def save_workflow(
        self, workflow: Workflow, *, created_by: str | None = None, source: str | None = None
    ) -> tuple[WorkflowRecord, bool]: ...
    def create_instance(
        self,
        workflow: Any,
        state: InstanceState,
        *,
        params: Mapping[str, Any],
        targets: str | None = None,
        created_by: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> InstanceRecord: ...
    def count_instances(self, *, workflow: str | None = None, status: Any = None) -> int: ...
    def workflow_source(self, name: str, version: int | None = None) -> str: ...
    def list_workflow_versions(self, name: str) -> list[Any]: ...
    def instance_detail(self, instance_id: str) -> InstanceDetail: ...
    def open_instance_secrets(self, instance_id: str) -> dict[str, Secret]: ...
    def executions_finished(self, execution_ids: Sequence[str]) -> set[str]: ...
    def window_holds(self, execution_ids: Sequence[str]) -> dict[str, WindowHold]: ...
    def claim_instances(self, owner: str, *, limit: int, lease_seconds: float) -> list[str]: ...
    def release_instance(
        self, instance_id: str, owner: str, *, wake_at: dt.datetime | None
    ) -> bool: ...
    def poke_instance(self, instance_id: str) -> None: ...
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
    ) -> tuple[int, dict[str, tuple[str, ...]]]: ...
    def commit_rollout(
        self,
        instance_id: str,
        state: InstanceState,
        *,
        revision: int,
        context: Mapping[str, Any],
        children: Sequence[ChildInstance] = (),
    ) -> int: ...

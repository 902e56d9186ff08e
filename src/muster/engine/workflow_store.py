"""Where workflow definitions and instances live: the :class:`WorkflowStore` protocol.

Defined here, beside the engine that drives instances through it, because the
engine may not import ``muster.store`` (import-linter ``engine-below``);
``muster.store.protocols`` re-exports it. Implementations:
:class:`muster.testing.InMemoryStore` (in-process runs, tests) and the SQL store.

Contract:

* Definitions are versioned by name: saving changed content makes version
  N+1; saving identical content (same :func:`~muster.domain.workflows.workflow_hash`)
  makes nothing new. Every version stays readable (instances pin one).
* An instance's state is written with a compare-and-set on ``revision``: a
  writer that read revision R saves only if the instance is still at R (else
  ConflictError, nothing written) and gets R+1. ``state.changed`` names the
  steps moved since the last save, so a store may write only those rows; a
  store must still persist the instance-level fields every time.
* Parameter values are stored with secrets replaced by ``***``: a secret
  lives only in the memory of the driver that runs the instance.
* Step results keep the newest attempt per step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from muster.domain.workflows import InstanceState, InstanceStatus, StepResult, Workflow

__all__ = ["InstanceRecord", "WorkflowRecord", "WorkflowStore", "stored_params"]


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """One saved version of a definition."""

    name: str
    version: int
    content_hash: str
    workflow: Workflow
    created_at: dt.datetime
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One run of a pinned definition version, as last saved."""

    id: str
    workflow: str
    version: int
    content_hash: str
    state: InstanceState
    #: Coerced values; secrets appear as ``***``.
    params: Mapping[str, Any]
    targets: str | None
    created_at: dt.datetime
    created_by: str | None
    revision: int

    @property
    def status(self) -> InstanceStatus:
        return self.state.status


def stored_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as a store keeps them: secrets masked, everything else as given."""
    from muster.domain.secret import Secret

    return {k: ("***" if isinstance(v, Secret) else v) for k, v in values.items()}


@runtime_checkable
class WorkflowStore(Protocol):
    """Workflow definitions and instances (see the module docstring)."""

    def save_workflow(
        self, workflow: Workflow, *, created_by: str | None = None
    ) -> tuple[WorkflowRecord, bool]:
        """Save ``workflow`` (already validated); return the version and whether it is new."""
        ...

    def get_workflow(self, name: str, version: int | None = None) -> WorkflowRecord:
        """The newest version, or ``version``; NotFoundError when absent."""
        ...

    def list_workflows(self) -> list[WorkflowRecord]:
        """The newest version of every workflow, by name."""
        ...

    def delete_workflow(self, name: str) -> None:
        """Delete every version (NotFoundError when absent; ConflictError while an
        instance of it is not finished)."""
        ...

    def create_instance(
        self,
        workflow: WorkflowRecord,
        state: InstanceState,
        *,
        params: Mapping[str, Any],
        targets: str | None = None,
        created_by: str | None = None,
    ) -> InstanceRecord:
        """Store a new instance at revision 1 (secrets in ``params`` are masked)."""
        ...

    def get_instance(self, instance_id: str) -> InstanceRecord: ...

    def list_instances(
        self,
        *,
        workflow: str | None = None,
        status: InstanceStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[InstanceRecord]:
        """Newest first."""
        ...

    def save_instance(self, instance_id: str, state: InstanceState, *, revision: int) -> int:
        """Compare-and-set: write ``state`` if the instance is at ``revision``; return
        the new revision (ConflictError if it moved). Clears ``state.changed``."""
        ...

    def record_step_result(self, instance_id: str, result: StepResult) -> None:
        """Keep ``result`` as the step's newest (replacing an older attempt)."""
        ...

    def step_results(self, instance_id: str) -> dict[str, StepResult]:
        """The newest result of every host step that has one."""
        ...

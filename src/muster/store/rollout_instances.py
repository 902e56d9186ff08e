"""The one write of a rollout run by the server: its state and the instances it starts.

A rollout on the server is a workflow instance whose ``context`` holds the
rollout's state (waves, gates, each host's instance, rollback outcomes; see
:mod:`muster.services.rollout_driver`). Each pass of the rollout driver writes
that state and creates the instances it decided to start (one per host of a
wave, a soak check, a rollback step) in one transaction, at the revision it
read: a pass that lost a race (another process, a user's pause) writes nothing,
so no wave starts twice on a host whatever is killed when.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import update

from muster.domain.workflows import InstanceState
from muster.store.workflow_durable import ChildInstance
from muster.store.workflow_store import WORKFLOWS_KEY, WorkflowSqlOps, instance_key
from muster.store.workflow_tables import workflow_instances

__all__ = ["RolloutInstanceOps"]


class RolloutInstanceOps(WorkflowSqlOps):
    """``commit_rollout`` (see the module docstring)."""

    def commit_rollout(
        self,
        instance_id: str,
        state: InstanceState,
        *,
        revision: int,
        context: Mapping[str, Any],
        children: Sequence[ChildInstance] = (),
    ) -> int:
        """Write the rollout's state and ``context`` and create ``children``, if the
        instance is still at ``revision`` (else ConflictError, nothing written)."""
        now = self.clock()
        with self._tx(notify=(instance_key(instance_id), WORKFLOWS_KEY)) as tx:
            conn = tx.conn
            new_revision = self._save_instance_state(conn, instance_id, state, revision)
            parent = self._wf_instance(conn, instance_id)
            # The hosts' instances belong to the definition version the rollout runs.
            version = SimpleNamespace(
                name=parent.workflow, version=parent.version, content_hash=parent.content_hash
            )
            conn.execute(
                update(workflow_instances)
                .where(workflow_instances.c.id == instance_id)
                .values(context=dict(context))
            )
            for child in children:
                self._insert_instance(
                    conn,
                    version,
                    child.state,
                    child.params,
                    child.targets,
                    parent.created_by,
                    child.context,
                    now,
                    iid=child.id,
                )
            return new_revision

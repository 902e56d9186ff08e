"""Tables of workflows: definitions (versioned like scripts), instances and their steps.

On the shared metadata, in their own module (migration ``0012_workflows``).

* ``workflows`` / ``workflow_versions``: a definition is pushed by name; changed
  content is version N+1 (its SHA-256 ``content_hash``), identical content adds
  none; every version stays startable. ``source`` is the text as pushed (YAML
  or JSON), ``definition`` its canonical data.
* ``workflow_instances``: one run of one pinned version. ``machine`` is the
  engine's state of the instance (the same state machine the in-process driver
  runs); ``revision`` makes every write a compare-and-set. ``owner`` /
  ``lease_expires_at`` is the claim of the process advancing it (several
  servers and workers may run the advance loop; one holds an instance at a
  time); ``wake_at`` is the next instant a timer (delay, approval deadline,
  pause end) needs it.
* ``workflow_steps``: one row per (instance, step): the step's state, attempt,
  the executions that run it (one per distinct rendering of its body), the
  approval request of an approval step, its per-host results and timing.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from muster.store.tables import UTCDateTime, metadata

__all__ = [
    "workflow_instances",
    "workflow_secret_aad",
    "workflow_steps",
    "workflow_versions",
    "workflows",
]

workflows = Table(
    "workflows",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("latest_version", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("name"),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column(
        "workflow_id",
        String(36),
        ForeignKey("workflows.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("number", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("steps", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(128)),
)

workflow_instances = Table(
    "workflow_instances",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("workflow_id", String(36), ForeignKey("workflows.id", ondelete="CASCADE")),
    Column("workflow_name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("waiting_reason", Text),
    #: Values with secrets as ``***``; the sealed ones are in ``secrets``.
    Column("parameters", JSON, nullable=False),
    Column("secrets", JSON, nullable=False),
    Column("targets", Text),
    Column("machine", JSON, nullable=False),
    #: What the durable driver keeps beside the state: pinned script versions, who
    #: started it (the permissions its steps run with).
    Column("context", JSON, nullable=False),
    Column("revision", Integer, nullable=False, default=0),
    Column("owner", String(128)),
    Column("lease_expires_at", UTCDateTime),
    Column("wake_at", UTCDateTime),
    Column("paused_until", UTCDateTime),
    Column("requested_by", String(128)),
    Column("message", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Index("ix_workflow_instances_status_wake_at", "status", "wake_at"),
    Index("ix_workflow_instances_workflow_id_created_at", "workflow_id", "created_at"),
)

workflow_steps = Table(
    "workflow_steps",
    metadata,
    Column(
        "instance_id",
        String(36),
        ForeignKey("workflow_instances.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step_id", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("execution_ids", JSON, nullable=False),
    Column("approval_id", String(36)),
    #: The engine's StepState of the step (wait reason, wake time, pause, message...).
    Column("data", JSON, nullable=False),
    #: The engine's StepResult of the last attempt (per-host outcome and output).
    Column("result", JSON),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
)


def workflow_secret_aad(instance_id: str, name: str) -> str:
    """What a sealed workflow parameter is bound to: its instance and its name, so a
    token copied to another instance or field does not open."""
    return f"workflow_instance:{instance_id}:{name}"

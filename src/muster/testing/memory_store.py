"""A :class:`~muster.store.base.Store` held in memory, keeping the SQL store's contract.

Use it where a test (ours or a user's) needs a store but not a database:
worker and service unit tests, in-process runs. It keeps every invariant of
``store/base.py`` and raises the same errors as the SQL store
(``NotFoundError``, ``ValidationError``, ``ConflictError``,
``StateTransitionError``, ``OperationCancelledError``); the Store contract
suite in ``tests/integration/store`` runs the same tests on SQLite,
PostgreSQL and this class.

How it keeps them:

- **One lock.** Every operation runs under one lock, so each is atomic, as a
  transaction is; an operation that raises has changed nothing (it checks
  before it writes). Notifications go out after the lock is released, as
  after a commit.
- **Compare-and-set.** Every host-run state change goes through
  :meth:`InMemoryStore._move`, which checks the transition with
  :func:`~muster.domain.states.check_transition` and then (state, owner,
  epoch); a loser changes nothing. Claims and lease expiries bump the
  epoch, so a late worker's heartbeat, output and finish all lose.
- **Roll-up.** Each execution keeps counters of its current host runs'
  states, moved with every change, and its status is
  :func:`~muster.domain.states.rollup` of them.
- **Secrets.** Values given as :class:`~muster.domain.secret.Secret` are
  stored as ``***`` in the record and kept wrapped, apart, for the claiming
  worker only: nothing readable holds them in clear.

It also keeps the webhook outbox's contract
(:class:`~muster.store.outbox.WebhookStore`: one row per event key, leased
claims, compare-and-set finishes), so the webhook services run on it, and
maintenance windows (:class:`~muster.store.windows.WindowStore`: the claim's
gate, holds, overrides and the sweep at closes), and worker presence
(:class:`~muster.store.worker_records.WorkerStore`: heartbeats, the drain flag).

And it keeps workflow definitions and instances
(:class:`~muster.engine.workflow_store.WorkflowStore`: versions by content
hash, compare-and-set on an instance's revision, secrets never kept).

And the schedules' contract (:class:`~muster.store.schedule_records.ScheduleStore`:
one firing per (schedule, due time), fired atomically with its execution), so
the scheduler runs on it.

And published rollout reports
(:class:`~muster.store.rollout_reports.RolloutReportStore`: stored once by
content hash, a different document under a stored id refused).

It needs no vault (there is nothing to seal) and imports no SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from muster.testing._memory_catalog import CatalogOps
from muster.testing._memory_executions import ExecutionOps
from muster.testing._memory_queue import QueueOps
from muster.testing._memory_rollout_reports import RolloutReportOps
from muster.testing._memory_schedules import ScheduleOps
from muster.testing._memory_webhooks import WebhookOps
from muster.testing._memory_windows import WindowOps
from muster.testing._memory_workers import WorkerOps
from muster.testing._memory_workflows import WorkflowOps

if TYPE_CHECKING:
    from muster.engine.workflow_store import WorkflowStore
    from muster.store.base import Store
    from muster.store.outbox import WebhookStore
    from muster.store.schedule_records import ScheduleStore

__all__ = ["InMemoryStore"]


class InMemoryStore(
    CatalogOps,
    ExecutionOps,
    QueueOps,
    WebhookOps,
    WindowOps,
    WorkerOps,
    WorkflowOps,
    ScheduleOps,
    RolloutReportOps,
):
    """The Store contract in memory; see the module docstring.

    ``clock``, ``output_cap_bytes``, ``tail_chars`` and ``queued_timeout``
    mean what they mean for ``SqlStore``. ``notifier`` receives the same
    wake-up keys (``queue``, ``execution:<id>``), so a Worker or an output
    stream waiting on it wakes as it would on the SQL store.
    """


if TYPE_CHECKING:

    def _keeps_the_protocol(store: InMemoryStore) -> Store:
        """mypy checks here that every Store method exists with its signature."""
        return store

    def _keeps_the_webhook_protocol(store: InMemoryStore) -> WebhookStore:
        return store

    def _keeps_the_workflow_protocol(store: InMemoryStore) -> WorkflowStore:
        return store

    def _keeps_the_schedule_protocol(store: InMemoryStore) -> ScheduleStore:
        return store

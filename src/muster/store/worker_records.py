"""Worker processes in the store: the :class:`WorkerStore` protocol and its record.

Every worker (``muster worker``, the one inside ``muster serve``) registers
a row when it starts and writes its state with each heartbeat; the same
write reads back whether someone asked it to drain, so a drain reaches any
worker of the fleet through the database, on whichever machine it runs. The
flag is the operator's request (who, when); the state is the worker's
answer (``draining`` while it finishes what it holds, ``drained`` when it
holds nothing). Rows are kept after a worker stops or is lost, so a listing
shows what happened to it.

SQLAlchemy-free: the in-memory store, the worker and the services import it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Protocol

from muster.domain.workers import REPORTED_STATES, WorkerState, observed_state
from muster.errors import ConflictError, ValidationError

__all__ = ["MAX_WORKER_ID", "WorkerRecord", "WorkerStore", "check_report", "drain_refusal"]

#: As long as a host run's ``owner`` column: a worker id is what it claims with.
MAX_WORKER_ID: Final = 128


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """One worker process as stored, with the runs it holds now."""

    id: str
    hostname: str
    pid: int
    started_at: dt.datetime
    last_heartbeat: dt.datetime
    lease_seconds: float
    #: What the worker last reported (never ``lost``: see :meth:`observed`).
    state: WorkerState
    drain_requested: bool
    drain_requested_at: dt.datetime | None
    drain_requested_by: str | None
    stopped_at: dt.datetime | None
    #: Host runs it has claimed and not yet finished (a count, read with the row).
    runs_held: int = 0

    def observed(self, now: dt.datetime) -> WorkerState:
        """The state to show: ``lost`` when its heartbeat is older than its lease."""
        return observed_state(self.state, self.last_heartbeat, self.lease_seconds, now)


def check_report(worker_id: str, state: WorkerState) -> None:
    """Refuse what no store may record: an over-long id, or a worker reporting ``lost``."""
    if not worker_id or len(worker_id) > MAX_WORKER_ID:
        raise ValidationError(
            f"a worker id must be 1 to {MAX_WORKER_ID} characters (got {len(worker_id)})",
            field="worker_id",
        )
    if state not in REPORTED_STATES:
        raise ValidationError(
            f"a worker cannot report itself {state.value}: that is read from a stale heartbeat",
            field="state",
        )


def drain_refusal(record: WorkerRecord) -> None:
    """A worker that stopped cleanly has nothing to drain: say so instead of storing it."""
    if record.state is WorkerState.STOPPED:
        raise ConflictError(f"worker {record.id} has stopped; there is nothing to drain")


class WorkerStore(Protocol):
    """Worker presence and the drain each worker reads with its heartbeat."""

    def register_worker(
        self, worker_id: str, *, hostname: str, pid: int, lease_seconds: float
    ) -> WorkerRecord:
        """Create (or, for an id seen before, restart) the row as ``running``, no drain
        asked unless one is already pending for this id."""
        ...

    def report_worker(self, worker_id: str, state: WorkerState) -> WorkerRecord | None:
        """Heartbeat: store ``state`` and now; the row (with the drain flag) or None
        when no row exists (the worker then registers again)."""
        ...

    def request_drain(self, worker_id: str, by: str | None) -> WorkerRecord:
        """Ask a worker to stop claiming; NotFoundError / ConflictError (stopped)."""
        ...

    def request_resume(self, worker_id: str, by: str | None) -> WorkerRecord:
        """Withdraw a drain; the worker claims again at its next heartbeat."""
        ...

    def get_worker(self, worker_id: str) -> WorkerRecord: ...
    def list_workers(self) -> list[WorkerRecord]:
        """Every worker ever registered, newest heartbeat first."""
        ...

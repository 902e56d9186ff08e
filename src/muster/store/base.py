"""The Store: named operations on persisted scripts, hosts, executions and the queue.

One Protocol per area (:class:`ScriptStore`, :class:`HostStore`,
:class:`ExecutionStore`, :class:`QueueStore`, :class:`OutputStore`,
:class:`ConsoleReads`, :class:`HealthReads`), joined as :class:`Store`: the
engine and workers speak only these, so a caller names the area it uses.
``SqlStore`` implements them over SQLAlchemy (SQLite or PostgreSQL),
``muster.testing.InMemoryStore`` in memory; the server's other areas
(identities, audit, approvals, credentials) are in :mod:`muster.store.protocols`.
Operations are synchronous and each is one transaction; async callers run
them in a thread.

Queue invariants every implementation keeps:

- every host-run state change is a compare-and-set on (state, owner, epoch)
  checked against :func:`muster.domain.states.check_transition`, and returns
  whether it won; a loser changes nothing;
- a claim bumps ``epoch``; a lease expiry bumps it again, so a late worker's
  heartbeat, output and finish all lose;
- an execution's ``status`` is ``rollup()`` of its host runs' states, kept in
  the same transaction as every change to them;
- secret parameter values are never stored in clear (``***`` in records,
  AES-GCM tokens in their own table, opened only for the claiming worker).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from muster.domain.approvals import ApprovalRequest
from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec
from muster.domain.result_groups import RunDigest
from muster.domain.scripts import Library, ScriptVersion, Shell
from muster.domain.states import ExecutionStatus, FailureReason, HostRunState, Priority
from muster.domain.throttle import Throttle
from muster.store.rollout_reports import RolloutReportStore
from muster.store.windows import WindowStore
from muster.store.worker_records import WorkerStore

__all__ = [
    "CANCELLABLE_STATES",
    "OUTPUT_STREAMS",
    "RETRYABLE_STATES",
    "WAITING_FOR_APPROVAL",
    "WAITING_FOR_WORKER",
    "ClaimedRun",
    "ConsoleReads",
    "ExecutionKind",
    "ExecutionRecord",
    "ExecutionStore",
    "FleetFacets",
    "GridCell",
    "HealthReads",
    "HostRecord",
    "HostRunRecord",
    "HostStore",
    "HostTarget",
    "LeaseStatus",
    "NewExecution",
    "OutputChunk",
    "OutputStore",
    "Page",
    "QueueStore",
    "ReapReport",
    "RunDigest",
    "RunResult",
    "SavedScript",
    "ScriptRecord",
    "ScriptStore",
    "Store",
    "StoreCounts",
    "VersionRecord",
    "output_cap_marker",
]

T = TypeVar("T")

WAITING_FOR_WORKER = "waiting for a free worker"
WAITING_FOR_APPROVAL = "awaiting approval"

#: The streams a host run's output is kept in; the cap counts them together.
OUTPUT_STREAMS = ("stdout", "stderr")
#: Seed 001: retry applies to these host-run states (a new attempt, the old one kept).
RETRYABLE_STATES = frozenset({HostRunState.FAILED, HostRunState.TIMED_OUT, HostRunState.LOST})
#: Seed 001: cancel applies to these host-run states.
CANCELLABLE_STATES = frozenset(
    {HostRunState.PENDING_APPROVAL, HostRunState.QUEUED, HostRunState.RUNNING}
)


def output_cap_marker(stream: str, cap: int) -> str:
    """The chunk every store appends, once per stream, when a run's stored output
    reaches ``cap`` bytes: truncation is stated in the stream, never silent."""
    return (
        f"\n[muster: {stream} truncated: this host run reached its stored-output cap of "
        f"{cap} bytes; later output is counted but not stored]\n"
    )


class ExecutionKind(enum.StrEnum):
    SCRIPT = "script"
    COMMAND = "command"
    #: A built-in job type (seed 001); ``job_type`` names it.
    JOB = "job"
    #: A plan rendered by the workflow engine for a step (``policy["plan"]``, with
    #: ``{run_id}`` standing for the host run's id; its environment as ``env:NAME``
    #: values): what the step's hosts run, byte for byte as in-process.
    PLAN = "plan"


class LeaseStatus(enum.StrEnum):
    """What a heartbeat learned about one held run."""

    RENEWED = "renewed"
    #: Renewed, and a user asked to cancel: kill it and finish ``cancelled``.
    CANCEL_REQUESTED = "cancel_requested"
    #: No longer ours (reaped, cancelled before start, finished): stop, write nothing.
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class ScriptRecord:
    id: str
    name: str
    description: str
    tags: tuple[str, ...]
    latest_version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One stored, immutable script version; :meth:`domain` rebuilds the domain object."""

    script_id: str
    script_name: str
    number: int
    content_hash: str
    shell: Shell
    body: str
    parameters: tuple[ParameterSpec, ...]
    timeout: float
    requires_approval: bool
    idempotent: bool
    libraries: tuple[Library, ...]
    description: str
    created_at: dt.datetime
    created_by: str | None

    def domain(self) -> ScriptVersion:
        return ScriptVersion(
            name=self.script_name,
            shell=self.shell,
            body=self.body,
            parameters=self.parameters,
            timeout=self.timeout,
            requires_approval=self.requires_approval,
            idempotent=self.idempotent,
            libraries=self.libraries,
            description=self.description,
            version=self.number,
        )


@dataclass(frozen=True, slots=True)
class SavedScript:
    script: ScriptRecord
    version: VersionRecord
    #: False when the content equalled the latest version (nothing was added).
    created: bool


@dataclass(frozen=True, slots=True)
class HostRecord:
    id: str
    name: str
    address: str | None
    port: int
    user: str | None
    transport: TransportKind
    platform: str
    shells: tuple[str, ...]
    labels: Mapping[str, str]
    groups: tuple[str, ...]
    vars: Mapping[str, str]
    key_file: str | None
    credential_ref: str | None
    last_contact: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_host(self) -> Host:
        return Host(
            name=self.name,
            address=self.address,
            port=self.port,
            user=self.user,
            transport=self.transport,
            platform=self.platform,
            shells=self.shells,
            labels=dict(self.labels),
            groups=self.groups,
            vars=dict(self.vars),
            key_file=self.key_file,
            credential_ref=self.credential_ref,
            id=self.id,
        )


@dataclass(frozen=True, slots=True)
class HostTarget:
    """One host an execution goes to; ``skip_reason`` set means recorded as skipped."""

    host_id: str | None
    host_name: str
    skip_reason: str | None = None
    #: The host's groups (``domain.throttle.group_key``): per-group limits count them.
    group_key: str | None = None


@dataclass(frozen=True, slots=True)
class NewExecution:
    """What to persist for one execution request (already validated by the caller).

    ``parameters`` may hold :class:`~muster.domain.secret.Secret` values: they
    are stored as ``***`` and sealed separately, never in clear. For a job,
    ``parameters`` are the job type's fields.
    """

    kind: ExecutionKind
    targets: Sequence[HostTarget]
    timeout: float
    priority: Priority = Priority.NORMAL
    parameters: Mapping[str, object] = field(default_factory=dict)
    script_id: str | None = None
    script_version: int | None = None
    content_hash: str | None = None
    idempotent: bool = False
    requires_approval: bool = False
    command: str | None = None
    shell: str | None = None
    job_type: str | None = None
    description: str = ""
    requested_by: str | None = None
    policy: Mapping[str, Any] = field(default_factory=dict)
    #: forks / per_group / delay, kept by every claim across workers.
    throttle: Throttle = field(default_factory=Throttle)


@dataclass(frozen=True, slots=True)
class HostRunRecord:
    id: str
    execution_id: str
    host_id: str | None
    host_name: str
    state: HostRunState
    attempt: int
    retry_of: str | None
    #: A later attempt replaced this one (kept as history, not in the roll-up).
    superseded: bool
    priority: Priority
    timeout: float
    queued_at: dt.datetime
    available_at: dt.datetime
    claimed_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    exit_code: int | None
    reason: str | None
    message: str | None
    waiting_reason: str | None
    owner: str | None
    epoch: int
    lease_expires_at: dt.datetime | None
    cancel_requested: bool
    stdout_tail: str
    stderr_tail: str
    stdout_bytes: int
    stderr_bytes: int
    stored_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool
    chunks: int
    events: int

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    id: str
    kind: ExecutionKind
    job_type: str | None
    description: str
    script_id: str | None
    script_version: int | None
    content_hash: str | None
    command: str | None
    shell: str | None
    timeout: float
    idempotent: bool
    #: Secret values shown as ``***``.
    parameters: Mapping[str, Any]
    secret_fields: tuple[str, ...]
    priority: Priority
    requested_by: str | None
    policy: Mapping[str, Any]
    created_at: dt.datetime
    finished_at: dt.datetime | None
    status: ExecutionStatus
    #: Host runs per state (every state present, zeros included).
    counts: Mapping[str, int]
    #: Filled by ``get_execution``; empty in listings.
    host_runs: tuple[HostRunRecord, ...] = ()
    throttle: Throttle = field(default_factory=Throttle)


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """Everything a worker needs to run one claimed host run, secrets opened."""

    run: HostRunRecord
    execution: ExecutionRecord
    #: None when the host was deleted after the execution was queued.
    host: Host | None
    #: The pinned version for a script execution.
    version: ScriptVersion | None
    #: Parameter (or job field) values with secrets as ``Secret``.
    values: Mapping[str, object]

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def epoch(self) -> int:
        return self.run.epoch


@dataclass(frozen=True, slots=True)
class OutputChunk:
    #: Strictly increasing across the database: the SSE event id.
    id: int
    execution_id: str
    host_run_id: str
    stream: str
    seq: int
    data: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one held run ended, for :meth:`Store.finish_host_runs`."""

    run_id: str
    epoch: int
    state: HostRunState
    exit_code: int | None = None
    reason: FailureReason | str | None = None
    message: str = ""
    events: int = 0


@dataclass(frozen=True, slots=True)
class ReapReport:
    requeued: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    #: New attempts queued for lost runs of idempotent versions.
    retried: tuple[str, ...] = ()
    timed_out: tuple[str, ...] = ()
    not_picked_up: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(
            len(x)
            for x in (self.requeued, self.lost, self.timed_out, self.not_picked_up, self.cancelled)
        )


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What ``/metrics`` reports about stored work, read in one pass."""

    executions_by_status: Mapping[str, int]
    host_runs_by_state: Mapping[str, int]
    #: Host runs queued and waiting for a worker.
    queue_depth: int
    #: Distinct workers holding a lease that has not expired.
    active_owners: int


@dataclass(frozen=True, slots=True)
class GridCell:
    """One host's square in the console's execution grid."""

    run_id: str
    host_name: str
    state: HostRunState
    exit_code: int | None
    attempt: int


@dataclass(frozen=True, slots=True)
class FleetFacets:
    """Every group, ``label=value`` and host name: the host picker's suggestions."""

    groups: tuple[str, ...]
    labels: tuple[str, ...]
    names: tuple[str, ...]


class ScriptStore(Protocol):
    """The script library: versions are immutable; saving equal content adds none."""

    def save_script(
        self,
        content: ScriptVersion,
        *,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        created_by: str | None = None,
    ) -> SavedScript: ...
    def restore_version(
        self, script_id: str, number: int, *, created_by: str | None = None
    ) -> SavedScript: ...
    def get_script(self, id_or_name: str) -> ScriptRecord: ...
    def list_scripts(
        self,
        *,
        tag: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[ScriptRecord]: ...
    def get_version(self, script_id: str, number: int | None = None) -> VersionRecord: ...
    def list_versions(self, script_id: str) -> list[VersionRecord]: ...
    def delete_script(self, script_id: str) -> None: ...


class HostStore(Protocol):
    """The inventory of hosts."""

    def create_host(self, host: Host) -> HostRecord: ...
    def upsert_hosts(
        self,
        hosts: Sequence[Host],
        *,
        update_existing: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[list[str], list[str]]: ...
    def update_host(self, host_id: str, **changes: Any) -> HostRecord: ...
    def get_host(self, id_or_name: str) -> HostRecord: ...
    def list_hosts(self) -> list[HostRecord]: ...
    def delete_host(self, host_id: str) -> None: ...
    def touch_host(self, host_id: str) -> None: ...


class ExecutionStore(Protocol):
    """Executions and their host runs, and the actions on them (cancel, retry, delete,
    approve, reject)."""

    def create_execution(self, new: NewExecution) -> ExecutionRecord: ...
    def get_execution(self, execution_id: str) -> ExecutionRecord: ...
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
    ) -> Page[ExecutionRecord]: ...
    def get_host_run(self, run_id: str) -> HostRunRecord: ...
    def cancel_execution(self, execution_id: str) -> ExecutionRecord: ...
    def cancel_host_run(self, run_id: str) -> HostRunRecord: ...
    def retry_execution(
        self,
        execution_id: str,
        *,
        approval: ApprovalRequest | None = None,
        approval_record: Mapping[str, Any] | None = None,
    ) -> ExecutionRecord: ...
    def retry_host_run(self, run_id: str) -> HostRunRecord: ...
    def delete_execution(self, execution_id: str) -> None: ...
    def approve_execution(self, execution_id: str) -> ExecutionRecord: ...
    def reject_execution(self, execution_id: str, message: str) -> ExecutionRecord: ...
    def set_waiting_reason(self, run_ids: Sequence[str], reason: str) -> int: ...


class QueueStore(Protocol):
    """Claims, leases and outcomes: every change a compare-and-set on (state, owner, epoch)."""

    def claim_host_runs(
        self, worker_id: str, limit: int, lease_seconds: float
    ) -> list[ClaimedRun]: ...
    def mark_started(self, run_id: str, owner: str, epoch: int) -> bool: ...
    def mark_started_many(self, owner: str, runs: Sequence[tuple[str, int]]) -> set[str]: ...
    def heartbeat(
        self, worker_id: str, runs: Sequence[tuple[str, int]], lease_seconds: float
    ) -> dict[str, LeaseStatus]: ...
    def finish_host_run(
        self,
        run_id: str,
        owner: str,
        epoch: int,
        state: HostRunState,
        *,
        exit_code: int | None = None,
        reason: FailureReason | str | None = None,
        message: str = "",
        events: int = 0,
    ) -> bool: ...
    def finish_host_runs(self, owner: str, results: Sequence[RunResult]) -> set[str]: ...
    def release_host_run(self, run_id: str, owner: str, epoch: int, why: str) -> bool: ...
    def reap(self, now: dt.datetime | None = None) -> ReapReport: ...


class OutputStore(Protocol):
    """Captured output, bounded per host run, appended only by the run's holder."""

    def append_output(
        self,
        run_id: str,
        owner: str,
        epoch: int,
        stream: str,
        text: str,
        *,
        dropped_bytes: int = 0,
    ) -> bool: ...
    def read_output(
        self,
        *,
        execution_id: str | None = None,
        run_id: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[OutputChunk]: ...
    def iter_output(self, run_id: str, stream: str | None = None) -> Iterator[OutputChunk]: ...


class ConsoleReads(Protocol):
    """The console's reads: compact rows, so a page over thousands of hosts stays cheap."""

    def fleet_facets(self) -> FleetFacets: ...
    def host_page(
        self, *, search: str = "", group: str = "", limit: int = 200, offset: int = 0
    ) -> tuple[Page[HostRecord], int]: ...
    def execution_header(self, execution_id: str) -> ExecutionRecord: ...
    def grid_page(
        self,
        execution_id: str,
        *,
        states: Sequence[HostRunState] | None = None,
        hosts: Sequence[str] | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> Page[GridCell]: ...
    def run_digests(self, execution_id: str) -> list[RunDigest]: ...
    def host_recent_runs(
        self, host_id: str, host_name: str, limit: int = 25
    ) -> list[tuple[HostRunRecord, str]]: ...
    def run_in_execution(self, execution_id: str, run_id: str) -> HostRunRecord: ...
    def host_last_results(self, host_ids: Sequence[str]) -> dict[str, HostRunRecord]:
        """Per host id, its newest finished (terminal, current) host run; hosts
        that never finished one are left out."""
        ...


class HealthReads(Protocol):
    """Health and metrics."""

    def ping(self) -> bool: ...
    def read_counts(self) -> StoreCounts: ...


class Store(
    WindowStore,
    WorkerStore,
    RolloutReportStore,
    ScriptStore,
    HostStore,
    ExecutionStore,
    QueueStore,
    OutputStore,
    ConsoleReads,
    HealthReads,
    Protocol,
):
    """Persisted state of the server, every area above; see the module docstring for its
    invariants. The engine and workers need only this; the server's other areas are in
    :mod:`muster.store.protocols`."""

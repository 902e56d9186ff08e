"""The in-memory store's mutable rows and the immutable records read from them.

One place knows how a row becomes a record, so every read returns fresh
records (new dicts and lists): a caller that changes a record it was given
never changes what is stored, as with a database.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from muster.domain.secret import Secret
from muster.domain.states import ExecutionStatus, HostRunState, Priority
from muster.domain.throttle import Throttle
from muster.store.base import (
    ExecutionKind,
    ExecutionRecord,
    HostRecord,
    HostRunRecord,
    ScriptRecord,
    VersionRecord,
)

__all__ = ["ExecutionRow", "RunRow", "ScriptRow", "as_json", "fresh_host"]

#: Every host-run state, in the order of the SQL store's counter columns.
STATES: tuple[str, ...] = tuple(s.value for s in HostRunState)

_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(HostRunRecord))


def as_json(value: Any) -> Any:
    """``value`` as a JSON column gives it back (tuples become lists, keys strings);
    what JSON cannot hold raises, as the SQL store's insert would."""
    return json.loads(json.dumps(value))


def fresh_host(rec: HostRecord) -> HostRecord:
    return dataclasses.replace(rec, labels=dict(rec.labels), vars=dict(rec.vars))


@dataclass(slots=True)
class ScriptRow:
    id: str
    name: str
    description: str
    tags: list[str]
    latest_version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None = None
    #: Immutable versions by number.
    versions: dict[int, VersionRecord] = field(default_factory=dict)

    def record(self) -> ScriptRecord:
        return ScriptRecord(
            id=self.id,
            name=self.name,
            description=self.description,
            tags=tuple(self.tags),
            latest_version=self.latest_version,
            created_at=self.created_at,
            updated_at=self.updated_at,
            deleted_at=self.deleted_at,
        )


@dataclass(slots=True)
class RunRow:
    """One host run: the fields of :class:`HostRunRecord` plus what the claim needs."""

    id: str
    execution_id: str
    host_id: str | None
    host_name: str
    state: HostRunState
    priority: Priority
    timeout: float
    queued_at: dt.datetime
    available_at: dt.datetime
    attempt: int = 1
    retry_of: str | None = None
    superseded: bool = False
    claimed_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    waiting_reason: str | None = None
    owner: str | None = None
    epoch: int = 0
    lease_expires_at: dt.datetime | None = None
    cancel_requested: bool = False
    stdout_tail: str = ""
    stderr_tail: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stored_bytes: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    chunks: int = 0
    events: int = 0
    #: The host's groups (``domain.throttle.group_key``), for per-group limits.
    group_key: str | None = None
    #: Its execution has limits: claimed only through the throttled path.
    throttled: bool = False

    def record(self) -> HostRunRecord:
        return HostRunRecord(**{name: getattr(self, name) for name in _RUN_FIELDS})


@dataclass(slots=True)
class ExecutionRow:
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
    parameters: dict[str, Any]
    secret_fields: tuple[str, ...]
    priority: Priority
    requested_by: str | None
    policy: dict[str, Any]
    created_at: dt.datetime
    throttle: Throttle
    status: ExecutionStatus
    finished_at: dt.datetime | None = None
    #: Current (not superseded) host runs per state, every state present.
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    #: Run ids in the order they were added (every attempt).
    run_ids: list[str] = field(default_factory=list)
    #: Secret values, never in ``parameters`` (which hold ``***``); handed only to claims.
    secrets: dict[str, Secret] = field(default_factory=dict, repr=False)
    #: With a delay: no run of this execution starts before this time.
    next_start_at: dt.datetime | None = None
    last_claim_at: dt.datetime | None = None

    def record(self, runs: tuple[HostRunRecord, ...] = ()) -> ExecutionRecord:
        return ExecutionRecord(
            id=self.id,
            kind=self.kind,
            job_type=self.job_type,
            description=self.description,
            script_id=self.script_id,
            script_version=self.script_version,
            content_hash=self.content_hash,
            command=self.command,
            shell=self.shell,
            timeout=self.timeout,
            idempotent=self.idempotent,
            parameters=copy.deepcopy(self.parameters),
            secret_fields=self.secret_fields,
            priority=self.priority,
            requested_by=self.requested_by,
            policy=copy.deepcopy(self.policy),
            created_at=self.created_at,
            finished_at=self.finished_at,
            status=self.status,
            counts=dict(self.counts),
            host_runs=runs,
            throttle=self.throttle,
        )

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

It needs no vault (there is nothing to seal) and imports no SQLAlchemy.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from muster.domain.approvals import ApprovalRequest
from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec
from muster.domain.scripts import ScriptVersion
from muster.domain.secret import MASK, Secret
from muster.domain.states import (
    TERMINAL_STATES,
    ExecutionStatus,
    FailureReason,
    HostRunState,
    check_transition,
    rollup,
)
from muster.domain.throttle import pick_within
from muster.errors import ConflictError, NotFoundError, OperationCancelledError, ValidationError
from muster.store.base import (
    CANCELLABLE_STATES,
    OUTPUT_STREAMS,
    RETRYABLE_STATES,
    WAITING_FOR_APPROVAL,
    WAITING_FOR_WORKER,
    ClaimedRun,
    ExecutionRecord,
    FleetFacets,
    GridCell,
    HostRecord,
    HostRunRecord,
    LeaseStatus,
    NewExecution,
    OutputChunk,
    Page,
    ReapReport,
    RunDigest,
    RunResult,
    SavedScript,
    ScriptRecord,
    Store,
    StoreCounts,
    VersionRecord,
    output_cap_marker,
)
from muster.store.notify import QUEUE_KEY, Notifier, execution_key
from muster.testing._memory_rows import (
    ExecutionRow,
    RunRow,
    ScriptRow,
    as_json,
    fresh_host,
)

__all__ = ["InMemoryStore"]

S = HostRunState

#: Hosts written between two ``should_stop`` checks of ``upsert_hosts`` (as the SQL store).
IMPORT_BATCH: Final = 500
#: Runs the reaper settles per call and per kind (as the SQL store).
_REAP_BATCH: Final = 500
#: Throttled executions looked at per claim (as the SQL store).
_THROTTLED_BATCH: Final = 50
#: Characters of the tails the console compares when grouping results.
_DIGEST_CHARS: Final = 200
_PAGE: Final = 500

_HOST_FIELDS: Final = frozenset(
    {
        "name",
        "address",
        "port",
        "user",
        "transport",
        "platform",
        "shells",
        "labels",
        "groups",
        "vars",
        "key_file",
        "credential_ref",
    }
)

#: Sentinel: the compare-and-set does not look at the owner.
_ANY: Final = object()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


def _json_value(name: str, value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | int | float | bool) for v in value
    ):
        return list(value)
    raise ValidationError(
        f"value of {name!r} cannot be stored ({type(value).__name__})", field=name
    )


def _host_columns(host: Host) -> dict[str, Any]:
    return {
        "name": host.name,
        "address": host.address,
        "port": host.port,
        "user": host.user,
        "transport": TransportKind(host.transport),
        "platform": host.platform,
        "shells": tuple(host.shells),
        "labels": dict(host.labels),
        "groups": tuple(host.groups),
        "vars": dict(host.vars),
        "key_file": host.key_file,
        "credential_ref": host.credential_ref,
    }


def _claim_order(run: RunRow) -> tuple[int, dt.datetime, str]:
    return (-run.priority, run.queued_at, run.id)


class _Changes:
    """The wake-up keys one operation sends when it is done."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[str] = []

    def notify(self, key: str) -> None:
        if key not in self.keys:
            self.keys.append(key)


class InMemoryStore:
    """The Store contract in memory; see the module docstring.

    ``clock``, ``output_cap_bytes``, ``tail_chars`` and ``queued_timeout``
    mean what they mean for ``SqlStore``. ``notifier`` receives the same
    wake-up keys (``queue``, ``execution:<id>``), so a Worker or an output
    stream waiting on it wakes as it would on the SQL store.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        notifier: Notifier | None = None,
        output_cap_bytes: int = 1024 * 1024,
        tail_chars: int = 4096,
        queued_timeout: float = 30 * 60.0,
    ) -> None:
        self.clock = clock
        self.notifier = notifier or Notifier()
        self.output_cap_bytes = output_cap_bytes
        self.tail_chars = tail_chars
        self.queued_timeout = queued_timeout
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything stored (between tests sharing one store)."""
        with self._lock:
            self._scripts: dict[str, ScriptRow] = {}
            self._hosts: dict[str, HostRecord] = {}
            self._executions: dict[str, ExecutionRow] = {}
            self._runs: dict[str, RunRow] = {}
            self._chunks_by_run: dict[str, list[OutputChunk]] = {}
            self._chunks_by_execution: dict[str, list[OutputChunk]] = {}
            self._chunk_ids = itertools.count(1)
            #: Approval requests written with a retry, per execution, oldest first.
            self._approvals: dict[str, list[tuple[ApprovalRequest, str | None]]] = {}

    def close(self) -> None:
        self.notifier.close()

    @contextmanager
    def _tx(self, *keys: str) -> Iterator[_Changes]:
        """One atomic operation; its keys wake waiters once it is done (not if it raised)."""
        changes = _Changes()
        for key in keys:
            changes.notify(key)
        with self._lock:
            yield changes
        self.notifier.publish_many(changes.keys)

    # -- host-run state ----------------------------------------------------------

    def _move(
        self,
        changes: _Changes,
        run: RunRow,
        old: HostRunState,
        new: HostRunState,
        *,
        owner: object = _ANY,
        epoch: int | None = None,
        when: bool = True,
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """Compare-and-set ``old -> new`` on (state, owner, epoch) and ``when``; if won,
        set ``values`` too and return True.

        Raises StateTransitionError for an illegal move before looking at the run.
        """
        check_transition(old, new)
        if (
            run.state is not old
            or (owner is not _ANY and run.owner != owner)
            or (epoch is not None and run.epoch != epoch)
            or not when
        ):
            return False
        for name, value in (values or {}).items():
            setattr(run, name, value)
        self._count(run, -1)
        run.state = new
        self._count(run, +1)
        changes.notify(execution_key(run.execution_id))
        return True

    def _count(self, run: RunRow, n: int) -> None:
        """Move the execution's counter of ``run.state`` by ``n`` and its status with it.

        Superseded attempts are history: they are not counted. The status is
        ``rollup`` of one of each state present, which equals ``rollup`` of
        them all (it asks only which states are present and whether one state
        is all of them), so it costs the same for ten hosts or ten thousand.
        """
        if run.superseded:
            return
        ex = self._executions[run.execution_id]
        ex.counts[run.state.value] += n
        ex.status = rollup(S(s) for s, k in ex.counts.items() if k)
        if not ex.status.terminal:
            ex.finished_at = None
        elif ex.finished_at is None:
            ex.finished_at = self.clock()

    def _supersede(self, run: RunRow) -> None:
        self._count(run, -1)
        run.superseded = True

    def _add_run(self, changes: _Changes, run: RunRow) -> None:
        self._runs[run.id] = run
        self._executions[run.execution_id].run_ids.append(run.id)
        self._count(run, +1)
        changes.notify(execution_key(run.execution_id))

    def _next_attempt(
        self, changes: _Changes, old: RunRow, now: dt.datetime, why: str, state: HostRunState
    ) -> RunRow:
        run = RunRow(
            id=_new_id(),
            execution_id=old.execution_id,
            host_id=old.host_id,
            host_name=old.host_name,
            state=state,
            attempt=old.attempt + 1,
            retry_of=old.id,
            priority=old.priority,
            timeout=old.timeout,
            queued_at=now,
            available_at=now,
            waiting_reason=why,
            group_key=old.group_key,
            throttled=old.throttled,
        )
        self._add_run(changes, run)
        return run

    # -- scripts -------------------------------------------------------------------

    def save_script(
        self,
        content: ScriptVersion,
        *,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        created_by: str | None = None,
    ) -> SavedScript:
        with self._tx():
            now = self.clock()
            row = next((s for s in self._scripts.values() if s.name == content.name), None)
            if row is None:
                row = ScriptRow(
                    id=_new_id(),
                    name=content.name,
                    description=description if description is not None else content.description,
                    tags=list(tags or ()),
                    latest_version=0,
                    created_at=now,
                    updated_at=now,
                )
                self._scripts[row.id] = row
            latest = row.versions.get(row.latest_version)
            created = latest is None or latest.content_hash != content.content_hash
            if created:
                number = row.latest_version + 1
                row.versions[number] = VersionRecord(
                    script_id=row.id,
                    script_name=row.name,
                    number=number,
                    content_hash=content.content_hash,
                    shell=content.shell,
                    body=content.body,
                    # As stored and read back: the same round trip as the SQL store's JSON.
                    parameters=tuple(
                        ParameterSpec.from_dict(as_json(p.to_dict())) for p in content.parameters
                    ),
                    timeout=content.timeout,
                    requires_approval=content.requires_approval,
                    idempotent=content.idempotent,
                    libraries=content.libraries,
                    description=content.description,
                    created_at=now,
                    created_by=created_by,
                )
                row.latest_version = number
            row.updated_at = now
            row.deleted_at = None
            if description is not None:
                row.description = description
            if tags is not None:
                row.tags = list(tags)
            return SavedScript(row.record(), row.versions[row.latest_version], created)

    def restore_version(
        self, script_id: str, number: int, *, created_by: str | None = None
    ) -> SavedScript:
        old = self.get_version(script_id, number)
        return self.save_script(old.domain(), created_by=created_by)

    def _script(self, id_or_name: str, *, deleted: bool = False) -> ScriptRow:
        row = self._scripts.get(id_or_name) or next(
            (s for s in self._scripts.values() if s.name == id_or_name), None
        )
        if row is None or (row.deleted_at is not None and not deleted):
            raise NotFoundError(f"no script {id_or_name!r}")
        return row

    def get_script(self, id_or_name: str) -> ScriptRecord:
        with self._lock:
            return self._script(id_or_name).record()

    def list_scripts(
        self,
        *,
        tag: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[ScriptRecord]:
        with self._lock:
            rows = [s for s in self._scripts.values() if s.deleted_at is None]
            if search:
                needle = search.lower()
                rows = [
                    s for s in rows if needle in s.name.lower() or needle in s.description.lower()
                ]
            if tag:
                rows = [s for s in rows if tag in s.tags]
            records = [s.record() for s in sorted(rows, key=lambda s: s.name)]
        return Page(tuple(records[offset : offset + limit]), len(records), limit, offset)

    def get_version(self, script_id: str, number: int | None = None) -> VersionRecord:
        with self._lock:
            row = self._script(script_id, deleted=True)
            wanted = row.latest_version if number is None else number
            version = row.versions.get(wanted)
            if version is None:
                raise NotFoundError(f"script {row.name!r} has no version {wanted}")
            return version

    def list_versions(self, script_id: str) -> list[VersionRecord]:
        with self._lock:
            row = self._script(script_id)
            return [row.versions[n] for n in sorted(row.versions, reverse=True)]

    def delete_script(self, script_id: str) -> None:
        with self._tx():
            self._script(script_id).deleted_at = self.clock()

    # -- hosts ---------------------------------------------------------------------

    def _host(self, id_or_name: str) -> HostRecord:
        rec = self._hosts.get(id_or_name) or next(
            (h for h in self._hosts.values() if h.name == id_or_name), None
        )
        if rec is None:
            raise NotFoundError(f"no host {id_or_name!r}")
        return rec

    def _host_named(self, name: str) -> HostRecord | None:
        return next((h for h in self._hosts.values() if h.name == name), None)

    def create_host(self, host: Host) -> HostRecord:
        with self._tx():
            host_id = host.id or _new_id()
            if host_id in self._hosts or self._host_named(host.name) is not None:
                raise ConflictError(f"a host named {host.name!r} already exists")
            now = self.clock()
            rec = HostRecord(
                id=host_id,
                last_contact=None,
                created_at=now,
                updated_at=now,
                **_host_columns(host),
            )
            self._hosts[host_id] = rec
            return fresh_host(rec)

    def upsert_hosts(
        self,
        hosts: Sequence[Host],
        *,
        update_existing: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Create hosts by name, updating (or refusing) existing ones; all or nothing.

        ``should_stop`` is asked before each batch of ``IMPORT_BATCH`` hosts, as
        by the SQL store; a true answer keeps nothing and raises
        :class:`OperationCancelledError`.
        """
        created: list[str] = []
        updated: list[str] = []
        with self._tx():
            now = self.clock()
            by_name = {h.name: h.id for h in self._hosts.values()}
            staged: dict[str, HostRecord] = {}  # written only when every batch passed
            for start in range(0, len(hosts), IMPORT_BATCH):
                if should_stop is not None and should_stop():
                    raise OperationCancelledError(
                        f"the import stopped after {start} of {len(hosts)} hosts; "
                        "nothing was stored"
                    )
                for host in hosts[start : start + IMPORT_BATCH]:
                    columns = _host_columns(host)
                    if host.name in staged:
                        columns.pop("name")
                        staged[host.name] = dataclasses.replace(
                            staged[host.name], updated_at=now, **columns
                        )
                    elif host.name in by_name:
                        if not update_existing:
                            raise ConflictError(f"a host named {host.name!r} already exists")
                        columns.pop("name")
                        old = self._hosts[by_name[host.name]]
                        staged[host.name] = dataclasses.replace(old, updated_at=now, **columns)
                        updated.append(host.name)
                    else:
                        host_id = host.id or _new_id()
                        if host_id in self._hosts:
                            raise ConflictError(f"a host with id {host_id!r} already exists")
                        staged[host.name] = HostRecord(
                            id=host_id,
                            last_contact=None,
                            created_at=now,
                            updated_at=now,
                            **columns,
                        )
                        created.append(host.name)
            for rec in staged.values():
                self._hosts[rec.id] = rec
        return created, updated

    def update_host(self, host_id: str, **changes: Any) -> HostRecord:
        unknown = set(changes) - _HOST_FIELDS
        if unknown:
            first = sorted(unknown)[0]
            raise ValidationError(f"unknown host field {first!r}", field=first)
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("shells", "groups"):
                value = tuple(value)
            elif key in ("labels", "vars"):
                value = dict(value)
            elif key == "transport":
                value = TransportKind(value)
            values[key] = value
        with self._tx():
            rec = self._host(host_id)
            if "name" in values:
                other = self._host_named(values["name"])
                if other is not None and other.id != rec.id:
                    raise ConflictError(f"a host named {values['name']!r} already exists")
            new = dataclasses.replace(rec, updated_at=self.clock(), **values)
            self._hosts[rec.id] = new
            return fresh_host(new)

    def get_host(self, id_or_name: str) -> HostRecord:
        with self._lock:
            return fresh_host(self._host(id_or_name))

    def list_hosts(self) -> list[HostRecord]:
        with self._lock:
            return [fresh_host(h) for h in sorted(self._hosts.values(), key=lambda h: h.name)]

    def delete_host(self, host_id: str) -> None:
        """Runs that targeted the host keep its name; their ``host_id`` becomes None."""
        with self._tx():
            rec = self._host(host_id)
            del self._hosts[rec.id]
            for run in self._runs.values():
                if run.host_id == rec.id:
                    run.host_id = None

    def touch_host(self, host_id: str) -> None:
        with self._tx():
            rec = self._hosts.get(host_id)
            if rec is not None:
                self._hosts[host_id] = dataclasses.replace(rec, last_contact=self.clock())

    # -- executions ------------------------------------------------------------------

    def create_execution(self, new: NewExecution) -> ExecutionRecord:
        if not new.targets:
            raise ValidationError("an execution needs at least one host", field="host_ids")
        params: dict[str, Any] = {}
        secrets: dict[str, Secret] = {}
        for name, value in new.parameters.items():
            if isinstance(value, Secret):
                params[name] = MASK
                secrets[name] = value
            else:
                params[name] = _json_value(name, value)
        policy = as_json(dict(new.policy))
        execution_id = _new_id()
        with self._tx(QUEUE_KEY, execution_key(execution_id)) as changes:
            now = self.clock()
            initial = S.PENDING_APPROVAL if new.requires_approval else S.QUEUED
            waiting = WAITING_FOR_APPROVAL if new.requires_approval else WAITING_FOR_WORKER
            ex = ExecutionRow(
                id=execution_id,
                kind=new.kind,
                job_type=new.job_type,
                description=new.description,
                script_id=new.script_id,
                script_version=new.script_version,
                content_hash=new.content_hash,
                command=new.command,
                shell=new.shell,
                timeout=new.timeout,
                idempotent=new.idempotent,
                parameters=params,
                secret_fields=tuple(sorted(secrets)),
                priority=new.priority,
                requested_by=new.requested_by,
                policy=policy,
                created_at=now,
                throttle=new.throttle,
                status=ExecutionStatus.QUEUED,
                secrets=secrets,
            )
            self._executions[execution_id] = ex
            for t in new.targets:
                skipped = t.skip_reason is not None
                self._add_run(
                    changes,
                    RunRow(
                        id=_new_id(),
                        execution_id=execution_id,
                        host_id=t.host_id,
                        host_name=t.host_name,
                        state=S.SKIPPED if skipped else initial,
                        priority=new.priority,
                        timeout=new.timeout,
                        queued_at=now,
                        available_at=now,
                        finished_at=now if skipped else None,
                        message=t.skip_reason,
                        waiting_reason=None if skipped else waiting,
                        group_key=t.group_key,
                        throttled=new.throttle.limited,
                    ),
                )
            return self._record(execution_id, with_runs=True)

    def _execution(self, execution_id: str) -> ExecutionRow:
        ex = self._executions.get(execution_id)
        if ex is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        return ex

    def _record(
        self, execution_id: str, *, with_runs: bool, history: bool = False
    ) -> ExecutionRecord:
        ex = self._execution(execution_id)
        if not with_runs:
            return ex.record()
        runs = [self._runs[i] for i in ex.run_ids]
        if not history:
            runs = [r for r in runs if not r.superseded]
        runs.sort(key=lambda r: (r.host_name, r.attempt))
        return ex.record(tuple(r.record() for r in runs))

    def get_execution(self, execution_id: str, *, history: bool = False) -> ExecutionRecord:
        """The execution with its current host runs (every attempt with ``history``)."""
        with self._lock:
            return self._record(execution_id, with_runs=True, history=history)

    def list_executions(
        self,
        *,
        status: ExecutionStatus | None = None,
        script_id: str | None = None,
        host_id: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[ExecutionRecord]:
        wanted = None if status is None else ExecutionStatus(status)
        with self._lock:
            rows = [
                ex
                for ex in self._executions.values()
                if (wanted is None or ex.status is wanted)
                and (script_id is None or ex.script_id == script_id)
                and (since is None or ex.created_at >= since)
                and (until is None or ex.created_at < until)
                and (
                    host_id is None
                    or any(
                        host_id in (self._runs[i].host_id, self._runs[i].host_name)
                        for i in ex.run_ids
                    )
                )
            ]
            rows.sort(key=lambda ex: ex.id)
            rows.sort(key=lambda ex: ex.created_at, reverse=True)
            items = tuple(ex.record() for ex in rows[offset : offset + limit])
        return Page(items, len(rows), limit, offset)

    def get_host_run(self, run_id: str) -> HostRunRecord:
        with self._lock:
            return self._run(run_id).record()

    def _run(self, run_id: str) -> RunRow:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFoundError(f"no host run {run_id!r}")
        return run

    def _current(self, execution_id: str, run_id: str | None = None) -> list[RunRow]:
        ex = self._execution(execution_id)
        runs = [self._runs[i] for i in ex.run_ids]
        return [r for r in runs if not r.superseded and (run_id is None or r.id == run_id)]

    # -- actions -----------------------------------------------------------------------

    def cancel_execution(self, execution_id: str) -> ExecutionRecord:
        with self._tx(execution_key(execution_id)) as changes:
            self._cancel(changes, self._current(execution_id))
            return self._record(execution_id, with_runs=True)

    def cancel_host_run(self, run_id: str) -> HostRunRecord:
        with self._tx() as changes:
            run = self._run(run_id)
            changes.notify(execution_key(run.execution_id))
            self._cancel(changes, self._current(run.execution_id, run_id))
            return run.record()

    def _cancel(self, changes: _Changes, runs: list[RunRow]) -> None:
        live = [r for r in runs if r.state in CANCELLABLE_STATES]
        if not live:
            raise ConflictError("nothing to cancel: every host run has already finished")
        now = self.clock()
        done: Mapping[str, Any] = {
            "finished_at": now,
            "reason": FailureReason.CANCELLED.value,
            "message": "cancelled on request",
            "waiting_reason": None,
            "lease_expires_at": None,
        }
        for run in live:
            if run.state is not S.RUNNING:
                self._move(changes, run, run.state, S.CANCELLED, values=done)
            elif not self._move(
                changes,
                run,
                S.RUNNING,
                S.CANCELLED,
                epoch=run.epoch,
                when=run.started_at is None,
                values=done,
            ):
                # Started: the worker must kill it, then finish it ``cancelled``.
                run.cancel_requested = True

    def retry_execution(
        self,
        execution_id: str,
        *,
        approval: ApprovalRequest | None = None,
        approval_record: Mapping[str, Any] | None = None,
    ) -> ExecutionRecord:
        """New attempts for the failed hosts; with ``approval`` they wait for it,
        and the request is recorded with them (see :meth:`approval_requests`)."""
        with self._tx(QUEUE_KEY, execution_key(execution_id)) as changes:
            runs = self._current(execution_id)
            if approval is None:
                self._retry(changes, runs)
            else:
                ex = self._executions[execution_id]
                policy = ex.policy
                if approval_record is not None:
                    policy = {**ex.policy, "approval": as_json(dict(approval_record))}
                self._retry(changes, runs, state=S.PENDING_APPROVAL)
                self._approvals.setdefault(execution_id, []).append((approval, ex.content_hash))
                ex.policy = policy
            return self._record(execution_id, with_runs=True)

    def retry_host_run(self, run_id: str) -> HostRunRecord:
        with self._tx(QUEUE_KEY) as changes:
            run = self._run(run_id)
            changes.notify(execution_key(run.execution_id))
            [new] = self._retry(changes, self._current(run.execution_id, run_id))
            return new.record()

    def _retry(
        self, changes: _Changes, runs: list[RunRow], *, state: HostRunState = S.QUEUED
    ) -> list[RunRow]:
        failed = [r for r in runs if r.state in RETRYABLE_STATES]
        if not failed:
            raise ConflictError("nothing to retry: only failed, timed-out or lost host runs retry")
        now = self.clock()
        waiting = WAITING_FOR_WORKER if state is S.QUEUED else WAITING_FOR_APPROVAL
        out = []
        for run in failed:
            self._supersede(run)
            out.append(self._next_attempt(changes, run, now, f"{waiting} (retry)", state))
        return out

    def approval_requests(self, execution_id: str) -> list[tuple[ApprovalRequest, str | None]]:
        """Requests written by :meth:`retry_execution` (with the content hash they
        bind), oldest first: the last one covers the execution's pending runs."""
        with self._lock:
            return list(self._approvals.get(execution_id, ()))

    def delete_execution(self, execution_id: str) -> None:
        with self._tx():
            ex = self._execution(execution_id)
            if any(self._runs[i].state not in TERMINAL_STATES for i in ex.run_ids):
                raise ConflictError("an execution can be deleted only when every host run finished")
            for run_id in ex.run_ids:
                del self._runs[run_id]
                self._chunks_by_run.pop(run_id, None)
            self._chunks_by_execution.pop(execution_id, None)
            self._approvals.pop(execution_id, None)
            del self._executions[execution_id]

    def approve_execution(self, execution_id: str) -> ExecutionRecord:
        return self._decide(execution_id, S.QUEUED, None)

    def reject_execution(self, execution_id: str, message: str) -> ExecutionRecord:
        return self._decide(execution_id, S.REJECTED, message)

    def _decide(self, execution_id: str, new: HostRunState, message: str | None) -> ExecutionRecord:
        with self._tx(QUEUE_KEY, execution_key(execution_id)) as changes:
            pending = [r for r in self._current(execution_id) if r.state is S.PENDING_APPROVAL]
            if not pending:
                raise ConflictError("this execution is not awaiting approval")
            now = self.clock()
            values: dict[str, Any]
            if new is S.QUEUED:
                values = {"available_at": now, "waiting_reason": WAITING_FOR_WORKER}
            else:
                values = {"finished_at": now, "message": message, "waiting_reason": None}
            for run in pending:
                self._move(changes, run, S.PENDING_APPROVAL, new, values=values)
            return self._record(execution_id, with_runs=True)

    def set_waiting_reason(self, run_ids: Sequence[str], reason: str) -> int:
        """Explain why queued or pending runs wait (window closed, host offline, ...)."""
        n = 0
        with self._tx():
            for run_id in set(run_ids):
                run = self._runs.get(run_id)
                if run is not None and run.state in (S.QUEUED, S.PENDING_APPROVAL):
                    run.waiting_reason = reason
                    n += 1
        return n

    # -- queue -----------------------------------------------------------------------------

    def claim_host_runs(self, worker_id: str, limit: int, lease_seconds: float) -> list[ClaimedRun]:
        """Claim up to ``limit`` queued runs, by priority then time, within each
        throttled execution's limits; the runs, their secrets opened."""
        if limit <= 0:
            return []
        with self._tx() as changes:
            now = self.clock()
            picked, throttled = self._pick_throttled(now, limit)
            if len(picked) < limit:
                free = sorted(
                    (
                        r
                        for r in self._runs.values()
                        if r.state is S.QUEUED and not r.throttled and r.available_at <= now
                    ),
                    key=_claim_order,
                )
                picked += free[: limit - len(picked)]
            if not picked:
                return []
            # Everything a claim needs is checked before anything changes.
            versions = self._pinned_versions({r.execution_id for r in picked})
            lease = now + dt.timedelta(seconds=lease_seconds)
            for run in picked:
                claimed = {
                    "owner": worker_id,
                    "epoch": run.epoch + 1,
                    "claimed_at": now,
                    "lease_expires_at": lease,
                    "waiting_reason": None,
                }
                self._move(changes, run, S.QUEUED, S.RUNNING, epoch=run.epoch, values=claimed)
            for ex in throttled:
                ex.last_claim_at = now
                delay = ex.throttle.delay
                ex.next_start_at = now + dt.timedelta(seconds=delay) if delay else None
            picked.sort(key=_claim_order)
            return [self._claim(run, versions) for run in picked]

    def _pick_throttled(
        self, now: dt.datetime, limit: int
    ) -> tuple[list[RunRow], list[ExecutionRow]]:
        """Runs of executions with limits that may start now, never exceeding them.

        The whole claim holds the lock, so no other claimer can see a free slot
        that this one is taking (the SQL store locks the execution's row).
        """
        due = {
            r.execution_id
            for r in self._runs.values()
            if r.state is S.QUEUED and r.throttled and r.available_at <= now
        }
        limited = sorted(
            (
                ex
                for ex in (self._executions[i] for i in due)
                if ex.next_start_at is None or ex.next_start_at <= now
            ),
            key=lambda ex: (-ex.priority, ex.created_at, ex.id),
        )[:_THROTTLED_BATCH]
        picked: list[RunRow] = []
        touched: list[ExecutionRow] = []
        for ex in limited:
            room = limit - len(picked)
            if room <= 0:
                break
            runs = [self._runs[i] for i in ex.run_ids]
            running = [r.group_key for r in runs if r.state is S.RUNNING]
            forks = ex.throttle.forks
            want = room if forks is None else min(room, forks - len(running))
            if want <= 0:
                continue
            candidates = sorted(
                (r for r in runs if r.state is S.QUEUED and r.available_at <= now),
                key=_claim_order,
            )
            if ex.throttle.per_group is None:
                candidates = candidates[:want]
            else:  # as the SQL store: look past blocked runs, but not without bound
                candidates = candidates[: max(want * 20, 200)]
            chosen = set(
                pick_within(ex.throttle, running, [(r.id, r.group_key) for r in candidates])[:want]
            )
            if not chosen:
                continue
            picked += [r for r in candidates if r.id in chosen]
            touched.append(ex)
        return picked, touched

    def _pinned_versions(self, execution_ids: Iterable[str]) -> dict[str, ScriptVersion]:
        """The pinned version of each script execution; raises if one no longer
        matches the hash the execution was approved for."""
        out: dict[str, ScriptVersion] = {}
        for execution_id in execution_ids:
            ex = self._executions[execution_id]
            if ex.script_id is None or ex.script_version is None:
                continue
            script = self._scripts.get(ex.script_id)
            record = script.versions.get(ex.script_version) if script is not None else None
            if record is None:
                continue
            if ex.content_hash and record.content_hash != ex.content_hash:
                raise ValidationError(
                    f"script version {ex.script_version} no longer matches its pinned hash",
                    field="content_hash",
                )
            out[execution_id] = record.domain()
        return out

    def _claim(self, run: RunRow, versions: Mapping[str, ScriptVersion]) -> ClaimedRun:
        ex = self._executions[run.execution_id].record()
        values: dict[str, object] = dict(ex.parameters)
        values.update(self._executions[run.execution_id].secrets)
        host = self._hosts.get(run.host_id) if run.host_id else None
        return ClaimedRun(
            run=run.record(),
            execution=ex,
            host=host.to_host() if host is not None else None,
            version=versions.get(ex.id),
            values=values,
        )

    def mark_started(self, run_id: str, owner: str, epoch: int) -> bool:
        """Record that the command is about to be sent; False means do not send it."""
        return run_id in self.mark_started_many(owner, [(run_id, epoch)])

    def mark_started_many(self, owner: str, runs: Sequence[tuple[str, int]]) -> set[str]:
        won: set[str] = set()
        with self._tx():
            now = self.clock()
            for run_id, epoch in runs:
                run = self._runs.get(run_id)
                if (
                    run is not None
                    and run.state is S.RUNNING
                    and run.owner == owner
                    and run.epoch == epoch
                    and run.started_at is None
                    and not run.cancel_requested
                ):
                    run.started_at = now
                    won.add(run_id)
        return won

    def heartbeat(
        self, worker_id: str, runs: Sequence[tuple[str, int]], lease_seconds: float
    ) -> dict[str, LeaseStatus]:
        found: dict[str, LeaseStatus] = {}
        with self._tx():
            lease = self.clock() + dt.timedelta(seconds=lease_seconds)
            for run_id, epoch in runs:
                run = self._runs.get(run_id)
                if (
                    run is not None
                    and run.owner == worker_id
                    and run.state is S.RUNNING
                    and run.epoch == epoch
                ):
                    run.lease_expires_at = lease
                    found[run_id] = (
                        LeaseStatus.CANCEL_REQUESTED
                        if run.cancel_requested
                        else LeaseStatus.RENEWED
                    )
        return {run_id: found.get(run_id, LeaseStatus.LOST) for run_id, _ in runs}

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
    ) -> bool:
        result = RunResult(run_id, epoch, S(state), exit_code, reason, message, events)
        return run_id in self.finish_host_runs(owner, [result])

    def finish_host_runs(self, owner: str, results: Sequence[RunResult]) -> set[str]:
        """Finish held runs, each a CAS on (owner, epoch); the ids that won."""
        for r in results:
            check_transition(S.RUNNING, S(r.state))
        won: set[str] = set()
        with self._tx() as changes:
            now = self.clock()
            for r in results:
                run = self._runs.get(r.run_id)
                if run is not None and self._move(
                    changes,
                    run,
                    S.RUNNING,
                    S(r.state),
                    owner=owner,
                    epoch=r.epoch,
                    values={
                        "finished_at": now,
                        "exit_code": r.exit_code,
                        "reason": None if r.reason is None else str(r.reason),
                        "message": r.message or None,
                        "lease_expires_at": None,
                        "events": run.events + r.events,
                    },
                ):
                    won.add(r.run_id)
        return won

    def release_host_run(self, run_id: str, owner: str, epoch: int, why: str) -> bool:
        """Hand an unstarted run back to the queue (graceful stop)."""
        with self._tx(QUEUE_KEY) as changes:
            run = self._runs.get(run_id)
            return run is not None and self._requeue(changes, run, epoch, why, owner=owner)

    def _requeue(
        self,
        changes: _Changes,
        run: RunRow,
        epoch: int,
        why: str,
        *,
        owner: object = _ANY,
        when: bool = True,
    ) -> bool:
        return self._move(
            changes,
            run,
            S.RUNNING,
            S.QUEUED,
            owner=owner,
            epoch=epoch,
            when=when and run.started_at is None,
            values={
                "owner": None,
                "epoch": run.epoch + 1,
                "claimed_at": None,
                "lease_expires_at": None,
                "available_at": self.clock(),
                "waiting_reason": why,
            },
        )

    def reap(self, now: dt.datetime | None = None) -> ReapReport:
        """Settle runs whose worker vanished, ran too long, or were never picked up."""
        out: dict[str, list[str]] = {k: [] for k in ReapReport.__dataclass_fields__}
        with self._tx(QUEUE_KEY) as changes:
            now = now or self.clock()
            expired = [
                r
                for r in self._runs.values()
                if r.state is S.RUNNING
                and r.lease_expires_at is not None
                and r.lease_expires_at < now
            ][:_REAP_BATCH]
            for run in expired:
                self._reap_expired(changes, run, now, out)
            self._reap_overdue(changes, now, out)
            self._reap_stale(changes, now, out)
        return ReapReport(**{k: tuple(v) for k, v in out.items()})

    def _reap_expired(
        self, changes: _Changes, run: RunRow, now: dt.datetime, out: dict[str, list[str]]
    ) -> None:
        who = run.owner
        end = {"finished_at": now, "lease_expires_at": None}
        if run.cancel_requested:
            if self._move(
                changes,
                run,
                S.RUNNING,
                S.CANCELLED,
                epoch=run.epoch,
                values={
                    **end,
                    "reason": FailureReason.CANCELLED.value,
                    "message": f"cancelled; worker {who} stopped before confirming",
                },
            ):
                out["cancelled"].append(run.id)
            return
        if run.started_at is None:
            why = (
                f"worker {who} stopped renewing its lease before sending the command; "
                f"{WAITING_FOR_WORKER}"
            )
            if self._requeue(changes, run, run.epoch, why):
                out["requeued"].append(run.id)
            return
        lost = self._move(
            changes,
            run,
            S.RUNNING,
            S.LOST,
            epoch=run.epoch,
            values={
                **end,
                "reason": FailureReason.WORKER_LOST.value,
                "message": f"worker {who} stopped renewing its lease after the command was "
                "sent; the outcome on the host is unknown",
            },
        )
        if not lost:
            return
        out["lost"].append(run.id)
        if self._executions[run.execution_id].idempotent:
            self._supersede(run)
            why = f"attempt {run.attempt} was lost with its worker; {WAITING_FOR_WORKER}"
            out["retried"].append(self._next_attempt(changes, run, now, why, S.QUEUED).id)

    def _reap_overdue(self, changes: _Changes, now: dt.datetime, out: dict[str, list[str]]) -> None:
        """A started run past twice its timeout is timed out, whatever its lease says."""
        for run in list(self._runs.values()):
            if run.state is not S.RUNNING or run.started_at is None:
                continue
            limit = 2 * run.timeout
            if (now - run.started_at).total_seconds() <= limit:
                continue
            if self._move(
                changes,
                run,
                S.RUNNING,
                S.TIMED_OUT,
                epoch=run.epoch,
                values={
                    "finished_at": now,
                    "lease_expires_at": None,
                    "reason": FailureReason.TIMED_OUT.value,
                    "message": f"still running after twice its timeout ({limit:g}s); "
                    "stopped waiting for it",
                },
            ):
                out["timed_out"].append(run.id)

    def _reap_stale(self, changes: _Changes, now: dt.datetime, out: dict[str, list[str]]) -> None:
        """A queued run nobody picked up within ``queued_timeout`` fails.

        A throttled run waiting for a slot of its own execution is not "not
        picked up": only if its execution has nothing running and has not
        started a host within the period either.
        """
        stale = now - dt.timedelta(seconds=self.queued_timeout)

        def progressing(ex: ExecutionRow) -> bool:
            if ex.last_claim_at is not None and ex.last_claim_at >= stale:
                return True
            return any(self._runs[i].state is S.RUNNING for i in ex.run_ids)

        queued = [
            r
            for r in self._runs.values()
            if r.state is S.QUEUED
            and r.available_at < stale
            and (not r.throttled or not progressing(self._executions[r.execution_id]))
        ][:_REAP_BATCH]
        minutes = self.queued_timeout / 60
        for run in queued:
            if self._move(
                changes,
                run,
                S.QUEUED,
                S.FAILED,
                values={
                    "finished_at": now,
                    "waiting_reason": None,
                    "reason": FailureReason.NOT_PICKED_UP.value,
                    "message": f"no worker picked up this run within {minutes:g} minutes",
                },
            ):
                out["not_picked_up"].append(run.id)

    # -- output ----------------------------------------------------------------------------

    def append_output(
        self,
        run_id: str,
        owner: str,
        epoch: int,
        stream: str,
        text: str,
        *,
        dropped_bytes: int = 0,
    ) -> bool:
        """Store ``text`` for a run we hold, within the cap; False if it is not ours.

        As the SQL store: the cap counts both streams; the part that fits is
        stored, then one marker chunk per stream states the truncation; later
        output (and ``text`` after a gap of ``dropped_bytes``) moves the
        counters and the tail but is not stored.
        """
        if stream not in OUTPUT_STREAMS:
            raise ValidationError(f"unknown stream {stream!r}", field="stream")
        if not text and not dropped_bytes:
            return True
        with self._tx() as changes:
            run = self._runs.get(run_id)
            if run is None or run.state is not S.RUNNING or run.owner != owner:
                return False
            if run.epoch != epoch:
                return False
            cap = self.output_cap_bytes
            data = text.encode("utf-8")
            room = cap - run.stored_bytes
            truncated_flag = f"{stream}_truncated"
            already = getattr(run, truncated_flag)
            if already or dropped_bytes:
                piece, overflow = "", True
            elif len(data) <= room:
                piece, overflow = text, False
            else:
                piece, overflow = data[: max(room, 0)].decode("utf-8", errors="ignore"), True
            pieces = [piece] if piece else []
            if overflow and not already:
                pieces.append(output_cap_marker(stream, cap))
                setattr(run, truncated_flag, True)
            counted = f"{stream}_bytes"
            setattr(run, counted, getattr(run, counted) + len(data) + dropped_bytes)
            run.stored_bytes += len(piece.encode("utf-8"))
            tail = f"{stream}_tail"
            setattr(run, tail, (getattr(run, tail) + text)[-self.tail_chars :])
            if pieces:
                now = self.clock()
                for p in pieces:
                    run.chunks += 1
                    chunk = OutputChunk(
                        next(self._chunk_ids), run.execution_id, run_id, stream, run.chunks, p, now
                    )
                    self._chunks_by_run.setdefault(run_id, []).append(chunk)
                    self._chunks_by_execution.setdefault(run.execution_id, []).append(chunk)
                changes.notify(execution_key(run.execution_id))
            return True

    def read_output(
        self,
        *,
        execution_id: str | None = None,
        run_id: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[OutputChunk]:
        """Chunks with id > ``after_id``, oldest first, of one execution or host run."""
        if (execution_id is None) == (run_id is None):
            raise ValidationError("give exactly one of execution_id and run_id", field="run_id")
        with self._lock:
            if execution_id is not None:
                chunks = self._chunks_by_execution.get(execution_id, [])
            else:
                assert run_id is not None
                chunks = self._chunks_by_run.get(run_id, [])
            start = bisect.bisect_right(chunks, after_id, key=lambda c: c.id)
            return chunks[start : start + max(limit, 0)]

    def iter_output(self, run_id: str, stream: str | None = None) -> Iterator[OutputChunk]:
        """Every stored chunk of a host run, a page at a time (the lock is not held
        while the caller consumes them)."""
        after = 0
        while True:
            page = self.read_output(run_id=run_id, after_id=after, limit=_PAGE)
            yield from (c for c in page if stream is None or c.stream == stream)
            if len(page) < _PAGE:
                return
            after = page[-1].id

    def last_output_id(self, execution_id: str) -> int:
        with self._lock:
            chunks = self._chunks_by_execution.get(execution_id)
            return chunks[-1].id if chunks else 0

    # -- console reads -----------------------------------------------------------------------

    def fleet_facets(self) -> FleetFacets:
        with self._lock:
            hosts = sorted(self._hosts.values(), key=lambda h: h.name)
            groups = sorted({g for h in hosts for g in h.groups})
            labels = sorted({f"{k}={v}" for h in hosts for k, v in h.labels.items()})
            return FleetFacets(tuple(groups), tuple(labels), tuple(h.name for h in hosts))

    def host_page(
        self, *, search: str = "", group: str = "", limit: int = 200, offset: int = 0
    ) -> tuple[Page[HostRecord], int]:
        """Hosts by name matching ``search`` (name, address or a label; ``key=value``
        matches that label) and in ``group``; and the number of hosts stored."""
        needle = search.lower()
        key, eq, value = search.partition("=")
        label = json.dumps({key: value})[1:-1].lower() if eq else needle

        def matches(h: HostRecord) -> bool:
            if group and group not in h.groups:
                return False
            if not search:
                return True
            return (
                needle in h.name.lower()
                or needle in (h.address or "").lower()
                or label in json.dumps(dict(h.labels)).lower()
            )

        with self._lock:
            total = len(self._hosts)
            found = sorted((h for h in self._hosts.values() if matches(h)), key=lambda h: h.name)
            items = tuple(fresh_host(h) for h in found[offset : offset + limit])
        return Page(items, len(found), limit, offset), total

    def execution_header(self, execution_id: str) -> ExecutionRecord:
        with self._lock:
            return self._record(execution_id, with_runs=False)

    def grid_page(
        self,
        execution_id: str,
        *,
        states: Sequence[HostRunState] | None = None,
        hosts: Sequence[str] | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> Page[GridCell]:
        wanted = None if states is None else {S(s) for s in states}
        names = None if hosts is None else set(hosts)
        with self._lock:
            ex = self._executions.get(execution_id)
            runs = [self._runs[i] for i in ex.run_ids] if ex is not None else []
            runs = sorted(
                (
                    r
                    for r in runs
                    if not r.superseded
                    and (wanted is None or r.state in wanted)
                    and (names is None or r.host_name in names)
                ),
                key=lambda r: r.host_name,
            )
            cells = tuple(
                GridCell(r.id, r.host_name, r.state, r.exit_code, r.attempt)
                for r in runs[offset : offset + limit]
            )
        return Page(cells, len(runs), limit, offset)

    def run_digests(self, execution_id: str) -> list[RunDigest]:
        with self._lock:
            ex = self._executions.get(execution_id)
            runs = [self._runs[i] for i in ex.run_ids] if ex is not None else []
            return [
                RunDigest(
                    r.state,
                    r.exit_code,
                    r.reason,
                    None if r.message is None else r.message[:_DIGEST_CHARS],
                    r.stdout_tail[-_DIGEST_CHARS:],
                    r.stderr_tail[:_DIGEST_CHARS],
                    r.host_name,
                )
                for r in sorted(runs, key=lambda r: r.host_name)
                if not r.superseded
            ]

    def host_recent_runs(
        self, host_id: str, host_name: str, limit: int = 25
    ) -> list[tuple[HostRunRecord, str]]:
        with self._lock:
            runs = [
                r
                for r in self._runs.values()
                if not r.superseded and (r.host_id == host_id or r.host_name == host_name)
            ]
            runs.sort(key=lambda r: r.queued_at, reverse=True)
            return [
                (r.record(), self._executions[r.execution_id].description) for r in runs[:limit]
            ]

    def run_in_execution(self, execution_id: str, run_id: str) -> HostRunRecord:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.execution_id != execution_id:
                raise NotFoundError(f"execution {execution_id} has no host run {run_id!r}")
            return run.record()

    # -- operations ----------------------------------------------------------------------------

    def ping(self) -> bool:
        return True

    def read_counts(self) -> StoreCounts:
        with self._lock:
            now = self.clock()
            by_status: dict[str, int] = {}
            for ex in self._executions.values():
                by_status[ex.status.value] = by_status.get(ex.status.value, 0) + 1
            by_state: dict[str, int] = {}
            owners: set[str] = set()
            for r in self._runs.values():
                by_state[r.state.value] = by_state.get(r.state.value, 0) + 1
                live = r.lease_expires_at is not None and r.lease_expires_at > now
                if r.state is S.RUNNING and r.owner is not None and live:
                    owners.add(r.owner)
        return StoreCounts(
            executions_by_status=by_status,
            host_runs_by_state=by_state,
            queue_depth=by_state.get(S.QUEUED.value, 0),
            active_owners=len(owners),
        )


if TYPE_CHECKING:

    def _keeps_the_protocol(store: InMemoryStore) -> Store:
        """mypy checks here that every Store method exists with its signature."""
        return store

"""Schedules for a caller: create, change, pause, resume, delete (audited), and firing.

Firing a tick goes through :mod:`muster.services.submission` exactly as a
manual run does (``prepare_*``: host resolution, the approval gate,
throttling; then ``Submission.after_submit``: the approval request, the
audit record, the webhook watch), with two differences: the caller is the
schedule's owner as they stand *now* (a disabled owner, or one who lost the
permission to run it, fails the firing with that reason), and the execution
is stored through :meth:`ScheduleStore.fire_schedule`, so it and its firing
row are one transaction and a tick never fires twice.

A script schedule pinned to a version runs that version; one on "latest"
pins the latest version at fire time, and the firing records which.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from muster.domain.jobtypes import render_job
from muster.domain.params import coerce_values
from muster.domain.schedules import (
    FiringStatus,
    Schedule,
    ScheduleState,
    TargetKind,
    decide,
    next_firing,
    validate_end,
)
from muster.domain.secret import Secret
from muster.errors import MusterError, NotFoundError, PermissionDeniedError, ValidationError
from muster.security.rbac import Permission, permissions_of
from muster.services.actor import Actor
from muster.services.local_hosts import local_names, require_local_permission
from muster.services.submission import (
    Submission,
    prepare_command,
    prepare_job,
    prepare_script,
    resolve_hosts,
)
from muster.store.base import ExecutionRecord, Store
from muster.store.notify import Notifier
from muster.store.protocols import AuditStore, SecurityStore
from muster.store.schedule_records import (
    FiringClaim,
    FiringRecord,
    ScheduleRecord,
    ScheduleStore,
    TickRecord,
)

__all__ = [
    "ActorLookup",
    "FireResult",
    "ScheduleService",
    "SchedulingStore",
    "needed_permission",
    "owners_from",
]

_log = logging.getLogger(__name__)


class SchedulingStore(Store, ScheduleStore, Protocol):
    """What schedules need of a store: executions, scripts, hosts and the schedule area."""

    clock: Callable[[], dt.datetime]
    notifier: Notifier


#: The schedule owner's identity as it stands now (None: no such user any more).
ActorLookup = Callable[[str], Actor | None]


@dataclass(frozen=True, slots=True)
class FireResult:
    due_at: dt.datetime
    status: FiringStatus
    execution: ExecutionRecord | None = None
    reason: str | None = None


def _refuse_secrets(fields: set[str]) -> None:
    """A schedule's values are stored with it in clear: a secret value is refused
    (it would have to be sealed with the vault, which schedules do not do yet)."""
    if fields:
        first = sorted(fields)[0]
        raise ValidationError(
            f"{first}: secret values cannot be scheduled (they would be stored in clear)",
            field=first,
            problems={f: "secret values cannot be scheduled" for f in sorted(fields)},
        )


def needed_permission(schedule: Schedule) -> Permission:
    """What running the schedule's target needs (what the API's run routes ask for)."""
    if schedule.target.kind is TargetKind.SCRIPT:
        return Permission.SCRIPTS_MANAGE
    if schedule.target.kind is TargetKind.WORKFLOW:
        return Permission.WORKFLOWS_MANAGE
    return Permission.JOBS_MANAGE


class ScheduleService:
    """Schedules over one store; ``actors`` tells who a schedule's owner is now."""

    def __init__(
        self,
        store: SchedulingStore,
        submission: Submission,
        audit: AuditStore | None,
        *,
        actors: ActorLookup,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.store = store
        self.submission = submission
        self.audit = audit
        self.actors = actors
        self.clock = clock or store.clock

    # definitions

    def _checked(self, actor: Actor | None, schedule: Schedule) -> Schedule:
        """Validate what a schedule points at; the script is kept by id."""
        now = self.clock()
        validate_end(schedule.end_at, now)
        if actor is not None and not actor.can(needed_permission(schedule)):
            perm = needed_permission(schedule).value
            raise PermissionDeniedError(f"{actor.name} lacks permission {perm}")
        # The targets must resolve now (422 on host_ids), and the server's own machine
        # needs hosts.local of whoever schedules it (403), as for a manual run.
        hosts = resolve_hosts(self.store, schedule.selector)
        require_local_permission(actor, local_names(hosts), doing="schedule anything on")
        target = schedule.target
        if target.kind is TargetKind.SCRIPT:
            assert target.script is not None
            try:
                script = self.store.get_script(target.script)
                version = self.store.get_version(script.id, target.version)
            except NotFoundError as exc:
                raise ValidationError(str(exc), field="script") from None
            # The values must fit the version as it stands (a later "latest" is checked
            # again when it fires).
            values = coerce_values(version.domain().parameters, dict(schedule.parameters))
            _refuse_secrets(
                {f"parameter_values.{k}" for k, v in values.items() if isinstance(v, Secret)}
            )
            target = dataclasses.replace(target, script=script.id)
        elif schedule.parameters:
            raise ValidationError(
                "parameter_values: only a script schedule takes parameter values",
                field="parameter_values",
            )
        if target.kind is TargetKind.JOB:
            assert target.job_type is not None
            _refuse_secrets({"job_fields.password"} if "password" in target.job_fields else set())
            render_job(target.job_type, target.job_fields)
        elif target.kind is TargetKind.WORKFLOW:
            raise ValidationError("workflow: workflows cannot be scheduled yet", field="workflow")
        if any(isinstance(v, str) and v == "***" for v in schedule.parameters.values()):
            raise ValidationError(
                "parameter_values: a masked value cannot be scheduled", field="parameter_values"
            )
        return dataclasses.replace(schedule, target=target)

    def _next_run(self, schedule: Schedule, after: dt.datetime) -> dt.datetime | None:
        decision = decide(schedule, ScheduleState(after), after)
        return decision.next_run

    def create(self, actor: Actor | None, schedule: Schedule) -> ScheduleRecord:
        """Store a new schedule owned by ``actor``; its first tick is the next after now."""
        owner = actor.name if actor is not None else schedule.created_by
        checked = dataclasses.replace(self._checked(actor, schedule), created_by=owner)
        now = self.clock()
        record = self.store.create_schedule(
            checked, cursor=now, next_run=self._next_run(checked, now)
        )
        self._audit(actor, "schedule.create", record)
        return record

    def replace(self, actor: Actor | None, schedule_id: str, schedule: Schedule) -> ScheduleRecord:
        """Change a schedule; ticks from now on follow the new definition."""
        old = self.store.get_schedule(schedule_id)
        checked = dataclasses.replace(
            self._checked(actor, schedule), created_by=old.schedule.created_by
        )
        now = self.clock()
        cursor = max(now, old.cursor)
        record = self.store.replace_schedule(
            old.id, checked, cursor=cursor, next_run=self._next_run(checked, cursor)
        )
        self._audit(actor, "schedule.update", record)
        return record

    def set_enabled(self, actor: Actor | None, schedule_id: str, enabled: bool) -> ScheduleRecord:
        """Pause or resume. Ticks while paused are not owed: resuming starts from now."""
        old = self.store.get_schedule(schedule_id)
        if old.schedule.enabled == enabled:
            return old
        schedule = dataclasses.replace(old.schedule, enabled=enabled)
        now = self.clock()
        cursor = max(now, old.cursor) if enabled else old.cursor
        nxt = self._next_run(schedule, cursor) if enabled else None
        record = self.store.replace_schedule(old.id, schedule, cursor=cursor, next_run=nxt)
        self._audit(actor, "schedule.resume" if enabled else "schedule.pause", record)
        return record

    def delete(self, actor: Actor | None, schedule_id: str) -> ScheduleRecord:
        record = self.store.get_schedule(schedule_id)
        self.store.delete_schedule(record.id)
        self._audit(actor, "schedule.delete", record)
        return record

    def _audit(self, actor: Actor | None, action: str, record: ScheduleRecord) -> None:
        if self.audit is None or actor is None:
            return
        s = record.schedule
        self.audit.record_audit(
            actor=actor.name,
            action=action,
            target=f"schedule:{record.id}",
            address=actor.address,
            details={
                "name": s.name,
                "cron_expression": s.cron.expression,
                "timezone": s.cron.timezone,
                "target": s.target.label,
                "selector": list(s.selector),
                "parameters": dict(s.parameters),
                "enabled": s.enabled,
                "max_runs": s.max_runs,
                "end_at": s.end_at.isoformat() if s.end_at else None,
                "misfire_policy": s.misfire_policy.value,
            },
        )

    # firing

    def run_now(self, actor: Actor, schedule_id: str) -> ExecutionRecord:
        """Fire once outside the cron, as ``actor`` (who needs the run permission);
        recorded as a manual firing, not counted against ``max_runs``. Errors raise."""
        record = self.store.get_schedule(schedule_id)
        perm = needed_permission(record.schedule)
        if not actor.can(perm):
            raise PermissionDeniedError(f"{actor.name} lacks permission {perm.value}")
        result = self._submit(record, self.clock(), actor, manual=True)
        if result is None:  # the same microsecond twice: say so rather than pretend
            raise ValidationError("run-now: a firing at this instant exists; try again")
        if self.audit is not None:
            self.audit.record_audit(
                actor=actor.name,
                action="schedule.run_now",
                target=f"schedule:{record.id}",
                address=actor.address,
                details={"name": record.name, "execution_id": result.id},
            )
        return result

    def fire(
        self,
        record: ScheduleRecord,
        due_at: dt.datetime,
        reason: str | None = None,
        *,
        owners: ActorLookup | None = None,
    ) -> FireResult:
        """Fire one tick as the owner (looked up with ``owners``, default ``actors``);
        a refused submission is recorded ``failed``."""
        try:
            actor = self._owner(record.schedule, owners or self.actors)
            execution = self._submit(record, due_at, actor, manual=False, reason=reason)
        except MusterError as exc:
            text = f"{type(exc).__name__}: {exc}"
            failed = TickRecord(due_at, FiringStatus.FAILED, text)
            if not self.store.record_ticks(record.id, [failed]):
                # The execution was stored (the tick is recorded fired); what failed came
                # after it (the approval request or the audit record), as it can for a
                # manual run: the run stands, the error is logged.
                _log.error("schedule %s: tick %s fired, then: %s", record.name, due_at, text)
                return FireResult(due_at, FiringStatus.FIRED, reason=text)
            _log.info("schedule %s: tick %s failed: %s", record.name, due_at.isoformat(), text)
            return FireResult(due_at, FiringStatus.FAILED, reason=text)
        if execution is None:
            return FireResult(due_at, FiringStatus.SKIPPED, reason="recorded by another scheduler")
        return FireResult(due_at, FiringStatus.FIRED, execution, reason)

    def _owner(self, schedule: Schedule, lookup: ActorLookup) -> Actor:
        owner = schedule.created_by
        actor = lookup(owner) if owner else None
        if actor is None:
            raise PermissionDeniedError(
                f"the schedule's owner {owner!r} no longer exists or is disabled"
            )
        perm = needed_permission(schedule)
        if not actor.can(perm):
            raise PermissionDeniedError(
                f"the schedule's owner {owner} lacks permission {perm.value}"
            )
        return actor

    def _submit(
        self,
        record: ScheduleRecord,
        due_at: dt.datetime,
        actor: Actor,
        *,
        manual: bool,
        reason: str | None = None,
    ) -> ExecutionRecord | None:
        """Prepare as a manual run would be, store it with its firing row, then open the
        approval request and audit (``Submission.after_submit``). None: tick taken."""
        s = record.schedule
        t = s.target
        common: dict[str, Any] = {
            "requested_by": actor.name,
            "actor": actor,
            "throttle": s.throttle,
            "gate": self.submission.approvals.need_for,
        }
        if t.kind is TargetKind.SCRIPT:
            assert t.script is not None
            script = self.store.get_script(t.script)
            version = self.store.get_version(script.id, t.version)
            prepared = prepare_script(self.store, version, s.selector, s.parameters, **common)
        elif t.kind is TargetKind.COMMAND:
            assert t.command is not None
            prepared = prepare_command(
                self.store, t.command, s.selector, timeout=t.timeout, shell=t.shell, **common
            )
        elif t.kind is TargetKind.JOB:
            assert t.job_type is not None
            job = render_job(t.job_type, t.job_fields)
            prepared = prepare_job(self.store, job, t.job_fields, s.selector, **common)
        else:
            raise ValidationError("workflow: workflows cannot be scheduled yet", field="workflow")
        claim = FiringClaim(
            record.id,
            due_at,
            manual=manual,
            script_version=prepared.new.script_version,
            content_hash=prepared.new.content_hash,
            reason=reason,
        )
        stored = self.store.fire_schedule(claim, prepared.new)
        if stored is None:
            return None
        return self.submission.after_submit(actor, stored.id)

    def firings(self, schedule_id: str, *, limit: int = 100, offset: int = 0) -> list[FiringRecord]:
        record = self.store.get_schedule(schedule_id)
        return self.store.list_firings(record.id, limit=limit, offset=offset)

    def next_run_after(self, schedule: Schedule, after: dt.datetime) -> dt.datetime | None:
        return next_firing(schedule.cron, after)


def owners_from(users: SecurityStore) -> ActorLookup:
    """An :data:`ActorLookup` over the stored users: their roles (custom ones resolved)
    as they are at fire time; a disabled or deleted user is None."""

    def lookup(name: str) -> Actor | None:
        try:
            user = users.get_user(name)
        except NotFoundError:
            return None
        if user.disabled:
            return None
        perms = permissions_of(user.roles, users.custom_roles())
        return Actor(name=user.name, roles=user.roles, permissions=perms)

    return lookup

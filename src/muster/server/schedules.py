"""``/api/v1/automation/schedules``: cron schedules, their firings, pause, resume, run now.

Routes parse and render; :class:`~muster.services.schedules.ScheduleService`
validates (a bad cron, an unknown time zone, an end date in the past: 422
naming the field), stores and audits. ``last_status`` is the status of the
execution the last firing started (``succeeded``, ``running``...), or the
firing's own when it started none (``missed``, ``skipped``, ``failed``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from muster.domain.schedules import (
    MisfirePolicy,
    Schedule,
    ScheduleTarget,
    TargetKind,
    parse_cron,
)
from muster.domain.throttle import Throttle
from muster.errors import NotFoundError, ValidationError
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, get_context
from muster.server.limits import check_command
from muster.server.schemas.executions import ExecutionOut
from muster.server.schemas.schedules import FiringOut, ScheduleIn, ScheduleOut
from muster.server.views import execution_out
from muster.store.protocols import ServerStore
from muster.store.schedule_records import FiringRecord, ScheduleRecord

__all__ = ["firing_out", "router", "schedule_from", "schedule_out"]

router = APIRouter(prefix="/api/v1/automation/schedules", tags=["schedules"])
Ctx = Annotated[ServerContext, Depends(get_context)]


def schedule_from(body: ScheduleIn) -> Schedule:
    """The domain schedule a request describes (ValidationError naming the field)."""
    cron = parse_cron(body.cron_expression, body.timezone)
    if body.end_at is not None and body.end_at.tzinfo is None:
        raise ValidationError("end_at: needs a time zone (e.g. Z or +01:00)", field="end_at")
    version = body.version if isinstance(body.version, int) else None
    target = ScheduleTarget(
        kind=TargetKind(body.target),
        script=body.script,
        version=version if isinstance(version, int) else None,
        command=body.command,
        shell=body.shell,
        timeout=body.timeout,
        job_type=body.job_type,
        job_fields=body.job_fields,
        workflow=body.workflow,
    )
    return Schedule(
        name=body.name,
        cron=cron,
        target=target,
        selector=tuple(body.host_ids),
        parameters=body.parameter_values,
        throttle=Throttle(body.forks, body.per_group, body.delay),
        enabled=body.enabled,
        max_runs=body.max_runs,
        end_at=body.end_at.astimezone(dt.UTC) if body.end_at else None,
        misfire_policy=MisfirePolicy(body.misfire_policy),
        catch_up_limit=body.catch_up_limit,
        max_lateness=dt.timedelta(seconds=body.max_lateness) if body.max_lateness else None,
    )


def _execution_status(store: ServerStore, execution_id: str | None) -> str | None:
    if execution_id is None:
        return None
    try:
        return store.get_execution(execution_id).status.value
    except NotFoundError:
        return "deleted"


def schedule_out(store: ServerStore, r: ScheduleRecord) -> ScheduleOut:
    s = r.schedule
    t = s.target
    last = r.last_firing_status.value if r.last_firing_status else None
    if last == "fired":
        last = _execution_status(store, r.last_execution_id)
    return ScheduleOut(
        id=r.id,
        name=s.name,
        cron_expression=s.cron.expression,
        timezone=s.cron.timezone,
        target=t.kind.value,
        target_label=t.label,
        script_id=t.script if t.kind is TargetKind.SCRIPT else None,
        version=(t.version or "latest") if t.kind is TargetKind.SCRIPT else None,
        command=t.command,
        shell=t.shell,
        timeout=t.timeout,
        job_type=t.job_type,
        job_fields=dict(t.job_fields),
        host_ids=list(s.selector),
        parameter_values=dict(s.parameters),
        forks=s.throttle.forks,
        per_group=s.throttle.per_group,
        delay=s.throttle.delay,
        enabled=s.enabled,
        max_runs=s.max_runs,
        runs=r.runs,
        end_at=s.end_at,
        misfire_policy=s.misfire_policy.value,
        catch_up_limit=s.catch_up_limit,
        max_lateness=s.max_lateness.total_seconds() if s.max_lateness else None,
        last_run=r.last_run,
        last_status=last,
        last_execution_id=r.last_execution_id,
        next_run=r.next_run if s.enabled else None,
        created_by=s.created_by,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def firing_out(store: ServerStore, f: FiringRecord) -> FiringOut:
    return FiringOut(
        id=f.id,
        due_at=f.due_at,
        fired_at=f.fired_at,
        status=f.status.value,
        execution_id=f.execution_id,
        execution_status=_execution_status(store, f.execution_id),
        script_version=f.script_version,
        content_hash=f.content_hash,
        reason=f.reason,
        manual=f.manual,
    )


def _checked(ctx: ServerContext, body: ScheduleIn) -> Schedule:
    if body.command is not None:
        check_command(ctx.settings, body.command)
    return schedule_from(body)


@router.get("", response_model=list[ScheduleOut])
def list_schedules(ctx: Ctx, enabled: bool | None = None) -> list[ScheduleOut]:
    return [schedule_out(ctx.store, r) for r in ctx.store.list_schedules(enabled=enabled)]


@router.post("", response_model=ScheduleOut, status_code=201)
def create_schedule(body: ScheduleIn, ctx: Ctx, who: CurrentActor) -> ScheduleOut:
    """Owned by the caller: its ticks run with the caller's rights as they are then."""
    record = ctx.schedules.create(who, _checked(ctx, body))
    return schedule_out(ctx.store, record)


@router.get("/{schedule_id}", response_model=ScheduleOut)
def get_schedule(schedule_id: str, ctx: Ctx) -> ScheduleOut:
    return schedule_out(ctx.store, ctx.store.get_schedule(schedule_id))


@router.put("/{schedule_id}", response_model=ScheduleOut)
def replace_schedule(
    schedule_id: str, body: ScheduleIn, ctx: Ctx, who: CurrentActor
) -> ScheduleOut:
    record = ctx.schedules.replace(who, schedule_id, _checked(ctx, body))
    return schedule_out(ctx.store, record)


@router.delete("/{schedule_id}", status_code=204)
def delete_schedule(schedule_id: str, ctx: Ctx, who: CurrentActor) -> Response:
    """Its firings go with it; the executions it started stay."""
    ctx.schedules.delete(who, schedule_id)
    return Response(status_code=204)


@router.post("/{schedule_id}/pause", response_model=ScheduleOut)
def pause_schedule(schedule_id: str, ctx: Ctx, who: CurrentActor) -> ScheduleOut:
    return schedule_out(ctx.store, ctx.schedules.set_enabled(who, schedule_id, False))


@router.post("/{schedule_id}/resume", response_model=ScheduleOut)
def resume_schedule(schedule_id: str, ctx: Ctx, who: CurrentActor) -> ScheduleOut:
    """Ticks while paused are not owed: the next run is the next tick from now."""
    return schedule_out(ctx.store, ctx.schedules.set_enabled(who, schedule_id, True))


@router.post("/{schedule_id}/run-now", response_model=ExecutionOut, status_code=201)
def run_now(schedule_id: str, ctx: Ctx, who: CurrentActor) -> ExecutionOut:
    """One execution outside the cron, as the caller (not counted against max_runs)."""
    return execution_out(ctx.schedules.run_now(who, schedule_id))


@router.get("/{schedule_id}/firings", response_model=list[FiringOut])
def list_firings(
    schedule_id: str,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[FiringOut]:
    """Every tick recorded, newest first, with the execution each started."""
    firings = ctx.schedules.firings(schedule_id, limit=limit, offset=offset)
    return [firing_out(ctx.store, f) for f in firings]

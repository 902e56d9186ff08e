"""Ad-hoc commands and seed 001's built-in job types, each with its fixed priority."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError as PydanticValidationError

from muster.domain.jobtypes import JOB_PRIORITIES, render_job
from muster.errors import PermissionDeniedError
from muster.security.rbac import Permission
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, get_context
from muster.server.limits import check_command
from muster.server.schemas.executions import ExecutionOut
from muster.server.schemas.jobs import CommandIn, JobIn
from muster.server.views import execution_out

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/automation", tags=["jobs"])
_THROTTLE: set[str] = {"forks", "per_group", "delay"}
Ctx = Annotated[ServerContext, Depends(get_context)]


@router.post("/commands", response_model=ExecutionOut, status_code=201)
def run_command(body: CommandIn, ctx: Ctx, who: CurrentActor) -> ExecutionOut:
    """Run one command line through ``shell -c`` on every host (normal priority).

    Needs ``commands.run`` (the route's rule; checked here too, for the ``command``
    job type that arrives through ``/jobs``)."""
    if not who.can(Permission.COMMANDS_RUN):
        raise PermissionDeniedError(f"{who.name} lacks permission {Permission.COMMANDS_RUN}")
    check_command(ctx.settings, body.command)
    execution = ctx.submission.command(
        who,
        body.command,
        body.host_ids,
        timeout=body.timeout,
        shell=body.shell,
        throttle=body.throttle(),
    )
    return execution_out(execution)


@router.get("/job-types")
def job_types() -> dict[str, Any]:
    """Every job type with its fixed priority."""
    return {
        "items": [{"type": t.value, "priority": p.name.lower()} for t, p in JOB_PRIORITIES.items()]
    }


@router.post("/jobs", response_model=ExecutionOut, status_code=201)
def run_job(body: JobIn, ctx: Ctx, who: CurrentActor) -> ExecutionOut:
    """A built-in job: the type's fields are validated by name before anything is queued."""
    fields: dict[str, Any] = dict(body.model_extra or {})
    if body.type == "command":
        try:
            command = CommandIn.model_validate(
                {"host_ids": body.host_ids, **fields, **body.model_dump(include=_THROTTLE)}
            )
        except PydanticValidationError as exc:
            raise RequestValidationError(exc.errors()) from exc
        return run_command(command, ctx, who)
    job = render_job(body.type, fields)
    execution = ctx.submission.job(who, job, fields, body.host_ids, throttle=body.throttle())
    return execution_out(execution)

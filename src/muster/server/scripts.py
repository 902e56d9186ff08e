"""``/api/v1/automation/scripts``: the versioned script library and its execute verb."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from muster.domain.render import placeholder_problems
from muster.domain.scripts import ScriptVersion
from muster.errors import NotFoundError, ValidationError
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, get_context
from muster.server.limits import check_parameter_values, check_script
from muster.server.schemas.common import MAX_OFFSET, MAX_VERSION, narrowed
from muster.server.schemas.executions import ExecutionOut
from muster.server.schemas.scripts import (
    ExecuteIn,
    ScriptIn,
    ScriptList,
    ScriptOut,
    ScriptSummaryOut,
    VersionList,
    VersionOut,
    VersionSummaryOut,
)
from muster.server.views import execution_out, script_out, version_out
from muster.server.workflows import instance_out
from muster.services.preview import preview
from muster.services.script_rollouts import start_script_rollout

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/automation/scripts", tags=["scripts"])
Ctx = Annotated[ServerContext, Depends(get_context)]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION)]


def _content(body: ScriptIn) -> ScriptVersion:
    version = body.to_version()
    problems = placeholder_problems(version)
    if problems:
        detail = "; ".join(f"${{{n}}}: {p}" for n, p in problems.items())
        raise ValidationError(
            f"body has placeholders no value could render: {detail}",
            field="body",
            problems={"body": detail},
        )
    return version


@router.get("", response_model=ScriptList)
def list_scripts(
    ctx: Ctx,
    tag: str | None = None,
    search: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ScriptList:
    page = ctx.store.list_scripts(tag=tag, search=search, limit=limit, offset=offset)
    required = ctx.approvals.scripts_requiring([s.id for s in page.items])
    items = [
        narrowed(
            ScriptSummaryOut,
            script_out(s, ctx.store.get_version(s.id), approval_required=s.id in required),
        )
        for s in page.items
    ]
    return ScriptList(items=items, total=page.total)


@router.post("", response_model=ScriptOut, status_code=201)
def save_script(body: ScriptIn, ctx: Ctx, response: Response, who: CurrentActor) -> ScriptOut:
    """Create or update by name: changed content is a new version, identical content none.

    ``requires_approval`` in the content turns the script's rule on only for an
    ``approvals.manage`` holder and never turns it off (see ``Approvals.request_script_rule``).
    """
    check_script(ctx.settings, body.body, [(p.name, p.default) for p in body.parameters])
    saved = ctx.store.save_script(_content(body), description=body.description, tags=body.tags)
    if not saved.created:
        response.status_code = 200
    required = ctx.approvals.request_script_rule(who, saved.script.id, body.requires_approval)
    return script_out(saved.script, saved.version, saved.created, approval_required=required)


@router.get("/{script_id}", response_model=ScriptOut)
def get_script(script_id: str, ctx: Ctx) -> ScriptOut:
    script = ctx.store.get_script(script_id)
    required = script.id in ctx.approvals.scripts_requiring([script.id])
    return script_out(script, ctx.store.get_version(script.id), approval_required=required)


@router.delete("/{script_id}", status_code=204)
def delete_script(script_id: str, ctx: Ctx) -> Response:
    script = ctx.store.get_script(script_id)
    ctx.store.delete_script(script.id)
    return Response(status_code=204)


@router.get("/{script_id}/versions", response_model=VersionList)
def list_versions(script_id: str, ctx: Ctx) -> VersionList:
    script = ctx.store.get_script(script_id)
    versions = sorted(ctx.store.list_versions(script.id), key=lambda v: v.number, reverse=True)
    items = [narrowed(VersionSummaryOut, version_out(v)) for v in versions]
    return VersionList(items=items, total=len(versions))


@router.get("/{script_id}/versions/{number}", response_model=VersionOut)
def get_version(script_id: str, number: VersionNumber, ctx: Ctx) -> VersionOut:
    script = ctx.store.get_script(script_id)
    return version_out(ctx.store.get_version(script.id, number))


@router.post("/{script_id}/versions/{number}/restore", response_model=ScriptOut)
def restore_version(
    script_id: str, number: VersionNumber, ctx: Ctx, who: CurrentActor
) -> ScriptOut:
    """Make an older version's content the newest (identical to latest: nothing new).

    The script's approval rule is untouched by whatever the old content says
    (except that an ``approvals.manage`` holder's restore may turn it on).
    """
    script = ctx.store.get_script(script_id)
    saved = ctx.store.restore_version(script.id, number)
    required = ctx.approvals.request_script_rule(who, script.id, saved.version.requires_approval)
    return script_out(saved.script, saved.version, saved.created, approval_required=required)


@router.post(
    "/{script_id}/execute",
    response_model=ExecutionOut,
    status_code=201,
    responses={200: {"description": "``dry_run``: the plan; nothing was queued"}},
)
def execute_script(
    script_id: str, body: ExecuteIn, ctx: Ctx, who: CurrentActor
) -> ExecutionOut | JSONResponse:
    """Pin the version's exact content hash now and queue one host run per host
    (``pending_approval`` with an approval request if the script's rule or a
    targeted group's requires one, whichever version is chosen).

    With ``"dry_run": true`` the same checks run and the answer (200) is the plan
    per host: selected or skipped, rendered body (secrets masked), shell,
    throttling and the approval it would wait for; nothing is queued."""
    check_parameter_values(ctx.settings, body.parameter_values)
    script = ctx.store.get_script(script_id)
    number = None if body.version == "latest" else body.version
    try:
        version = ctx.store.get_version(script.id, number)
    except NotFoundError as exc:
        raise ValidationError(str(exc), field="version") from exc
    if body.rollout is not None:
        if body.dry_run:
            raise ValidationError(
                "a rollout has no dry run here: start it, or use `muster workflow forecast`",
                field="dry_run",
            )
        check = body.throttle()
        started = start_script_rollout(
            ctx.workflows,
            who,
            script.name,
            version.domain(),
            version.number,
            body.host_ids,
            body.parameter_values,
            body.rollout.model_dump(),
            throttle={"forks": check.forks, "per_group": check.per_group, "delay": check.delay},
        )
        out = instance_out(ctx.store.instance_detail(started.id), full=False)
        return JSONResponse(jsonable_encoder(out), status_code=201)
    if body.dry_run:
        prepared = ctx.submission.prepare_script(
            who, version, body.host_ids, body.parameter_values, throttle=body.throttle()
        )
        return JSONResponse(jsonable_encoder(preview(prepared)), status_code=200)
    execution = ctx.submission.script(
        who, version, body.host_ids, body.parameter_values, throttle=body.throttle()
    )
    return execution_out(execution)

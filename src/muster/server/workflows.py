"""``/api/v1/automation/workflows`` and ``/workflow-instances``: definitions and their runs.

Definitions are pushed by name as YAML or JSON (``{"source": TEXT}``,
``{"definition": {...}}``, or the text itself as ``application/yaml``); a bad
one answers 422 naming the step and the field. ``POST .../validate`` is the
editor's check as you type (the problem, or the parsed steps and the graph as
SVG). ``start`` queues an instance, or with ``"dry_run": true`` returns the plan
per step and host with nothing queued. Instances are acted on as seed 003 says:
``PUT .../{id}?action=pause|resume|kill`` (``&duration=5m`` pauses for a
while), also on one step, plus ``action=retry`` (a failed step, or a failed
instance from its failed steps). The routes parse, call
:class:`muster.services.workflows.Workflows`, and render.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from muster.domain.durations import parse_duration
from muster.domain.workflows import InstanceStatus, Workflow, WorkflowError, workflow_to_dict
from muster.engine.workflow_store import WorkflowRecord
from muster.errors import NotFoundError, ValidationError
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, get_context
from muster.server.schemas.common import MAX_OFFSET
from muster.server.schemas.common import Request as RequestModel
from muster.server.workflow_svg import render_svg
from muster.services.rollout_state import ROLLOUT, rollout_view
from muster.store.workflow_durable import InstanceDetail

__all__ = ["definitions", "instance_out", "instances", "workflow_out"]

definitions = APIRouter(prefix="/api/v1/automation/workflows", tags=["workflows"])
instances = APIRouter(prefix="/api/v1/automation/workflow-instances", tags=["workflows"])
Ctx = Annotated[ServerContext, Depends(get_context)]
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
_MAX_SOURCE = 4 * 1024 * 1024


class StartIn(RequestModel):
    parameters: dict[str, Any] = Field(default_factory=dict)
    #: Selector for the steps that name no targets (and the workflow names none).
    targets: str | None = Field(default=None, max_length=4096)
    version: int | None = Field(default=None, ge=1)
    dry_run: bool = False


def _steps_out(workflow: Workflow) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "type": s.type.value,
            "name": s.name,
            "targets": s.targets,
            "depends_on": list(s.depends_on),
            "routes": dict(s.routes()),
        }
        for s in workflow.steps
    ]


def workflow_out(record: WorkflowRecord, source: str | None = None) -> dict[str, Any]:
    wf = record.workflow
    return {
        "name": record.name,
        "version": record.version,
        "content_hash": record.content_hash,
        "description": wf.description,
        "parameters": [p.name for p in wf.parameters],
        "steps": _steps_out(wf),
        "created_at": record.created_at,
        "created_by": record.created_by,
        **({"source": source, "definition": workflow_to_dict(wf)} if source is not None else {}),
    }


def _duration(step_id: str | None, started: Any, finished: Any) -> float | None:
    if started is None or finished is None:
        return None
    return float((finished - started).total_seconds())


def instance_out(detail: InstanceDetail, *, full: bool = True) -> dict[str, Any]:
    """An instance with every step's state and (``full``) each host's result."""
    rec = detail.record
    st = rec.state
    out: dict[str, Any] = {
        "id": rec.id,
        "workflow": rec.workflow,
        "version": rec.version,
        "content_hash": rec.content_hash,
        "status": st.status.value,
        "waiting_reason": st.wait_reason.value if st.wait_reason else None,
        "paused": st.paused,
        "paused_until": st.paused_until,
        "message": st.message,
        "parameters": dict(rec.params),
        "targets": rec.targets,
        "created_by": rec.created_by,
        "created_at": rec.created_at,
        "started_at": st.started_at,
        "finished_at": st.finished_at,
    }
    rollout = detail.context.get(ROLLOUT)
    if rollout is not None:
        out["rollout"] = rollout_view(rollout)
    if detail.context.get("parent"):
        out["rollout_of"] = {
            "instance_id": detail.context["parent"],
            "part": detail.context.get("part"),
            "hosts": list(detail.context.get("hosts") or ()),
        }
    if not full:
        return out
    steps = []
    for sid, s in st.steps.items():
        link = detail.links.get(sid)
        result = detail.results.get(sid)
        hosts = []
        if result is not None:
            hosts = [
                {
                    "host": h.host,
                    "state": h.state,
                    "exit_code": h.exit_code,
                    "stdout": h.stdout,
                    "stderr": h.stderr,
                    "json": dict(h.json),
                    "message": h.message,
                    "duration": h.duration,
                }
                for h in result.hosts.values()
            ]
        elif s.hosts:
            hosts = [{"host": h, "state": state} for h, state in s.hosts.items()]
        steps.append(
            {
                "id": sid,
                "state": s.status.value,
                "attempt": s.attempt,
                "active": s.active,
                "wait_reason": s.wait_reason.value if s.wait_reason else None,
                "wake_at": s.wake_at,
                "paused": s.paused,
                "paused_until": s.paused_until,
                "message": s.message,
                "branch": s.branch,
                "started_at": s.started_at,
                "finished_at": s.finished_at,
                "duration": _duration(sid, s.started_at, s.finished_at),
                "execution_ids": list(link.execution_ids) if link else [],
                "approval_id": link.approval_id if link else None,
                "result_attempt": result.attempt if result is not None else None,
                "hosts": hosts,
            }
        )
    out["steps"] = steps
    return out


async def _definition_body(request: Request) -> tuple[str | None, dict[str, Any] | None]:
    """``(source, definition)`` from a JSON body or a YAML/text one."""
    raw = await request.body()
    if len(raw) > _MAX_SOURCE:
        raise ValidationError("the definition is too large (4 MiB at most)", field="source")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("the body is not UTF-8 text", field="source") from None
    if ctype in _YAML_TYPES:
        return text, None
    try:
        data = json.loads(text or "null")
    except ValueError:
        raise ValidationError(
            "the body is not JSON (send YAML as application/yaml)", field="source"
        ) from None
    if not isinstance(data, dict):
        raise ValidationError('send {"source": TEXT} or {"definition": {...}}', field="source")
    if "source" in data or "definition" in data:
        extra = sorted(set(data) - {"source", "definition"})
        if extra:
            raise ValidationError(f"unknown field(s): {', '.join(extra)}", field=extra[0])
        source = data.get("source")
        definition = data.get("definition")
        if source is not None and not isinstance(source, str):
            raise ValidationError("source must be text (YAML or JSON)", field="source")
        if definition is not None and not isinstance(definition, dict):
            raise ValidationError("definition must be an object", field="definition")
        return source, definition
    return None, data  # the definition itself


# -- definitions ----------------------------------------------------------------------


@definitions.get("")
def list_workflows(ctx: Ctx) -> dict[str, Any]:
    items = [workflow_out(r) for r in ctx.store.list_workflows()]
    return {"items": items, "total": len(items)}


@definitions.post("", status_code=201)
async def push_workflow(request: Request, ctx: Ctx, who: CurrentActor, response: Response) -> Any:
    """Create or update by name: changed content is a new version, identical none (200)."""
    source, definition = await _definition_body(request)
    record, created = await run_in_threadpool(ctx.workflows.push, who, source, definition)
    if not created:
        response.status_code = 200
    return {**workflow_out(record), "created": created}


@definitions.post("/validate")
async def validate_workflow(request: Request, ctx: Ctx) -> dict[str, Any]:
    """The editor's check: ``valid`` and the problem (step, field, message), or the
    steps and the graph as SVG. Never stores anything; always 200."""
    try:
        source, definition = await _definition_body(request)
    except ValidationError as exc:
        return {"valid": False, "problem": {"step": None, "field": exc.field, "message": str(exc)}}
    checked = await run_in_threadpool(ctx.workflows.check, source, definition)
    if checked.workflow is None:
        problem = checked.problem
        assert problem is not None
        step = problem.step if isinstance(problem, WorkflowError) else None
        return {
            "valid": False,
            "problem": {"step": step, "field": problem.field, "message": str(problem)},
        }
    wf = checked.workflow
    types = {s.id: s.type.value for s in wf.steps}
    return {
        "valid": True,
        "problem": None,
        "name": wf.name,
        "steps": _steps_out(wf),
        "svg": render_svg(wf.steps, types=types),
    }


@definitions.get("/{name}")
def get_workflow(name: str, ctx: Ctx, version: Annotated[int | None, Query(ge=1)] = None) -> Any:
    record = ctx.store.get_workflow(name, version)
    return workflow_out(record, ctx.store.workflow_source(record.name, record.version))


@definitions.get("/{name}/versions")
def list_versions(name: str, ctx: Ctx) -> dict[str, Any]:
    items = [workflow_out(r) for r in reversed(ctx.store.list_workflow_versions(name))]
    return {"items": items, "total": len(items)}


@definitions.get("/{name}/graph.svg", response_class=Response)
def workflow_graph(
    name: str, ctx: Ctx, version: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    wf = ctx.store.get_workflow(name, version).workflow
    svg = render_svg(wf.steps, types={s.id: s.type.value for s in wf.steps})
    return Response(svg, media_type="image/svg+xml")


@definitions.delete("/{name}", status_code=204)
def delete_workflow(name: str, ctx: Ctx, who: CurrentActor) -> Response:
    ctx.workflows.delete(who, name)
    return Response(status_code=204)


@definitions.post("/{name}/start", status_code=201)
def start_workflow(name: str, body: StartIn, ctx: Ctx, who: CurrentActor) -> Any:
    """Queue an instance (201), or with ``dry_run`` answer the plan (200), nothing queued."""
    started = ctx.workflows.start(
        who,
        name,
        body.parameters,
        targets=body.targets,
        version=body.version,
        dry_run=body.dry_run,
    )
    if isinstance(started, dict):
        return JSONResponse(jsonable_encoder(started), status_code=200)
    return instance_out(ctx.store.instance_detail(started.id))


# -- instances --------------------------------------------------------------------------


@instances.get("")
def list_instances(
    ctx: Ctx,
    workflow: str | None = None,
    status: InstanceStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    if workflow is not None:
        workflow = ctx.store.get_workflow(workflow).name
    page = ctx.store.list_instances(workflow=workflow, status=status, limit=limit, offset=offset)
    return {
        "items": [
            instance_out(InstanceDetail(record=r, links={}, results={}), full=False) for r in page
        ],
        "total": ctx.store.count_instances(workflow=workflow, status=status),
        "limit": limit,
        "offset": offset,
    }


@instances.get("/{instance_id}")
def get_instance(instance_id: str, ctx: Ctx) -> dict[str, Any]:
    return instance_out(ctx.store.instance_detail(instance_id))


@instances.get("/{instance_id}/graph.svg", response_class=Response)
def instance_graph(instance_id: str, ctx: Ctx) -> Response:
    detail = ctx.store.instance_detail(instance_id)
    rec = detail.record
    wf = ctx.store.get_workflow(rec.workflow, rec.version).workflow
    states = {sid: s.status.value for sid, s in rec.state.steps.items()}
    svg = render_svg(wf.steps, states=states, types={s.id: s.type.value for s in wf.steps})
    return Response(svg, media_type="image/svg+xml")


def _seconds(duration: str | None) -> float | None:
    if duration is None or duration == "":
        return None
    return float(parse_duration(duration, field="duration"))


@instances.put("/{instance_id}")
def act_on_instance(
    instance_id: str,
    ctx: Ctx,
    who: CurrentActor,
    action: Annotated[str, Query(max_length=16)],
    duration: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """``action=pause|resume|kill|retry`` (``duration`` with pause: for that long); a
    rollout's instance also takes ``abort`` (no rollback) and ``rollback``."""
    detail = ctx.workflows.act(who, instance_id, action, duration=_seconds(duration))
    return instance_out(detail)


@instances.put("/{instance_id}/steps/{step_id}")
def act_on_step(
    instance_id: str,
    step_id: str,
    ctx: Ctx,
    who: CurrentActor,
    action: Annotated[str, Query(max_length=16)],
    duration: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """One step: pause (only before it starts), resume, kill, retry (a failed one)."""
    detail = ctx.workflows.act(who, instance_id, action, step=step_id, duration=_seconds(duration))
    out = instance_out(detail)
    step = next(s for s in out["steps"] if s["id"] == step_id)
    return {**step, "instance": {k: out[k] for k in ("id", "status", "waiting_reason")}}


@instances.get("/{instance_id}/steps/{step_id}")
def get_step(instance_id: str, step_id: str, ctx: Ctx) -> dict[str, Any]:
    """One step's state and per-host output (seed 003's step console output)."""
    out = instance_out(ctx.store.instance_detail(instance_id))
    for step in out["steps"]:
        if step["id"] == step_id:
            return dict(step)
    raise NotFoundError(f"instance {instance_id} has no step {step_id!r}")

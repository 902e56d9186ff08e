"""Workflows in the console: the list, an editor that validates as you type, the
graph drawn by the server, starting an instance, and each instance's view (graph
coloured by state, per-step hosts and output, pause / resume / kill / retry).

Every action goes through :class:`~muster.services.workflows.Workflows` on the
server's context, as the API does: the same validation (the problem names the
step and the field), the same audit records and permissions. The editor's live
check calls the API's ``POST /api/v1/automation/workflows/validate``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from muster.domain.durations import parse_duration
from muster.domain.workflows import WorkflowError
from muster.errors import ConflictError, NotFoundError, ValidationError
from muster.server.actors import request_actor
from muster.server.web.inbox import SUBJECTS, Subject
from muster.server.web.render import (
    HtmlErrorRoute,
    error_page,
    form_data,
    in_thread,
    page,
    web_context,
)
from muster.server.workflow_svg import render_svg
from muster.server.workflows import instance_out
from muster.services.actor import Actor

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

_NEW = """name: my-workflow
targets: web
steps:
  - id: first
    command: echo hello
  - id: second
    depends_on: [first]
    command: echo "first said {{step_first.stdout}}"
"""


def _workflow_subject(ctx: Any, rec: Any) -> Subject:
    """The inbox line of a workflow approval step's request."""
    _, _, rest = rec.request.subject.partition(":")
    instance_id, _, step = rest.partition(":")
    try:
        name = ctx.store.get_instance(instance_id).workflow
    except NotFoundError:
        name = "a deleted workflow"
    return Subject(
        f"workflow {name}: approval step {step}",
        f"/workflow-instances/{instance_id}",
        f"instance {instance_id[:8]}",
    )


SUBJECTS["workflow"] = _workflow_subject


def _who(request: Request) -> Actor:
    return request_actor(request) or Actor(name="console")


def _field(data: dict[str, list[str]], name: str) -> str:
    return (data.get(name) or [""])[-1]


@router.get("/workflows", response_class=HTMLResponse)
async def workflows_page(request: Request) -> HTMLResponse:
    ctx = web_context(request)

    def build() -> HTMLResponse:
        items = ctx.store.list_workflows()
        recent = ctx.store.list_instances(limit=25)
        return page(
            request, "workflows.html", section="workflows", workflows=items, instances=recent
        )

    shown: HTMLResponse = await in_thread(build)
    return shown


def _editor(
    request: Request,
    *,
    name: str | None,
    source: str,
    problem: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = web_context(request)
    svg = ""
    record = None
    instances: list[Any] = []
    if name is not None:
        record = ctx.store.get_workflow(name)
        wf = record.workflow
        svg = render_svg(wf.steps, types={s.id: s.type.value for s in wf.steps})
        instances = ctx.store.list_instances(workflow=record.name, limit=25)
    return page(
        request,
        "workflow.html",
        status_code=status_code,
        section="workflows",
        record=record,
        source=source,
        problem=problem,
        svg=Markup(svg),
        instances=instances,
    )


@router.get("/workflows/new", response_class=HTMLResponse)
async def new_workflow(request: Request) -> HTMLResponse:
    shown: HTMLResponse = await in_thread(lambda: _editor(request, name=None, source=_NEW))
    return shown


@router.get("/workflows/{workflow}", response_class=HTMLResponse)
async def workflow_page(request: Request, workflow: str) -> HTMLResponse:
    ctx = web_context(request)

    def build() -> HTMLResponse:
        record = ctx.store.get_workflow(workflow)
        return _editor(request, name=record.name, source=ctx.store.workflow_source(record.name))

    shown: HTMLResponse = await in_thread(build)
    return shown


@router.post("/workflows", response_class=HTMLResponse)
async def save_workflow(request: Request) -> Response:
    data = await form_data(request)
    source = _field(data, "source")
    ctx = web_context(request)
    try:
        record, _ = await in_thread(ctx.workflows.push, _who(request), source, None)
    except ValidationError as exc:
        step = exc.step if isinstance(exc, WorkflowError) else None
        problem = {"step": step, "field": exc.field, "message": exc.message}
        shown: HTMLResponse = await in_thread(
            lambda: _editor(request, name=None, source=source, problem=problem, status_code=422)
        )
        return shown
    return RedirectResponse(f"/workflows/{record.name}", status_code=303)


@router.post("/workflows/{workflow}/start", response_class=HTMLResponse)
async def start_workflow(request: Request, workflow: str) -> Response:
    data = await form_data(request)
    params: dict[str, str] = {}
    for line in _field(data, "parameters").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip():
            params[name.strip()] = value
    targets = _field(data, "targets").strip() or None
    ctx = web_context(request)
    try:
        started = await in_thread(
            ctx.workflows.start, _who(request), workflow, params, targets=targets
        )
    except ValidationError as exc:
        problem = {"step": getattr(exc, "step", None), "field": exc.field, "message": exc.message}

        def again() -> HTMLResponse:
            record = ctx.store.get_workflow(workflow)
            return _editor(
                request,
                name=record.name,
                source=ctx.store.workflow_source(record.name),
                problem=problem,
                status_code=422,
            )

        shown: HTMLResponse = await in_thread(again)
        return shown
    assert not isinstance(started, dict)
    return RedirectResponse(f"/workflow-instances/{started.id}", status_code=303)


@router.get("/workflow-instances/{instance_id}", response_class=HTMLResponse)
async def instance_page(request: Request, instance_id: str) -> HTMLResponse:
    ctx = web_context(request)

    def build() -> HTMLResponse:
        detail = ctx.store.instance_detail(instance_id)
        rec = detail.record
        wf = ctx.store.get_workflow(rec.workflow, rec.version).workflow
        states = {sid: s.status.value for sid, s in rec.state.steps.items()}
        types = {s.id: s.type.value for s in wf.steps}
        svg = render_svg(wf.steps, states=states, types=types, link="#step-{step}")
        return page(
            request,
            "workflow_instance.html",
            section="workflows",
            i=instance_out(detail),
            types=types,
            svg=Markup(svg),
        )

    shown: HTMLResponse = await in_thread(build)
    return shown


@router.post("/workflow-instances/{instance_id}/action", response_class=HTMLResponse)
async def act(request: Request, instance_id: str) -> Response:
    data = await form_data(request)
    action = _field(data, "action")
    step = _field(data, "step") or None
    text = _field(data, "duration").strip()
    ctx = web_context(request)
    try:
        duration = parse_duration(text, field="duration") if text else None
        await in_thread(
            ctx.workflows.act,
            _who(request),
            instance_id,
            action,
            step=step,
            duration=duration,
        )
    except (ConflictError, ValidationError) as exc:
        return error_page(request, 409 if isinstance(exc, ConflictError) else 422, str(exc))
    return RedirectResponse(f"/workflow-instances/{instance_id}", status_code=303)

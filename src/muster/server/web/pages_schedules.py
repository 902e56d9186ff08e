"""Schedules in the console: the list (cron, last run and status, next run), a form to
add one, pause, resume, run now, delete, and each schedule's firings with the
executions they started.

Everything goes through :class:`~muster.services.schedules.ScheduleService` on
the server's context, as the API does: the same validation (a bad cron or time
zone is shown beside its field), the same audit records and permissions.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError as PydanticValidationError

from muster.errors import ValidationError
from muster.server.actors import request_actor
from muster.server.schedules import firing_out, schedule_from, schedule_out
from muster.server.schemas.schedules import ScheduleIn
from muster.server.web.render import HtmlErrorRoute, form_data, in_thread, page, web_context

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

_FIELDS = (
    "name",
    "cron_expression",
    "timezone",
    "target",
    "script",
    "version",
    "command",
    "host_ids",
    "misfire_policy",
    "catch_up_limit",
    "max_runs",
    "end_at",
)
_DEFAULTS = {"timezone": "UTC", "target": "command", "misfire_policy": "run_once"}


def _render(
    request: Request,
    *,
    form: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    store = web_context(request).store
    schedules = [schedule_out(store, r) for r in store.list_schedules()]
    return page(
        request,
        "schedules.html",
        status_code=status_code,
        section="schedules",
        schedules=schedules,
        form={**_DEFAULTS, **(form or {})},
        problems=problems or {},
    )


@router.get("/schedules", response_class=HTMLResponse)
async def schedules_page(request: Request) -> HTMLResponse:
    shown: HTMLResponse = await in_thread(_render, request)
    return shown


def _body(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in form.items() if v}
    body["host_ids"] = [h.strip() for h in form.get("host_ids", "").split(",") if h.strip()]
    if body.get("target") != "script":
        body.pop("script", None)
        body.pop("version", None)
    if body.get("target") != "command":
        body.pop("command", None)
    return body


@router.post("/schedules", response_class=HTMLResponse)
async def add_schedule(request: Request) -> Response:
    data = await form_data(request)
    form = {k: (data.get(k) or [""])[-1].strip() for k in _FIELDS}
    ctx = web_context(request)
    try:
        try:
            body = ScheduleIn.model_validate(_body(form))
        except PydanticValidationError as exc:
            problems = {str(e["loc"][0]): e["msg"] for e in exc.errors() if e["loc"]}
            raise ValidationError("some fields were not accepted", problems=problems) from None
        schedule = schedule_from(body)
        await in_thread(ctx.schedules.create, request_actor(request), schedule)
    except ValidationError as exc:
        problems = dict(exc.problems) or {exc.field or "form": exc.message}
        shown: HTMLResponse = await in_thread(
            lambda: _render(request, form=form, problems=problems, status_code=422)
        )
        return shown
    return RedirectResponse("/schedules", status_code=303)


@router.get("/schedules/{schedule_id}", response_class=HTMLResponse)
async def schedule_page(request: Request, schedule_id: str) -> HTMLResponse:
    ctx = web_context(request)

    def build() -> HTMLResponse:
        record = ctx.store.get_schedule(schedule_id)
        firings = [firing_out(ctx.store, f) for f in ctx.schedules.firings(record.id, limit=200)]
        return page(
            request,
            "schedule.html",
            section="schedules",
            s=schedule_out(ctx.store, record),
            firings=firings,
        )

    shown: HTMLResponse = await in_thread(build)
    return shown


@router.post("/schedules/{schedule_id}/pause", response_class=HTMLResponse)
async def pause(request: Request, schedule_id: str) -> Response:
    ctx = web_context(request)
    await in_thread(ctx.schedules.set_enabled, request_actor(request), schedule_id, False)
    return RedirectResponse(f"/schedules/{schedule_id}", status_code=303)


@router.post("/schedules/{schedule_id}/resume", response_class=HTMLResponse)
async def resume(request: Request, schedule_id: str) -> Response:
    ctx = web_context(request)
    await in_thread(ctx.schedules.set_enabled, request_actor(request), schedule_id, True)
    return RedirectResponse(f"/schedules/{schedule_id}", status_code=303)


@router.post("/schedules/{schedule_id}/run-now", response_class=HTMLResponse)
async def run_now(request: Request, schedule_id: str) -> Response:
    ctx = web_context(request)
    actor = request_actor(request)
    if actor is None:  # the console always has a caller; fail closed all the same
        raise ValidationError("run-now needs a logged-in caller")
    execution = await in_thread(ctx.schedules.run_now, actor, schedule_id)
    return RedirectResponse(f"/executions/{execution.id}", status_code=303)


@router.post("/schedules/{schedule_id}/delete", response_class=HTMLResponse)
async def delete(request: Request, schedule_id: str) -> Response:
    ctx = web_context(request)
    await in_thread(ctx.schedules.delete, request_actor(request), schedule_id)
    return RedirectResponse("/schedules", status_code=303)

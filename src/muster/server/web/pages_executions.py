"""The execution view: live grid, counts, result groups, one host's output, cancel, retry.

The page polls one batched summary (``/ui/executions/{id}/summary``) while
the execution runs; a host's output streams over Server-Sent Events from
``/ui/executions/{id}/runs/{run_id}/output``, written from the loop the API's
execution stream shares (:mod:`muster.server.output_follow`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse

from muster.domain.approvals import Decision
from muster.domain.states import TERMINAL_STATES, ExecutionStatus
from muster.errors import ConflictError
from muster.server.actors import request_actor
from muster.server.context import ServerContext
from muster.server.header_values import parse_event_id
from muster.server.output_follow import End, Output, Snapshot, follow_output
from muster.server.redirects import safe_next
from muster.server.schemas.common import MAX_OFFSET
from muster.server.sse import sse
from muster.server.web.approval_view import approval_view, can_decide
from muster.server.web.render import HtmlErrorRoute, form_data, in_thread, page, web_context
from muster.server.web.summary import FILTERS, PAGE_SIZE, RERUN, GroupCache, summary
from muster.services.actor import Actor
from muster.store.base import HostRunRecord

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)


def _cache(ctx: ServerContext) -> GroupCache:
    if ctx.group_cache is None:
        ctx.group_cache = GroupCache()
    return ctx.group_cache


@router.get("/executions/{execution_id}", response_class=HTMLResponse)
def show_execution(
    request: Request,
    execution_id: str,
    filter: Annotated[str, Query(max_length=20)] = "",
    group: Annotated[str, Query(max_length=64)] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    ctx = web_context(request)
    record = ctx.store.execution_header(execution_id)
    script = None
    if record.script_id:
        script = ctx.store.get_script(record.script_id)
    waiting = None
    if record.status is ExecutionStatus.PENDING_APPROVAL:
        waiting = approval_view(ctx, record, request_actor(request), can_decide(request))
    state = summary(
        ctx.store,
        _cache(ctx),
        execution_id,
        filter_name=filter if filter in FILTERS or filter == RERUN else "",
        group=group,
        offset=offset,
    )
    return page(
        request,
        "execution.html",
        execution=record,
        script=script,
        state=state,
        filters=list(FILTERS),
        page_size=PAGE_SIZE,
        waiting=waiting,
    )


@router.get("/ui/executions/{execution_id}/summary")
def execution_summary(
    request: Request,
    execution_id: str,
    filter: Annotated[str, Query(max_length=20)] = "",
    group: Annotated[str, Query(max_length=64)] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JSONResponse:
    ctx = web_context(request)
    body = summary(
        ctx.store,
        _cache(ctx),
        execution_id,
        filter_name=filter if filter in FILTERS or filter == RERUN else "",
        group=group,
        offset=offset,
    )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "host": run.host_name,
        "state": run.state.value,
        "exit_code": run.exit_code,
        "attempt": run.attempt,
        "retry_of": run.retry_of,
        "reason": run.reason,
        "message": run.message,
        "waiting_reason": run.waiting_reason if run.state not in TERMINAL_STATES else None,
        "duration": run.duration,
        "stdout_truncated": run.stdout_truncated,
        "stderr_truncated": run.stderr_truncated,
    }


async def _run_events(
    ctx: ServerContext, execution_id: str, run_id: str, request: Request, cursor: int
) -> AsyncIterator[bytes]:
    """The shared output loop in the panel's shape: stdout and stderr, the run on
    every state read while it runs, then the finished run as the end. Nothing
    else ends the panel's stream: when the server stops or the run is deleted the
    stream just closes, so the browser reconnects (and gets a 404 if it is gone)."""
    yield b": host output\n\n"
    items = follow_output(
        ctx.store,
        ctx.live,
        execution_id,
        run_id=run_id,
        after=cursor,
        stopping=ctx.stopping,
        disconnected=request.is_disconnected,
    )
    # Closed with the response, so the notifier subscription ends with it.
    async with aclosing(items):
        async for item in items:
            match item:
                case Output(stream="stdout" | "stderr"):
                    yield sse("output", {"stream": item.stream, "data": item.data}, item.cursor)
                case Snapshot(runs=(run,)) if not run.state.terminal:
                    yield sse("state", _run_json(run), item.cursor)
                case End(run=HostRunRecord() as run):
                    yield sse("end", _run_json(run), item.cursor)


@router.get("/ui/executions/{execution_id}/runs/{run_id}/output")
async def run_output(request: Request, execution_id: str, run_id: str) -> StreamingResponse:
    """A host's output as SSE; a reconnecting browser resumes after its Last-Event-ID."""
    ctx = web_context(request)
    await in_thread(ctx.store.run_in_execution, execution_id, run_id)
    last = request.headers.get("last-event-id", "")
    cursor = parse_event_id(last) or 0
    return StreamingResponse(
        _run_events(ctx, execution_id, run_id, request, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/executions/{execution_id}/cancel", response_class=HTMLResponse)
async def cancel(request: Request, execution_id: str) -> RedirectResponse:
    ctx = web_context(request)
    record = await in_thread(ctx.store.execution_header, execution_id)
    if record.status.terminal:
        raise ConflictError(f"execution {execution_id} already ended ({record.status.value})")
    await in_thread(ctx.store.cancel_execution, execution_id)
    return RedirectResponse(f"/executions/{execution_id}", status_code=303)


async def _decide(request: Request, execution_id: str, decision: Decision) -> RedirectResponse:
    """One vote on the execution's open approval request, by the caller."""
    ctx = web_context(request)
    form = await form_data(request)
    reason = (form.get("reason") or [""])[-1].strip()[:500] or None
    actor = request_actor(request)
    if actor is None:
        actor = Actor("console")  # only without logins, where every page is open
    found = await in_thread(ctx.approvals.book.approval_for_execution, execution_id)
    if found is None:
        raise ConflictError(f"execution {execution_id} has no approval request to decide")
    await in_thread(ctx.approvals.decide, actor, found.id, decision, reason)
    target = safe_next((form.get("next") or [""])[-1] or f"/executions/{execution_id}")
    return RedirectResponse(target, status_code=303)


@router.post("/executions/{execution_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, execution_id: str) -> RedirectResponse:
    return await _decide(request, execution_id, Decision.APPROVE)


@router.post("/executions/{execution_id}/reject", response_class=HTMLResponse)
async def reject(request: Request, execution_id: str) -> RedirectResponse:
    return await _decide(request, execution_id, Decision.REJECT)


@router.post("/executions/{execution_id}/retry", response_class=HTMLResponse)
async def retry_failed(request: Request, execution_id: str) -> RedirectResponse:
    """Re-run only the failed, timed-out and lost hosts, as new attempts (waiting
    for a new approval when the rules say so, exactly as the API's retry)."""
    ctx = web_context(request)
    await in_thread(ctx.approvals.retry, request_actor(request), execution_id)
    ctx.track(execution_id)
    return RedirectResponse(f"/executions/{execution_id}?filter={RERUN}", status_code=303)

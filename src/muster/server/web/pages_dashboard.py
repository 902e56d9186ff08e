"""The dashboard: what runs now, what waits and why, what failed in the last day,
what waits for approval, and which schedules fire next.

Every list is short and read with the console's compact reads; nothing here
writes. Next firings are the enabled schedules' ``next_run`` (shown to
callers who may see schedules).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from muster.domain.approval_rules import ApprovalNeed
from muster.domain.states import ExecutionStatus, HostRunState
from muster.errors import NotFoundError
from muster.security.rbac import Permission as P
from muster.security.rbac import Principal
from muster.server.context import ServerContext
from muster.server.web.inbox import InboxItem, inbox
from muster.server.web.render import HtmlErrorRoute, in_thread, page, web_context
from muster.store.base import ExecutionRecord

__all__ = ["Firing", "next_firings", "router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

#: Rows per list on the dashboard.
ROWS = 10
DAY = dt.timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Firing:
    """One upcoming scheduled run, as the dashboard lists it."""

    at: dt.datetime
    title: str
    link: str | None = None


def next_firings(ctx: ServerContext, limit: int) -> list[Firing]:
    """The enabled schedules' next runs, soonest first."""
    due = [r for r in ctx.store.list_schedules(enabled=True) if r.next_run is not None]
    due.sort(key=lambda r: (r.next_run, r.name))
    return [Firing(r.next_run, r.name, f"/schedules/{r.id}") for r in due[:limit] if r.next_run]


@dataclass(frozen=True, slots=True)
class Waiting:
    execution: ExecutionRecord
    why: str


def _why(ctx: ServerContext, e: ExecutionRecord) -> str:
    """Why an execution has not started (or not finished starting)."""
    if e.status is ExecutionStatus.PENDING_APPROVAL:
        need = ApprovalNeed.from_json(e.policy.get("approval") or {})
        reasons = "; ".join(need.reasons) if need is not None and need.reasons else ""
        return "waiting for approval" + (f" ({reasons})" if reasons else "")
    cells = ctx.store.grid_page(e.id, states=[HostRunState.QUEUED], limit=1)
    if not cells.items:
        return "queued"
    try:
        run = ctx.store.get_host_run(cells.items[0].run_id)
    except NotFoundError:
        return "queued"
    return run.waiting_reason or "queued: waiting for a free worker"


def _names(ctx: ServerContext, items: list[ExecutionRecord]) -> dict[str, str]:
    names: dict[str, str] = {}
    for e in items:
        if e.script_id and e.script_id not in names:
            try:
                names[e.script_id] = ctx.store.get_script(e.script_id).name
            except NotFoundError:
                names[e.script_id] = "deleted script"
    return names


def _gather(ctx: ServerContext, who: Principal | None) -> dict[str, object]:
    store = ctx.store
    now = ctx.approvals.clock()
    running = store.list_executions(status=ExecutionStatus.RUNNING, limit=ROWS)
    waiting: list[Waiting] = []
    waiting_total = 0
    for status in (ExecutionStatus.QUEUED, ExecutionStatus.PENDING_APPROVAL):
        found = store.list_executions(status=status, limit=ROWS)
        waiting_total += found.total
        waiting += [Waiting(e, _why(ctx, e)) for e in found.items]
    failed_items: list[ExecutionRecord] = []
    failed_total = 0
    for status in (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT):
        found = store.list_executions(status=status, since=now - DAY, limit=ROWS)
        failed_total += found.total
        failed_items += found.items
    failed_items.sort(key=lambda e: e.created_at, reverse=True)
    approvals: list[InboxItem] = inbox(ctx, who)
    firings = next_firings(ctx, ROWS) if who is not None and who.can(P.SCHEDULES_VIEW) else None
    shown = [*running.items, *(w.execution for w in waiting), *failed_items]
    return {
        "running": running.items,
        "running_total": running.total,
        "waiting": waiting[:ROWS],
        "waiting_total": waiting_total,
        "failed": failed_items[:ROWS],
        "failed_total": failed_total,
        "approvals": approvals[:ROWS],
        "approvals_total": len(approvals),
        "firings": firings,
        "names": _names(ctx, shown),
    }


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    ctx = web_context(request)
    values = await in_thread(_gather, ctx, getattr(request.state, "principal", None))
    return page(request, "dashboard.html", **values)

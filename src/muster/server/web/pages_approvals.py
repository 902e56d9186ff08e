"""The approvals inbox: what waits for the viewer's vote, the policy and its progress,
approve or reject with a reason, the deadline.

Votes go through :meth:`muster.services.approvals.Approvals.decide`, as the
API's do (the service checks eligibility, settles the execution and writes
the audit record). The list comes from :func:`muster.server.web.inbox.inbox`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from muster.domain.approvals import Decision
from muster.server.actors import current_actor
from muster.server.web.inbox import inbox, waiting_count
from muster.server.web.page_tools import back_to, checked_notice, field, notice_redirect
from muster.server.web.render import (
    HtmlErrorRoute,
    form_data,
    in_thread,
    page,
    template_global,
    web_context,
)

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

#: The longest reason a vote may carry.
MAX_REASON = 2000


def _badge(request: object) -> int:
    """The navigation's count of requests waiting for the viewer (0 on any trouble)."""
    try:
        ctx = web_context(request)  # type: ignore[arg-type]
        return waiting_count(ctx, getattr(request.state, "principal", None))  # type: ignore[attr-defined]
    except Exception:
        return 0


template_global("approvals_waiting", _badge)


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(
    request: Request, done: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    ctx = web_context(request)
    items = await in_thread(inbox, ctx, getattr(request.state, "principal", None))
    mine = [i for i in items if i.mine]
    others = [i for i in items if not i.mine]
    return page(request, "approvals.html", mine=mine, others=others, done=checked_notice(request))


async def _decide(request: Request, approval_id: str, decision: Decision) -> RedirectResponse:
    ctx = web_context(request)
    form = await form_data(request)
    reason = field(form, "reason")[:MAX_REASON] or None
    actor = current_actor(request)
    rec = await in_thread(ctx.approvals.decide, actor, approval_id, decision, reason)
    if rec.execution_id:
        ctx.track(rec.execution_id)
    verb = "Approved" if decision is Decision.APPROVE else "Rejected"
    status = rec.request.status.value
    return notice_redirect(back_to(form, "/approvals"), f"{verb}: the request is now {status}.")


@router.post("/approvals/{approval_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, approval_id: str) -> RedirectResponse:
    return await _decide(request, approval_id, Decision.APPROVE)


@router.post("/approvals/{approval_id}/reject", response_class=HTMLResponse)
async def reject(request: Request, approval_id: str) -> RedirectResponse:
    return await _decide(request, approval_id, Decision.REJECT)

"""Approvals over HTTP (seed 000's endpoints): list, read, approve, reject.

The lifecycle (opening requests, votes, settling the execution, deadlines)
is :class:`muster.services.approvals.Approvals`, on ``ServerContext.approvals``;
these routes parse the request, call it with the caller, and render the request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from muster.domain.approvals import ApprovalStatus, Decision
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, get_context
from muster.store.approval_store import ApprovalRecord

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/automation/approvals", tags=["approvals"])
Ctx = Annotated[ServerContext, Depends(get_context)]


def _workflow_of(subject: str) -> dict[str, str] | None:
    """A workflow approval step's request names ``workflow:<instance>:<step>``."""
    kind, _, rest = subject.partition(":")
    instance_id, _, step = rest.partition(":")
    if kind != "workflow" or not instance_id or not step:
        return None
    return {"instance_id": instance_id, "step": step}


def _out(rec: ApprovalRecord) -> dict[str, Any]:
    r = rec.request
    return {
        "kind": "execution"
        if rec.execution_id
        else ("workflow_step" if _workflow_of(r.subject) else "other"),
        "workflow": _workflow_of(r.subject),
        "id": r.id,
        "subject": r.subject,
        "execution_id": rec.execution_id,
        "content_hash": rec.content_hash,
        "policy": r.policy.value,
        "approvers": [str(a) for a in r.approvers],
        "required": r.required,
        "requester": r.requester,
        "status": r.status.value,
        "created_at": r.created_at,
        "deadline": r.deadline,
        "decided_at": r.decided_at,
        "reason": r.reason,
        "votes": [
            {"user": v.user, "decision": v.decision.value, "reason": v.reason, "at": v.at}
            for v in r.votes
        ],
    }


@router.get("")
async def list_approvals(
    ctx: Ctx,
    status: ApprovalStatus | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=2**31 - 1),
) -> dict[str, Any]:
    page = await run_in_threadpool(ctx.approvals.page, status=status, limit=limit, offset=offset)
    return {
        "items": [_out(r) for r in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


@router.get("/{approval_id}")
def get_approval(approval_id: str, ctx: Ctx) -> dict[str, Any]:
    return _out(ctx.approvals.get(approval_id))


@router.post("/{approval_id}/approve")
def approve(
    approval_id: str, ctx: Ctx, who: CurrentActor, reason: str | None = None
) -> dict[str, Any]:
    """One approval vote; the execution is queued once the policy is met."""
    return _out(ctx.approvals.decide(who, approval_id, Decision.APPROVE, reason))


@router.post("/{approval_id}/reject")
def reject(
    approval_id: str, ctx: Ctx, who: CurrentActor, reason: str | None = None
) -> dict[str, Any]:
    """One rejection vote (by the requester: a withdrawal), with an optional reason."""
    return _out(ctx.approvals.decide(who, approval_id, Decision.REJECT, reason))

"""Approvals over HTTP (seed 000's endpoints) and their link to executions.

An execution whose rules require approval (``server.approval_gate``) is
stored ``pending_approval`` with the rule that applied in its ``policy``;
:func:`open_execution_approval` opens its request (the submit path should
call it right after creating the execution; :func:`sync_approvals` also
finds any execution still lacking one). A decision that settles a request
promotes the execution to queued or rejects it, and the execution must
still pin the content hash the approvers saw, or it is rejected. Only the
execution's newest request may settle it: a retry that needs approval
writes its pending attempts and their new request together, so an earlier
approval never promotes a later attempt.

:func:`sync_approvals` is idempotent and repairs every in-between state
(deadline passed, crash between settling and promoting); the list endpoint
runs it, and the server's reaper loop may too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from muster.domain.approval_rules import (
    DEFAULT_APPROVERS,
    DEFAULT_DEADLINE,
    DEFAULT_POLICY,
    ApprovalNeed,
    ApprovalRule,
    ApprovalScope,
)
from muster.domain.approvals import (
    ApprovalExpiredError,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    open_request,
)
from muster.domain.states import ExecutionStatus, HostRunState
from muster.errors import ConflictError
from muster.security.rbac import Principal
from muster.server.auth import CurrentUser, client_address, security_store
from muster.store._core import new_id
from muster.store.approval_store import ApprovalRecord
from muster.store.base import ExecutionRecord

__all__ = [
    "DEFAULT_APPROVERS",
    "DEFAULT_DEADLINE",
    "DEFAULT_POLICY",
    "new_request",
    "open_execution_approval",
    "router",
    "sync_approvals",
]

router = APIRouter(prefix="/api/v1/automation/approvals", tags=["approvals"])

_UNKNOWN: Final = "unknown"


def _role_members(app: Any) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for u in security_store(app).list_users():
        if not u.disabled:
            for role in u.roles:
                members.setdefault(role, []).append(u.name)
    return members


def open_execution_approval(
    app: Any,
    execution: ExecutionRecord,
    *,
    requester: str | None = None,
    policy: ApprovalPolicy | str | None = None,
    approvers: tuple[str, ...] | list[str] | None = None,
    deadline: dt.timedelta | Literal["default"] | None = "default",
) -> ApprovalRecord | None:
    """The execution's approval request, opened now if it has none; ``None`` if not pending.

    Policy, approvers and deadline come from the arguments, else the rule the
    gate recorded with the execution when it was submitted, else the script's
    rule (``PUT .../scripts/{id}/approval-policy``), else the defaults.
    """
    sec = security_store(app)
    existing = sec.approval_for_execution(execution.id)
    if existing is not None or execution.status is not ExecutionStatus.PENDING_APPROVAL:
        return existing
    need = ApprovalNeed.from_json(execution.policy.get("approval") or {})
    configured: ApprovalRule | None = need.decider if need is not None else None
    if configured is None and execution.script_id:
        stored = sec.approval_rule(ApprovalScope.SCRIPT, execution.script_id)
        configured = stored.rule if stored is not None else None
    if policy is None:
        policy = configured.policy if configured else DEFAULT_POLICY
    if approvers is None:
        approvers = configured.approvers if configured else DEFAULT_APPROVERS
    if deadline == "default":
        deadline = configured.deadline if configured else DEFAULT_DEADLINE
    now = sec.clock()
    request = open_request(
        id=new_id(),
        subject=f"execution:{execution.id}",
        policy=policy,
        approvers=approvers,
        requester=requester or execution.requested_by or _UNKNOWN,
        now=now,
        deadline=now + deadline if deadline is not None else None,
        role_members=_role_members(app),
    )
    return sec.create_approval(
        request, execution_id=execution.id, content_hash=execution.content_hash
    )


def new_request(app: Any, *, subject: str, rule: ApprovalRule, requester: str) -> ApprovalRequest:
    """A request under ``rule``, refused (``ValidationError``) if it could never be met."""
    now = security_store(app).clock()
    return open_request(
        id=new_id(),
        subject=subject,
        policy=rule.policy,
        approvers=rule.approvers,
        requester=requester or _UNKNOWN,
        now=now,
        deadline=now + rule.deadline if rule.deadline is not None else None,
        role_members=_role_members(app),
    )


def _settle_execution(app: Any, rec: ApprovalRecord) -> None:
    """Move the bound execution to where its settled request says (idempotent)."""
    if rec.execution_id is None or rec.request.resolution is None:
        return
    newest = security_store(app).approval_for_execution(rec.execution_id)
    if newest is None or newest.id != rec.id:
        return  # superseded: a retry's pending attempts wait for their own request
    store = app.state.muster.store
    execution = store.get_execution(rec.execution_id)
    if execution.status is not ExecutionStatus.PENDING_APPROVAL:
        return
    try:
        if rec.request.resolution is HostRunState.QUEUED:
            if rec.content_hash is not None and execution.content_hash != rec.content_hash:
                store.reject_execution(
                    execution.id, "script content differs from what was approved"
                )
            else:
                store.approve_execution(execution.id)
        else:
            store.reject_execution(execution.id, rec.request.reason or "rejected")
    except ConflictError:
        pass  # someone else moved it first


def sync_approvals(app: Any) -> int:
    """Expire due requests, open missing ones, settle executions; returns changes made."""
    sec = security_store(app)
    store = app.state.muster.store
    changed = 0
    for rec in sec.expire_due_approvals():
        _settle_execution(app, rec)
        changed += 1
    pending = store.list_executions(status=ExecutionStatus.PENDING_APPROVAL, limit=500)
    for execution in pending.items:
        found = sec.approval_for_execution(execution.id)
        if found is None:
            open_execution_approval(app, execution)
            changed += 1
        elif found.request.status.terminal:
            _settle_execution(app, found)
            changed += 1
    return changed


def _out(rec: ApprovalRecord) -> dict[str, Any]:
    r = rec.request
    return {
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
    request: Request,
    status: ApprovalStatus | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=2**31 - 1),
) -> dict[str, Any]:
    def work() -> Any:
        sync_approvals(request.app)
        return security_store(request.app).list_approvals(status=status, limit=limit, offset=offset)

    page = await run_in_threadpool(work)
    return {
        "items": [_out(r) for r in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


@router.get("/{approval_id}")
def get_approval(approval_id: str, request: Request) -> dict[str, Any]:
    return _out(security_store(request.app).get_approval(approval_id))


def _voting_roles(who: Principal) -> tuple[str, ...]:
    # A token narrowed to one role votes with that role only.
    if who.token_role is None:
        return who.roles
    return tuple(r for r in who.roles if r == who.token_role)


def _decide(
    request: Request, who: Principal, approval_id: str, decision: str, reason: str | None
) -> dict[str, Any]:
    sec = security_store(request.app)
    try:
        rec = sec.decide_approval(approval_id, who.name, _voting_roles(who), decision, reason)
    except ApprovalExpiredError:
        _settle_execution(request.app, sec.get_approval(approval_id))
        raise
    _settle_execution(request.app, rec)
    sec.record_audit(
        actor=who.name,
        action=f"approval.{decision}",
        target=f"approval:{approval_id}",
        address=client_address(request),
        details={
            "execution_id": rec.execution_id,
            "content_hash": rec.content_hash,
            "reason": reason,
            "status": rec.request.status.value,
        },
    )
    return _out(rec)


@router.post("/{approval_id}/approve")
def approve(
    approval_id: str, who: CurrentUser, request: Request, reason: str | None = None
) -> dict[str, Any]:
    """One approval vote; the execution is queued once the policy is met."""
    return _decide(request, who, approval_id, "approve", reason)


@router.post("/{approval_id}/reject")
def reject(
    approval_id: str, who: CurrentUser, request: Request, reason: str | None = None
) -> dict[str, Any]:
    """One rejection vote (by the requester: a withdrawal), with an optional reason."""
    return _decide(request, who, approval_id, "reject", reason)

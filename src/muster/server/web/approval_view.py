"""What the execution page says about a run waiting for approval, and who may end the wait.

A pending execution must never be a dead end: a caller who may vote gets
Approve and Reject; anyone else is told who may approve, how far the policy
has come (1 of 2) and why they themselves cannot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import Request

from muster.domain.approvals import ApprovalPolicy
from muster.security.rbac import Permission
from muster.server.context import ServerContext
from muster.server.web.render import can
from muster.services.actor import Actor
from muster.store.base import ExecutionRecord

__all__ = ["ApprovalView", "approval_view", "can_decide"]


@dataclass(frozen=True, slots=True)
class ApprovalView:
    approval_id: str | None
    policy: str
    approvers: tuple[str, ...]
    approved: int
    required: int
    requester: str
    deadline: dt.datetime | None
    votes: tuple[tuple[str, str, str], ...]
    #: Whether the caller may vote now; otherwise ``why_not`` says why.
    may_vote: bool
    why_not: str


_POLICY_TEXT = {
    ApprovalPolicy.SINGULAR: "one named approver",
    ApprovalPolicy.ONE_OF_MANY: "any one approver",
    ApprovalPolicy.TWO_OF_MANY: "two different approvers",
    ApprovalPolicy.ALL: "every approver",
    ApprovalPolicy.MAJORITY: "a majority of the approvers",
}


def can_decide(request: Request) -> bool:
    return can(request, Permission.APPROVALS_DECIDE)


def approval_view(
    ctx: ServerContext, record: ExecutionRecord, actor: Actor | None, decide: bool
) -> ApprovalView:
    """The open request of a pending execution (opened now if the reaper has not yet)."""
    found = ctx.approvals.book.approval_for_execution(record.id)
    if found is None:
        found = ctx.approvals.open_for(record)
    if found is None:
        return ApprovalView(None, "", (), 0, 1, record.requested_by or "", None, (), False, "")
    r = found.request
    why = ""
    if actor is not None and actor.name == r.requester:
        why = "you asked for this run, and nobody approves their own request"
    elif not decide:
        why = "you lack the approvals.decide permission"
    elif actor is not None and r.has_voted(actor.name):
        why = "you have already voted"
    elif actor is not None and not r.is_eligible(actor.name, actor.voting_roles):
        why = "you are not one of its approvers"
    return ApprovalView(
        approval_id=r.id,
        policy=_POLICY_TEXT.get(r.policy, r.policy.value),
        approvers=tuple(
            (f"role {a.name}" if a.kind.value == "role" else f"user {a.name}") for a in r.approvers
        )
        if r.electorate is None
        else tuple(f"user {u}" for u in sorted(r.electorate)),
        approved=len(r.approvals),
        required=r.required,
        requester=r.requester,
        deadline=r.deadline,
        votes=tuple((v.user, v.decision.value, v.reason or "") for v in r.votes),
        may_vote=not why and r.status.value == "pending",
        why_not=why,
    )

"""``/api/v1/automation/scripts/{script_id}/approval-policy``: who approves a script's runs.

Set by an admin (not by the people who run the script); read by anyone who
can see scripts. Without one, executions of a ``requires_approval`` script
need one approver or admin (``one_of_many``) within 24 hours.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.approvals import ApprovalPolicy
from muster.server.approvals import DEFAULT_APPROVERS, DEFAULT_DEADLINE, DEFAULT_POLICY
from muster.server.auth import CurrentUser, client_address, security_store
from muster.store.approval_policy_store import ScriptApprovalPolicy

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/automation/scripts", tags=["approvals"])


class ApprovalPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: ApprovalPolicy
    #: ``role:NAME`` or ``user:NAME`` each.
    approvers: list[str] = Field(min_length=1, max_length=100)
    #: Minutes from the request until it passes into rejection; null: never.
    deadline_minutes: float | None = Field(default=24 * 60, gt=0, le=60 * 24 * 366)


def _out(script_id: str, p: ScriptApprovalPolicy | None) -> dict[str, Any]:
    if p is None:
        return {
            "script_id": script_id,
            "policy": DEFAULT_POLICY.value,
            "approvers": list(DEFAULT_APPROVERS),
            "deadline_minutes": DEFAULT_DEADLINE.total_seconds() / 60,
            "default": True,
        }
    return {
        "script_id": script_id,
        "policy": p.policy.value,
        "approvers": list(p.approvers),
        "deadline_minutes": p.deadline.total_seconds() / 60 if p.deadline else None,
        "default": False,
        "updated_by": p.updated_by,
        "updated_at": p.updated_at,
    }


@router.get("/{script_id}/approval-policy")
def get_policy(script_id: str, request: Request) -> dict[str, Any]:
    script = request.app.state.muster.store.get_script(script_id)
    return _out(script.id, security_store(request.app).approval_policy(script.id))


@router.put("/{script_id}/approval-policy")
def set_policy(
    script_id: str, body: ApprovalPolicyIn, who: CurrentUser, request: Request
) -> dict[str, Any]:
    script = request.app.state.muster.store.get_script(script_id)
    sec = security_store(request.app)
    deadline = (
        dt.timedelta(minutes=body.deadline_minutes) if body.deadline_minutes is not None else None
    )
    saved = sec.set_approval_policy(
        script.id, body.policy, body.approvers, deadline, updated_by=who.name
    )
    sec.record_audit(
        actor=who.name,
        action="script.approval_policy",
        target=f"script:{script.id}",
        address=client_address(request),
        details={
            "policy": saved.policy.value,
            "approvers": list(saved.approvers),
            "deadline_minutes": body.deadline_minutes,
        },
    )
    return _out(script.id, saved)

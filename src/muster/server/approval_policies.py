"""Approval rules over HTTP: whether runs need approval, and who approves them.

* ``/api/v1/automation/scripts/{script_id}/approval-policy``: the script's
  rule, for every execution of it whatever the version.
* ``/api/v1/automation/approval-policies/groups/{group}``: a host group's
  rule, for every execution (script, command or job) targeting a member.
* ``/api/v1/automation/approval-policies/kinds/{command|job}``: the
  server-wide rule for ad-hoc commands and for built-in jobs.
* ``/api/v1/automation/approval-policies``: all of them at a glance.

Reading a rule needs only the right to see what it governs; changing one
needs ``approvals.manage`` (admin only by default) and writes an audit
record with the rule before and after. A ``PUT`` changes the fields it
names and keeps the others (a new rule starts from the defaults: not
required, ``one_of_many`` of ``role:approver``/``role:admin``, 24 hours,
retries need a new approval), so an old client that only sets approvers
never switches a requirement off by omission.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.approval_rules import ApprovalRule, ApprovalScope
from muster.domain.approvals import ApprovalPolicy
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, get_context
from muster.services.actor import Actor
from muster.store.approval_policy_store import StoredApprovalRule

__all__ = ["policies_router", "router"]

router = APIRouter(prefix="/api/v1/automation/scripts", tags=["approvals"])
policies_router = APIRouter(prefix="/api/v1/automation/approval-policies", tags=["approvals"])

GroupName = Annotated[str, Path(min_length=1, max_length=253)]
Ctx = Annotated[ServerContext, Depends(get_context)]
Kind = Literal["command", "job"]


class ApprovalPolicyIn(BaseModel):
    """Fields left out keep their current value."""

    model_config = ConfigDict(extra="forbid")

    #: Whether runs in this scope wait for approval.
    required: bool | None = None
    policy: ApprovalPolicy | None = None
    #: ``role:NAME`` or ``user:NAME`` each.
    approvers: list[str] | None = Field(default=None, min_length=1, max_length=100)
    #: Minutes from the request until it passes into rejection; null: never.
    deadline_minutes: float | None = Field(default=None, gt=0, le=60 * 24 * 366)
    #: Whether a retry of failed hosts needs a new approval.
    retry_needs_approval: bool | None = None


def _out(scope: ApprovalScope, name: str, stored: StoredApprovalRule | None) -> dict[str, Any]:
    rule = stored.rule if stored is not None else ApprovalRule(scope, name)
    out: dict[str, Any] = {
        "scope": scope.value,
        "name": name,
        **rule.summary(),
        "default": stored is None,
        "updated_by": stored.updated_by if stored is not None else None,
        "updated_at": stored.updated_at if stored is not None else None,
    }
    if scope is ApprovalScope.SCRIPT:
        out["script_id"] = name
    return out


def _put(
    ctx: ServerContext, who: Actor, scope: ApprovalScope, name: str, body: ApprovalPolicyIn
) -> dict[str, Any]:
    """Change only the fields the body names (``null`` deadline: never expires)."""
    changes: dict[str, Any] = {}
    given = body.model_fields_set
    for field in ("required", "policy", "approvers", "retry_needs_approval"):
        value = getattr(body, field)
        if field in given and value is not None:
            changes[field] = tuple(value) if field == "approvers" else value
    if "deadline_minutes" in given:
        minutes = body.deadline_minutes
        changes["deadline"] = dt.timedelta(minutes=minutes) if minutes is not None else None
    saved = ctx.approvals.change_rule(who, scope, name, changes)
    return _out(scope, name, saved)


# -- a script's rule ----------------------------------------------------------


@router.get("/{script_id}/approval-policy")
def get_policy(script_id: str, ctx: Ctx) -> dict[str, Any]:
    script = ctx.store.get_script(script_id)
    return _out(
        ApprovalScope.SCRIPT, script.id, ctx.approvals.rule(ApprovalScope.SCRIPT, script.id)
    )


@router.put("/{script_id}/approval-policy")
def set_policy(
    script_id: str, body: ApprovalPolicyIn, ctx: Ctx, who: CurrentActor
) -> dict[str, Any]:
    """Whether every execution of the script, whatever its version, needs approval."""
    script = ctx.store.get_script(script_id)
    return _put(ctx, who, ApprovalScope.SCRIPT, script.id, body)


# -- host groups and the command / job kinds -----------------------------------


@policies_router.get("")
def list_policies(ctx: Ctx) -> dict[str, Any]:
    """Every group rule, and the command and job rules (defaults when never set)."""
    groups = ctx.approvals.rules_of(ApprovalScope.GROUP)
    kinds = {
        scope.value: _out(scope, scope.value, ctx.approvals.rule(scope, scope.value))
        for scope in (ApprovalScope.COMMAND, ApprovalScope.JOB)
    }
    return {
        "groups": [_out(ApprovalScope.GROUP, n, s) for n, s in groups.items()],
        "kinds": kinds,
    }


@policies_router.get("/groups/{group}")
def get_group_policy(group: GroupName, ctx: Ctx) -> dict[str, Any]:
    return _out(ApprovalScope.GROUP, group, ctx.approvals.rule(ApprovalScope.GROUP, group))


@policies_router.put("/groups/{group}")
def set_group_policy(
    group: GroupName, body: ApprovalPolicyIn, ctx: Ctx, who: CurrentActor
) -> dict[str, Any]:
    """Whether every execution touching a host in ``group`` needs approval.

    The group need not have members yet: it can be protected before hosts join.
    """
    return _put(ctx, who, ApprovalScope.GROUP, group, body)


@policies_router.delete("/groups/{group}", status_code=204)
def delete_group_policy(group: GroupName, ctx: Ctx, who: CurrentActor) -> Response:
    ctx.approvals.delete_rule(who, ApprovalScope.GROUP, group)
    return Response(status_code=204)


@policies_router.get("/kinds/{kind}")
def get_kind_policy(kind: Kind, ctx: Ctx) -> dict[str, Any]:
    scope = ApprovalScope(kind)
    return _out(scope, kind, ctx.approvals.rule(scope, kind))


@policies_router.put("/kinds/{kind}")
def set_kind_policy(
    kind: Kind, body: ApprovalPolicyIn, ctx: Ctx, who: CurrentActor
) -> dict[str, Any]:
    """Whether every ad-hoc command (``command``) or built-in job (``job``) needs approval.

    Host-group rules apply to them as well, whatever this says.
    """
    return _put(ctx, who, ApprovalScope(kind), kind, body)

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
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.approval_rules import ApprovalRule, ApprovalScope
from muster.domain.approvals import ApprovalPolicy
from muster.errors import NotFoundError
from muster.security.rbac import Principal
from muster.server.auth import CurrentUser, client_address, security_store
from muster.store.approval_policy_store import StoredApprovalRule

__all__ = ["policies_router", "router"]

router = APIRouter(prefix="/api/v1/automation/scripts", tags=["approvals"])
policies_router = APIRouter(prefix="/api/v1/automation/approval-policies", tags=["approvals"])

GroupName = Annotated[str, Path(min_length=1, max_length=253)]
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


def _audit_fields(rule: ApprovalRule | None) -> dict[str, Any] | None:
    return rule.summary() if rule is not None else None


def _put(
    request: Request,
    who: Principal,
    scope: ApprovalScope,
    name: str,
    body: ApprovalPolicyIn,
) -> dict[str, Any]:
    sec = security_store(request.app)
    current = sec.approval_rule(scope, name)
    before = current.rule if current is not None else None
    changes: dict[str, Any] = {}
    given = body.model_fields_set
    for field in ("required", "policy", "approvers", "retry_needs_approval"):
        value = getattr(body, field)
        if field in given and value is not None:
            changes[field] = tuple(value) if field == "approvers" else value
    if "deadline_minutes" in given:
        minutes = body.deadline_minutes
        changes["deadline"] = dt.timedelta(minutes=minutes) if minutes is not None else None
    rule = replace(before if before is not None else ApprovalRule(scope, name), **changes)
    saved = sec.save_approval_rule(rule, updated_by=who.name)
    sec.record_audit(
        actor=who.name,
        action=f"{scope.value}.approval_policy",
        target=f"{scope.value}:{name}",
        address=client_address(request),
        details={"before": _audit_fields(before), "after": _audit_fields(saved.rule)},
    )
    return _out(scope, name, saved)


# -- a script's rule ----------------------------------------------------------


@router.get("/{script_id}/approval-policy")
def get_policy(script_id: str, request: Request) -> dict[str, Any]:
    script = request.app.state.muster.store.get_script(script_id)
    rule = security_store(request.app).approval_rule(ApprovalScope.SCRIPT, script.id)
    return _out(ApprovalScope.SCRIPT, script.id, rule)


@router.put("/{script_id}/approval-policy")
def set_policy(
    script_id: str, body: ApprovalPolicyIn, who: CurrentUser, request: Request
) -> dict[str, Any]:
    """Whether every execution of the script, whatever its version, needs approval."""
    script = request.app.state.muster.store.get_script(script_id)
    return _put(request, who, ApprovalScope.SCRIPT, script.id, body)


# -- host groups and the command / job kinds -----------------------------------


@policies_router.get("")
def list_policies(request: Request) -> dict[str, Any]:
    """Every group rule, and the command and job rules (defaults when never set)."""
    sec = security_store(request.app)
    groups = sec.approval_rules(ApprovalScope.GROUP)
    kinds = {
        scope.value: _out(scope, scope.value, sec.approval_rule(scope, scope.value))
        for scope in (ApprovalScope.COMMAND, ApprovalScope.JOB)
    }
    return {
        "groups": [_out(ApprovalScope.GROUP, n, s) for n, s in groups.items()],
        "kinds": kinds,
    }


@policies_router.get("/groups/{group}")
def get_group_policy(group: GroupName, request: Request) -> dict[str, Any]:
    rule = security_store(request.app).approval_rule(ApprovalScope.GROUP, group)
    return _out(ApprovalScope.GROUP, group, rule)


@policies_router.put("/groups/{group}")
def set_group_policy(
    group: GroupName, body: ApprovalPolicyIn, who: CurrentUser, request: Request
) -> dict[str, Any]:
    """Whether every execution touching a host in ``group`` needs approval.

    The group need not have members yet: it can be protected before hosts join.
    """
    return _put(request, who, ApprovalScope.GROUP, group, body)


@policies_router.delete("/groups/{group}", status_code=204)
def delete_group_policy(group: GroupName, who: CurrentUser, request: Request) -> Response:
    sec = security_store(request.app)
    current = sec.approval_rule(ApprovalScope.GROUP, group)
    if current is None or not sec.delete_approval_rule(ApprovalScope.GROUP, group):
        raise NotFoundError(f"group {group!r} has no approval rule")
    sec.record_audit(
        actor=who.name,
        action="group.approval_policy",
        target=f"group:{group}",
        address=client_address(request),
        details={"before": _audit_fields(current.rule), "after": None},
    )
    return Response(status_code=204)


@policies_router.get("/kinds/{kind}")
def get_kind_policy(kind: Kind, request: Request) -> dict[str, Any]:
    scope = ApprovalScope(kind)
    return _out(scope, kind, security_store(request.app).approval_rule(scope, kind))


@policies_router.put("/kinds/{kind}")
def set_kind_policy(
    kind: Kind, body: ApprovalPolicyIn, who: CurrentUser, request: Request
) -> dict[str, Any]:
    """Whether every ad-hoc command (``command``) or built-in job (``job``) needs approval.

    Host-group rules apply to them as well, whatever this says.
    """
    return _put(request, who, ApprovalScope(kind), kind, body)

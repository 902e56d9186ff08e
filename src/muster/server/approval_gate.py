"""The server's approval gate: the one answer to "does this run need approval?".

Every way the server runs code asks :func:`approval_gate` (script executes
from the API and the console, ad-hoc commands, built-in jobs) or
:func:`retry_execution` (retries from the API and the console). The answer
comes only from admin-set rules (see :mod:`muster.domain.approval_rules`):
the script's, the targeted host groups', and the server's command/job rule,
never from the version being run, so editing, restoring or choosing an
older version cannot drop the requirement.

:func:`request_script_approval` is what a version's ``requires_approval``
flag still means on the server: a request, by whoever saved or restored
that content, to turn the script's rule on. It is granted only to holders
of ``approvals.manage`` (audited as any other change of the rule) and can
never turn approval off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from muster.domain.approval_rules import (
    ApprovalGate,
    ApprovalNeed,
    ApprovalRule,
    ApprovalScope,
    approval_need,
)
from muster.domain.hosts import Host
from muster.errors import NotFoundError
from muster.security.rbac import Permission, Principal
from muster.server.approvals import new_request
from muster.server.auth import client_address, security_store
from muster.store._executions import RETRYABLE_STATES
from muster.store.base import ExecutionKind, ExecutionRecord, Store
from muster.store.protocols import ApprovalRuleStore

__all__ = [
    "approval_gate",
    "need_for",
    "request_script_approval",
    "retry_execution",
    "scripts_requiring_approval",
]

_KIND_SCOPES = {
    ExecutionKind.COMMAND.value: ApprovalScope.COMMAND,
    ExecutionKind.JOB.value: ApprovalScope.JOB,
}


def need_for(
    rules: ApprovalRuleStore,
    store: Store,
    kind: str,
    hosts: Sequence[Host],
    script_id: str | None,
) -> ApprovalNeed | None:
    """Combine the stored rules that apply to running ``kind`` on ``hosts``."""
    script_rule: ApprovalRule | None = None
    if kind == ExecutionKind.SCRIPT.value and script_id is not None:
        stored = rules.approval_rule(ApprovalScope.SCRIPT, script_id)
        if stored is not None and stored.rule.required:
            try:
                label = store.get_script(script_id).name
            except NotFoundError:
                label = script_id
            script_rule = replace(stored.rule, label=label)
    kind_rule: ApprovalRule | None = None
    scope = _KIND_SCOPES.get(kind)
    if scope is not None:
        found = rules.approval_rule(scope, scope.value)
        kind_rule = found.rule if found is not None else None
    names = {g for h in hosts for g in h.groups}
    groups = {n: s.rule for n, s in rules.approval_rules(ApprovalScope.GROUP, names).items()}
    return approval_need(
        script=script_rule,
        kind=kind_rule,
        groups=groups,
        host_groups={h.name: h.groups for h in hosts},
    )


def approval_gate(app: Any) -> ApprovalGate:
    """The gate bound to this server's stored rules, for ``submit_*``."""
    rules = security_store(app)
    store = app.state.muster.store

    def gate(kind: str, hosts: Sequence[Host], script_id: str | None) -> ApprovalNeed | None:
        return need_for(rules, store, kind, hosts, script_id)

    return gate


def _retry_hosts(store: Store, execution: ExecutionRecord) -> list[Host]:
    """The hosts a retry would run on again, as they are now (groups included)."""
    hosts: list[Host] = []
    for run in execution.host_runs:
        if run.state not in RETRYABLE_STATES:
            continue
        try:
            hosts.append(store.get_host(run.host_id or run.host_name).to_host())
        except NotFoundError:
            # Gone from the inventory: judged by its name alone (no groups).
            hosts.append(Host(name=run.host_name))
    return hosts


def retry_execution(
    app: Any, request: Any, who: Principal | None, execution_id: str
) -> ExecutionRecord:
    """New attempts for the failed hosts, waiting for a new approval when the rules
    say so (``retry_needs_approval``, the default); returns the execution.

    The rules are read now, not when the execution was first submitted: a
    retry runs code again, so it meets today's requirement. A request that
    could not be met (nobody but the caller may approve) refuses the retry
    and changes nothing.
    """
    store = app.state.muster.store
    execution: ExecutionRecord = store.get_execution(execution_id)
    need = need_for(
        security_store(app),
        store,
        execution.kind.value,
        _retry_hosts(store, execution),
        execution.script_id,
    )
    requester = who.name if who is not None else ""
    approval_id: str | None = None
    if need is None or not need.retry_needs_approval:
        retried: ExecutionRecord = store.retry_execution(execution_id)
    else:
        approval = new_request(
            app, subject=f"execution:{execution_id}", rule=need.decider, requester=requester
        )
        approval_id = approval.id
        retried = store.retry_execution(
            execution_id, approval=approval, approval_record=need.to_json()
        )
    security_store(app).record_audit(
        actor=requester or "unknown",
        action="execution.retry",
        target=f"execution:{execution_id}",
        address=client_address(request),
        details={
            "status": retried.status.value,
            "approval_id": approval_id,
            "approval_reasons": list(need.reasons) if need is not None else [],
        },
    )
    return retried


def request_script_approval(
    app: Any, request: Any, who: Principal | None, script_id: str, asked: bool
) -> bool:
    """Turn the script's rule on if the saved content ``asked`` and ``who`` may;
    returns whether the rule now requires approval.

    Never turns approval off; without ``approvals.manage`` the request is
    ignored (the response's ``requires_approval`` then shows the rule as it is).
    """
    sec = security_store(app)
    stored = sec.approval_rule(ApprovalScope.SCRIPT, script_id)
    required = stored is not None and stored.rule.required
    if required or not asked or who is None or not who.can(Permission.APPROVALS_MANAGE):
        return required
    base = stored.rule if stored is not None else ApprovalRule(ApprovalScope.SCRIPT, script_id)
    saved = sec.save_approval_rule(replace(base, required=True), updated_by=who.name)
    sec.record_audit(
        actor=who.name,
        action="script.approval_policy",
        target=f"script:{script_id}",
        address=client_address(request),
        details={
            "before": stored.rule.summary() if stored is not None else None,
            "after": saved.rule.summary(),
            "via": "requires_approval in the saved content",
        },
    )
    return saved.rule.required


def scripts_requiring_approval(app: Any, script_ids: Sequence[str]) -> set[str]:
    """Which of these scripts' runs need approval by their own rule (one query)."""
    stored = security_store(app).approval_rules(ApprovalScope.SCRIPT, script_ids)
    return {sid for sid, s in stored.items() if s.rule.required}

"""The approval lifecycle: the gate, the request, the votes, the settling, the rules.

Whether a run needs approval comes only from admin-set rules (see
:mod:`muster.domain.approval_rules`): the script's, the targeted host
groups', and the server's command/job rule, never from the version being
run, so editing, restoring or choosing an older version cannot drop the
requirement. :meth:`Approvals.need_for` is that answer, and every way of
submitting or retrying work asks it.

An execution the gate held is stored ``pending_approval`` with the rule
that applied in its ``policy``; :meth:`Approvals.open_for` opens its request
(the submission service calls it right after storing the execution;
:meth:`Approvals.sync` also finds any execution still lacking one). A
decision that settles a request promotes the execution to queued or rejects
it, and the execution must still pin the content hash the approvers saw, or
it is rejected. Only the execution's newest request may settle it: a retry
that needs approval writes its pending attempts and their new request
together, so an earlier approval never promotes a later attempt.

:meth:`Approvals.sync` is idempotent and repairs every in-between state
(deadline passed, crash between settling and promoting); the reaper loop
runs it, and so does listing the requests.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final, Literal

from muster.domain.approval_rules import (
    DEFAULT_APPROVERS,
    DEFAULT_DEADLINE,
    DEFAULT_POLICY,
    ApprovalNeed,
    ApprovalRule,
    ApprovalScope,
    approval_need,
)
from muster.domain.approvals import (
    ApprovalExpiredError,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    Decision,
    open_request,
)
from muster.domain.hosts import Host
from muster.domain.states import ExecutionStatus, HostRunState
from muster.errors import ConflictError, NotFoundError, ValidationError
from muster.security.rbac import Permission
from muster.services.actor import Actor
from muster.services.local_hosts import require_retry_permission
from muster.store.base import RETRYABLE_STATES, ExecutionKind, ExecutionRecord, Page, Store
from muster.store.protocols import ApprovalRuleStore, ApprovalStore, AuditStore, SecurityStore

if TYPE_CHECKING:
    from muster.store.approval_policy_store import StoredApprovalRule
    from muster.store.approval_store import ApprovalRecord

__all__ = ["RULE_FIELDS", "Approvals"]

_UNKNOWN: Final = "unknown"
#: How many waiting executions one :meth:`Approvals.sync` pass looks at.
_SYNC_BATCH: Final = 500

_KIND_SCOPES: Final = {
    ExecutionKind.COMMAND.value: ApprovalScope.COMMAND,
    ExecutionKind.JOB.value: ApprovalScope.JOB,
}

#: The fields of a rule a change may name (see :meth:`Approvals.change_rule`).
RULE_FIELDS: Final = frozenset(
    {"required", "policy", "approvers", "deadline", "retry_needs_approval"}
)


class Approvals:
    """Approval requests and rules over a :class:`~muster.store.base.Store`.

    ``book`` keeps requests and votes, ``rules`` the admin-set rules,
    ``users`` the members of approver roles, ``audit`` the record of every
    decision and change; ``clock`` dates requests and deadlines (the book's
    own clock, so that expiry and opening agree).
    """

    def __init__(
        self,
        store: Store,
        *,
        book: ApprovalStore,
        rules: ApprovalRuleStore,
        users: SecurityStore,
        audit: AuditStore,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.store = store
        self.book = book
        self.rules = rules
        self.users = users
        self.audit = audit
        self.clock = clock

    # -- the gate -------------------------------------------------------------

    def need_for(
        self, kind: str, hosts: Sequence[Host], script_id: str | None
    ) -> ApprovalNeed | None:
        """Combine the stored rules that apply to running ``kind`` on ``hosts``.

        An :class:`~muster.domain.approval_rules.ApprovalGate`: pass the bound
        method to the submission functions.
        """
        script_rule: ApprovalRule | None = None
        if kind == ExecutionKind.SCRIPT.value and script_id is not None:
            stored = self.rules.approval_rule(ApprovalScope.SCRIPT, script_id)
            if stored is not None and stored.rule.required:
                try:
                    label = self.store.get_script(script_id).name
                except NotFoundError:
                    label = script_id
                script_rule = replace(stored.rule, label=label)
        kind_rule: ApprovalRule | None = None
        scope = _KIND_SCOPES.get(kind)
        if scope is not None:
            found = self.rules.approval_rule(scope, scope.value)
            kind_rule = found.rule if found is not None else None
        names = {g for h in hosts for g in h.groups}
        groups = {
            n: s.rule for n, s in self.rules.approval_rules(ApprovalScope.GROUP, names).items()
        }
        return approval_need(
            script=script_rule,
            kind=kind_rule,
            groups=groups,
            host_groups={h.name: h.groups for h in hosts},
        )

    def scripts_requiring(self, script_ids: Collection[str]) -> set[str]:
        """Which of these scripts' runs need approval by their own rule (one query)."""
        stored = self.rules.approval_rules(ApprovalScope.SCRIPT, script_ids)
        return {sid for sid, s in stored.items() if s.rule.required}

    # -- requests ---------------------------------------------------------------

    def role_members(self) -> dict[str, list[str]]:
        """Every enabled user per role, now (the electorate of ``all``/``majority``)."""
        return self._role_members()

    def _role_members(self) -> dict[str, list[str]]:
        members: dict[str, list[str]] = {}
        for u in self.users.list_users():
            if not u.disabled:
                for role in u.roles:
                    members.setdefault(role, []).append(u.name)
        return members

    def new_request(self, *, subject: str, rule: ApprovalRule, requester: str) -> ApprovalRequest:
        """A request under ``rule``, refused (``ValidationError``) if it could never be met."""
        now = self.clock()
        return open_request(
            id=str(uuid.uuid4()),
            subject=subject,
            policy=rule.policy,
            approvers=rule.approvers,
            requester=requester or _UNKNOWN,
            now=now,
            deadline=now + rule.deadline if rule.deadline is not None else None,
            role_members=self._role_members(),
        )

    def open_for(
        self,
        execution: ExecutionRecord,
        *,
        requester: str | None = None,
        policy: ApprovalPolicy | str | None = None,
        approvers: Sequence[str] | None = None,
        deadline: dt.timedelta | Literal["default"] | None = "default",
    ) -> ApprovalRecord | None:
        """The execution's approval request, opened now if it has none; ``None`` if not pending.

        Policy, approvers and deadline come from the arguments, else the rule the
        gate recorded with the execution when it was submitted, else the script's
        rule, else the defaults.
        """
        existing = self.book.approval_for_execution(execution.id)
        if existing is not None or execution.status is not ExecutionStatus.PENDING_APPROVAL:
            return existing
        need = ApprovalNeed.from_json(execution.policy.get("approval") or {})
        configured: ApprovalRule | None = need.decider if need is not None else None
        if configured is None and execution.script_id:
            stored = self.rules.approval_rule(ApprovalScope.SCRIPT, execution.script_id)
            configured = stored.rule if stored is not None else None
        if policy is None:
            policy = configured.policy if configured else DEFAULT_POLICY
        if approvers is None:
            approvers = configured.approvers if configured else DEFAULT_APPROVERS
        if deadline == "default":
            deadline = configured.deadline if configured else DEFAULT_DEADLINE
        now = self.clock()
        request = open_request(
            id=str(uuid.uuid4()),
            subject=f"execution:{execution.id}",
            policy=policy,
            approvers=approvers,
            requester=requester or execution.requested_by or _UNKNOWN,
            now=now,
            deadline=now + deadline if deadline is not None else None,
            role_members=self._role_members(),
        )
        return self.book.create_approval(
            request,
            execution_id=execution.id,
            content_hash=execution.content_hash,
            first_only=True,
        )

    def get(self, approval_id: str) -> ApprovalRecord:
        return self.book.get_approval(approval_id)

    def page(
        self, *, status: ApprovalStatus | None = None, limit: int = 100, offset: int = 0
    ) -> Page[ApprovalRecord]:
        """Requests as they stand now: due deadlines are passed into rejection first."""
        self.sync()
        return self.book.list_approvals(status=status, limit=limit, offset=offset)

    # -- votes and settling -------------------------------------------------------

    def decide(
        self, actor: Actor, approval_id: str, decision: Decision | str, reason: str | None = None
    ) -> ApprovalRecord:
        """One vote by ``actor``; the execution is queued or rejected once the request settles.

        A vote past the deadline settles the execution as rejected and is refused
        (``ApprovalExpiredError``).
        """
        try:
            rec = self.book.decide_approval(
                approval_id, actor.name, actor.voting_roles, decision, reason
            )
        except ApprovalExpiredError:
            self.settle(self.book.get_approval(approval_id))
            raise
        self.settle(rec)
        self.audit.record_audit(
            actor=actor.name,
            action=f"approval.{Decision(decision).value}",  # valid: the vote was applied
            target=f"approval:{approval_id}",
            address=actor.address,
            details={
                "execution_id": rec.execution_id,
                "content_hash": rec.content_hash,
                "reason": reason,
                "status": rec.request.status.value,
            },
        )
        return rec

    def settle(self, rec: ApprovalRecord) -> None:
        """Move the bound execution to where its settled request says (idempotent)."""
        if rec.execution_id is None or rec.request.resolution is None:
            return
        newest = self.book.approval_for_execution(rec.execution_id)
        if newest is None or newest.id != rec.id:
            return  # superseded: a retry's pending attempts wait for their own request
        execution = self.store.get_execution(rec.execution_id)
        if execution.status is not ExecutionStatus.PENDING_APPROVAL:
            return
        try:
            if rec.request.resolution is HostRunState.QUEUED:
                if rec.content_hash is not None and execution.content_hash != rec.content_hash:
                    self.store.reject_execution(
                        execution.id, "script content differs from what was approved"
                    )
                else:
                    self.store.approve_execution(execution.id)
            else:
                self.store.reject_execution(execution.id, rec.request.reason or "rejected")
        except ConflictError:
            pass  # someone else moved it first

    def sync(self) -> int:
        """Expire due requests, open missing ones, settle executions; returns changes made."""
        changed = 0
        for rec in self.book.expire_due_approvals():
            self.settle(rec)
            changed += 1
        pending = self.store.list_executions(
            status=ExecutionStatus.PENDING_APPROVAL, limit=_SYNC_BATCH
        )
        for execution in pending.items:
            found = self.book.approval_for_execution(execution.id)
            if found is None:
                self.open_for(execution)
                changed += 1
            elif found.request.status.terminal:
                self.settle(found)
                changed += 1
        return changed

    # -- retries ------------------------------------------------------------------

    def _retry_hosts(self, execution: ExecutionRecord) -> list[Host]:
        """The hosts a retry would run on again, as they are now (groups included)."""
        hosts: list[Host] = []
        for run in execution.host_runs:
            if run.state not in RETRYABLE_STATES:
                continue
            try:
                hosts.append(self.store.get_host(run.host_id or run.host_name).to_host())
            except NotFoundError:
                # Gone from the inventory: judged by its name alone (no groups).
                hosts.append(Host(name=run.host_name))
        return hosts

    def retry(self, actor: Actor | None, execution_id: str) -> ExecutionRecord:
        """New attempts for the failed hosts, waiting for a new approval when the rules
        say so (``retry_needs_approval``, the default); returns the execution.

        A retry runs code again on the same hosts, so it needs what submitting
        did (``hosts.local`` for the server's own machine) and meets today's
        rules, not those of the first submission. A request that could not be
        met (nobody but the caller may approve) refuses the retry and changes
        nothing.
        """
        require_retry_permission(self.store, execution_id, actor)
        execution = self.store.get_execution(execution_id)
        need = self.need_for(
            execution.kind.value, self._retry_hosts(execution), execution.script_id
        )
        requester = actor.name if actor is not None else ""
        approval_id: str | None = None
        if need is None or not need.retry_needs_approval:
            retried = self.store.retry_execution(execution_id)
        else:
            approval = self.new_request(
                subject=f"execution:{execution_id}", rule=need.decider, requester=requester
            )
            approval_id = approval.id
            retried = self.store.retry_execution(
                execution_id, approval=approval, approval_record=need.to_json()
            )
        self.audit.record_audit(
            actor=requester or _UNKNOWN,
            action="execution.retry",
            target=f"execution:{execution_id}",
            address=actor.address if actor is not None else None,
            details={
                "status": retried.status.value,
                "approval_id": approval_id,
                "approval_reasons": list(need.reasons) if need is not None else [],
            },
        )
        return retried

    # -- rules ------------------------------------------------------------------

    def rule(self, scope: ApprovalScope, name: str) -> StoredApprovalRule | None:
        """The stored rule of ``scope``/``name``; ``None``: the defaults apply."""
        return self.rules.approval_rule(scope, name)

    def rules_of(self, scope: ApprovalScope) -> dict[str, StoredApprovalRule]:
        return self.rules.approval_rules(scope)

    def change_rule(
        self, actor: Actor, scope: ApprovalScope, name: str, changes: Mapping[str, Any]
    ) -> StoredApprovalRule:
        """Change the named fields of the rule (a new rule starts from the defaults);
        fields left out keep their value, so no change switches a requirement off by
        omission. Audited with the rule before and after."""
        unknown = sorted(set(changes) - RULE_FIELDS)
        if unknown:
            raise ValidationError(f"not a field of an approval rule: {', '.join(unknown)}")
        current = self.rules.approval_rule(scope, name)
        before = current.rule if current is not None else None
        rule = replace(before if before is not None else ApprovalRule(scope, name), **changes)
        saved = self.rules.save_approval_rule(rule, updated_by=actor.name)
        self.audit.record_audit(
            actor=actor.name,
            action=f"{scope.value}.approval_policy",
            target=f"{scope.value}:{name}",
            address=actor.address,
            details={"before": _summary(before), "after": _summary(saved.rule)},
        )
        return saved

    def delete_rule(self, actor: Actor, scope: ApprovalScope, name: str) -> None:
        """Drop the rule (the defaults apply again); ``NotFoundError`` if there is none."""
        current = self.rules.approval_rule(scope, name)
        if current is None or not self.rules.delete_approval_rule(scope, name):
            raise NotFoundError(f"{scope.value} {name!r} has no approval rule")
        self.audit.record_audit(
            actor=actor.name,
            action=f"{scope.value}.approval_policy",
            target=f"{scope.value}:{name}",
            address=actor.address,
            details={"before": _summary(current.rule), "after": None},
        )

    def request_script_rule(self, actor: Actor | None, script_id: str, asked: bool) -> bool:
        """Turn the script's rule on if the saved content ``asked`` and ``actor`` may;
        returns whether the rule now requires approval.

        This is what a version's ``requires_approval`` flag still means: a request,
        by whoever saved or restored that content, granted only to holders of
        ``approvals.manage`` (audited as any other change of the rule). It never
        turns approval off; without the permission it is ignored.
        """
        stored = self.rules.approval_rule(ApprovalScope.SCRIPT, script_id)
        required = stored is not None and stored.rule.required
        if required or not asked or actor is None or not actor.can(Permission.APPROVALS_MANAGE):
            return required
        base = stored.rule if stored is not None else ApprovalRule(ApprovalScope.SCRIPT, script_id)
        saved = self.rules.save_approval_rule(replace(base, required=True), updated_by=actor.name)
        self.audit.record_audit(
            actor=actor.name,
            action="script.approval_policy",
            target=f"script:{script_id}",
            address=actor.address,
            details={
                "before": stored.rule.summary() if stored is not None else None,
                "after": saved.rule.summary(),
                "via": "requires_approval in the saved content",
            },
        )
        return saved.rule.required


def _summary(rule: ApprovalRule | None) -> dict[str, Any] | None:
    return rule.summary() if rule is not None else None

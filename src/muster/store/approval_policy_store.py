"""Approval rules, persisted: per script, per host group, and for commands and jobs.

A rule says whether runs in its scope need approval and, if so, who
approves, by which voting policy, within how long, and whether a retry
needs approval again (see :mod:`muster.domain.approval_rules`). The rule is
checked (known policy, parseable approvers) when it is saved; whether it
can be met is checked again when a request is opened, against the users of
that moment. Saving replaces the scope's whole rule in one transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table, delete, insert, select

from muster.domain.approval_rules import ApprovalRule, ApprovalScope
from muster.domain.approvals import ApprovalPolicy
from muster.errors import ConflictError
from muster.store._core import StoreCore
from muster.store.security_tables import (
    group_approval_policies,
    kind_approval_policies,
    script_approval_policies,
)

__all__ = ["ApprovalPolicyOps", "StoredApprovalRule"]


@dataclass(frozen=True, slots=True)
class StoredApprovalRule:
    rule: ApprovalRule
    updated_by: str | None
    updated_at: dt.datetime


def _table(scope: ApprovalScope) -> tuple[Table, Column[Any]]:
    if scope is ApprovalScope.SCRIPT:
        return script_approval_policies, script_approval_policies.c.script_id
    if scope is ApprovalScope.GROUP:
        return group_approval_policies, group_approval_policies.c.group_name
    return kind_approval_policies, kind_approval_policies.c.kind


def _stored(scope: ApprovalScope, key: Column[Any], r: Any) -> StoredApprovalRule:
    seconds = r["deadline_seconds"]
    rule = ApprovalRule(
        scope=scope,
        name=r[key.name],
        required=bool(r["required"]),
        policy=ApprovalPolicy(r["policy"]),
        approvers=tuple(r["approvers"]),
        deadline=dt.timedelta(seconds=seconds) if seconds is not None else None,
        retry_needs_approval=bool(r["retry_needs_approval"]),
    )
    return StoredApprovalRule(rule, r["updated_by"], r["updated_at"])


class ApprovalPolicyOps(StoreCore):
    def save_approval_rule(
        self, rule: ApprovalRule, *, updated_by: str | None = None
    ) -> StoredApprovalRule:
        """Replace the rule of ``rule.scope``/``rule.name`` (a script's by its id)."""
        table, key = _table(rule.scope)
        now = self.clock()
        values: dict[str, Any] = {
            key.name: rule.name,
            "required": rule.required,
            "policy": rule.policy.value,
            "approvers": list(rule.approvers),
            # whole seconds, rounded up: a sub-second deadline must not read back as zero
            "deadline_seconds": math.ceil(rule.deadline.total_seconds()) if rule.deadline else None,
            "retry_needs_approval": rule.retry_needs_approval,
            "updated_by": updated_by,
            "updated_at": now,
        }
        try:
            with self._tx() as tx:
                tx.conn.execute(delete(table).where(key == rule.name))
                tx.conn.execute(insert(table).values(**values))
        except ConflictError as exc:  # a unique rule, translated by ``_tx``
            # Two writers replaced the same rule at once (PostgreSQL): one wins.
            raise ConflictError(
                f"the {rule.scope.value} approval rule {rule.name!r} was changed concurrently; "
                "read it again and retry"
            ) from exc
        return StoredApprovalRule(rule, updated_by, now)

    def approval_rule(self, scope: ApprovalScope | str, name: str) -> StoredApprovalRule | None:
        scope = ApprovalScope(scope)
        table, key = _table(scope)
        with self._read() as conn:
            r = conn.execute(select(table).where(key == name)).mappings().first()
        return _stored(scope, key, r) if r is not None else None

    def approval_rules(
        self, scope: ApprovalScope | str, names: Iterable[str] | None = None
    ) -> dict[str, StoredApprovalRule]:
        """Rules of one scope by name: all of them, or those of ``names``."""
        scope = ApprovalScope(scope)
        with self._read() as conn:
            return _rules(conn, scope, None if names is None else list(names))

    def delete_approval_rule(self, scope: ApprovalScope | str, name: str) -> bool:
        table, key = _table(ApprovalScope(scope))
        with self._tx() as tx:
            return bool(tx.conn.execute(delete(table).where(key == name)).rowcount)


def _rules(
    conn: Connection, scope: ApprovalScope, names: list[str] | None
) -> dict[str, StoredApprovalRule]:
    table, key = _table(scope)
    stmt = select(table).order_by(key)
    if names is not None:
        if not names:
            return {}
        stmt = stmt.where(key.in_(sorted(set(names))))
    return {r[key.name]: _stored(scope, key, r) for r in conn.execute(stmt).mappings()}

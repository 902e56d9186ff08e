"""Per-script approval policies: who must approve, by which rule, within how long.

The policy is checked (known policy, parseable approvers) when it is set;
whether it can be met is checked again when a request is opened, against
the users of that moment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from muster.domain.approvals import ApprovalPolicy, parse_approvers
from muster.errors import ValidationError
from muster.store._core import StoreCore
from muster.store.security_tables import script_approval_policies

__all__ = ["ApprovalPolicyOps", "ScriptApprovalPolicy"]


@dataclass(frozen=True, slots=True)
class ScriptApprovalPolicy:
    script_id: str
    policy: ApprovalPolicy
    approvers: tuple[str, ...]
    deadline: dt.timedelta | None
    updated_by: str | None = None
    updated_at: dt.datetime | None = None


class ApprovalPolicyOps(StoreCore):
    def set_approval_policy(
        self,
        script_id: str,
        policy: ApprovalPolicy | str,
        approvers: list[str] | tuple[str, ...],
        deadline: dt.timedelta | None,
        *,
        updated_by: str | None = None,
    ) -> ScriptApprovalPolicy:
        try:
            chosen = ApprovalPolicy(policy)
        except ValueError:
            allowed = ", ".join(p.value for p in ApprovalPolicy)
            raise ValidationError(f"policy: one of {allowed}", field="policy") from None
        specs = tuple(str(a) for a in parse_approvers(approvers))
        if deadline is not None and deadline <= dt.timedelta(0):
            raise ValidationError("deadline: must be positive", field="deadline_minutes")
        now = self.clock()
        with self._tx() as tx:
            tx.conn.execute(
                delete(script_approval_policies).where(
                    script_approval_policies.c.script_id == script_id
                )
            )
            tx.conn.execute(
                insert(script_approval_policies).values(
                    script_id=script_id,
                    policy=chosen.value,
                    approvers=list(specs),
                    deadline_seconds=int(deadline.total_seconds()) if deadline else None,
                    updated_by=updated_by,
                    updated_at=now,
                )
            )
        return ScriptApprovalPolicy(script_id, chosen, specs, deadline, updated_by, now)

    def approval_policy(self, script_id: str) -> ScriptApprovalPolicy | None:
        with self._read() as conn:
            r = (
                conn.execute(
                    select(script_approval_policies).where(
                        script_approval_policies.c.script_id == script_id
                    )
                )
                .mappings()
                .first()
            )
        if r is None:
            return None
        seconds = r["deadline_seconds"]
        return ScriptApprovalPolicy(
            script_id=r["script_id"],
            policy=ApprovalPolicy(r["policy"]),
            approvers=tuple(r["approvers"]),
            deadline=dt.timedelta(seconds=seconds) if seconds is not None else None,
            updated_by=r["updated_by"],
            updated_at=r["updated_at"],
        )

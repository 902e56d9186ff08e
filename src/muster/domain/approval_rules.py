"""Whether a run needs approval, and under whose rule: the policies an admin sets.

The requirement is a policy of what is run and where, never of the content
being run: a script version's ``requires_approval`` flag is a historical
fact of that content (and, on the server, at most a request by an
``approvals.manage`` holder to turn the script's policy on). An operator who
may edit scripts therefore cannot switch approval off by saving, restoring
or picking an older version.

Four scopes hold a rule, each set by an admin and audited:

* ``script``: every execution of that script, whatever its version.
* ``group``: every execution that targets a host in that group: scripts,
  ad-hoc commands and built-in jobs alike (like a protected environment:
  whatever touches production waits for production's approvers).
* ``command`` / ``job``: a server-wide rule for ad-hoc commands and for
  built-in jobs, which have no script to carry one.

:func:`approval_need` combines them. Approval is needed when any applicable
rule says ``required``. One request is opened per execution; its approvers,
voting policy and deadline come from the most specific requiring rule:
the script's, then the groups' (by name), then the command/job rule.
Every requiring rule is named in the reasons, so approvers see all of them.

A retry of failed hosts is a new attempt that runs code again: it needs a
new approval when any requiring rule says ``retry_needs_approval`` (the
default), so one lenient rule cannot waive what a strict one demands.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from muster.domain.approvals import ApprovalPolicy, parse_approvers
from muster.domain.hosts import Host
from muster.errors import ValidationError

__all__ = [
    "DEFAULT_APPROVERS",
    "DEFAULT_DEADLINE",
    "DEFAULT_POLICY",
    "ApprovalGate",
    "ApprovalNeed",
    "ApprovalRule",
    "ApprovalScope",
    "approval_need",
    "approval_policy",
]

DEFAULT_POLICY: Final = ApprovalPolicy.ONE_OF_MANY
DEFAULT_APPROVERS: Final = ("role:approver", "role:admin")
DEFAULT_DEADLINE: Final = dt.timedelta(hours=24)
_GROUP: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,252}")


class ApprovalScope(enum.StrEnum):
    SCRIPT = "script"
    GROUP = "group"
    COMMAND = "command"
    JOB = "job"


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """One admin-set rule: whether runs in its scope need approval, and who gives it.

    ``name`` is the script id, the group name, or the kind itself.
    """

    scope: ApprovalScope
    name: str
    required: bool = False
    policy: ApprovalPolicy = DEFAULT_POLICY
    approvers: tuple[str, ...] = DEFAULT_APPROVERS
    #: From the request to its automatic rejection; ``None``: no deadline.
    deadline: dt.timedelta | None = DEFAULT_DEADLINE
    retry_needs_approval: bool = True
    #: Shown in reasons instead of ``name`` (a script's name rather than its id).
    label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scope", ApprovalScope(self.scope))
        try:
            object.__setattr__(self, "policy", ApprovalPolicy(self.policy))
        except ValueError:
            allowed = ", ".join(p.value for p in ApprovalPolicy)
            raise ValidationError(f"policy: one of {allowed}", field="policy") from None
        specs = parse_approvers(self.approvers)
        object.__setattr__(self, "approvers", tuple(str(s) for s in specs))
        if self.deadline is not None and self.deadline <= dt.timedelta(0):
            raise ValidationError("deadline: must be positive", field="deadline_minutes")
        if self.scope is ApprovalScope.GROUP and not _GROUP.fullmatch(self.name):
            raise ValidationError(
                f"group: {self.name[:80]!r} is not a group name "
                "(1-253 letters, digits and _ . : @ + -)",
                field="group",
            )
        if self.scope in (ApprovalScope.COMMAND, ApprovalScope.JOB) and self.name != self.scope:
            raise ValidationError(f"kind: a {self.scope.value} rule is named {self.scope.value!r}")

    def summary(self) -> dict[str, Any]:
        """What the rule says, as plain data (audit records, API answers)."""
        return {
            "required": self.required,
            "policy": self.policy.value,
            "approvers": list(self.approvers),
            "deadline_minutes": self.deadline.total_seconds() / 60 if self.deadline else None,
            "retry_needs_approval": self.retry_needs_approval,
        }

    @property
    def reason(self) -> str:
        """Why this rule asks for approval, in words an approver understands."""
        shown = self.label or self.name
        if self.scope is ApprovalScope.SCRIPT:
            return f"script {shown!r} requires approval"
        if self.scope is ApprovalScope.GROUP:
            return f"host group {shown!r} requires approval"
        plural = "ad-hoc commands" if self.scope is ApprovalScope.COMMAND else "built-in jobs"
        return f"server policy: {plural} require approval"


@dataclass(frozen=True, slots=True)
class ApprovalNeed:
    """Approval is needed: why, under which rule, and whether retries need it again."""

    reasons: tuple[str, ...]
    #: The rule whose approvers, voting policy and deadline the request uses.
    decider: ApprovalRule
    retry_needs_approval: bool
    #: Per requiring group, the targeted hosts in it (for the reasons shown).
    group_hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The shape kept with an execution, so the request opened later (and every
        reader) sees exactly the rule that applied when it was submitted."""
        d = self.decider
        return {
            "required": True,
            "reasons": list(self.reasons),
            "retry_needs_approval": self.retry_needs_approval,
            "decided_by": {"scope": d.scope.value, "name": d.name},
            "policy": d.policy.value,
            "approvers": list(d.approvers),
            "deadline_seconds": d.deadline.total_seconds() if d.deadline is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApprovalNeed | None:
        """Read back :meth:`to_json`; ``None`` for a record that needed no approval."""
        if not data.get("required"):
            return None
        by = data.get("decided_by") or {}
        seconds = data.get("deadline_seconds")
        decider = ApprovalRule(
            scope=ApprovalScope(by.get("scope", ApprovalScope.SCRIPT.value)),
            name=str(by.get("name", "")),
            required=True,
            policy=ApprovalPolicy(data.get("policy", DEFAULT_POLICY.value)),
            approvers=tuple(data.get("approvers") or DEFAULT_APPROVERS),
            deadline=dt.timedelta(seconds=float(seconds)) if seconds is not None else None,
            retry_needs_approval=bool(data.get("retry_needs_approval", True)),
        )
        return cls(
            reasons=tuple(str(r) for r in data.get("reasons") or ()),
            decider=decider,
            retry_needs_approval=bool(data.get("retry_needs_approval", True)),
        )


def approval_need(
    *,
    script: ApprovalRule | None = None,
    kind: ApprovalRule | None = None,
    groups: Mapping[str, ApprovalRule] | None = None,
    host_groups: Mapping[str, Sequence[str]] | None = None,
) -> ApprovalNeed | None:
    """Does a run need approval? ``None`` when no applicable rule requires it.

    ``script`` is the script's rule (for script runs), ``kind`` the server's
    command or job rule (for those), ``groups`` the group rules by group name
    and ``host_groups`` every targeted host's name with its groups. A group
    rule applies when any targeted host is in that group.
    """
    requiring: list[ApprovalRule] = []
    reasons: list[str] = []
    if script is not None and script.required:
        requiring.append(script)
        reasons.append(script.reason)
    touched: dict[str, set[str]] = {}
    for host, names in (host_groups or {}).items():
        for name in names:
            touched.setdefault(name, set()).add(host)
    group_hosts: dict[str, tuple[str, ...]] = {}
    for name in sorted(touched):
        rule = (groups or {}).get(name)
        if rule is not None and rule.required:
            requiring.append(rule)
            group_hosts[name] = tuple(sorted(touched[name]))
            reasons.append(f"{rule.reason} ({_hosts_text(group_hosts[name])})")
    if kind is not None and kind.required:
        requiring.append(kind)
        reasons.append(kind.reason)
    if not requiring:
        return None
    return ApprovalNeed(
        reasons=tuple(reasons),
        decider=requiring[0],
        retry_needs_approval=any(r.retry_needs_approval for r in requiring),
        group_hosts=group_hosts,
    )


class ApprovalGate(Protocol):
    """What every submit path asks before it stores work: does this need approval?

    ``kind`` is ``script``, ``command`` or ``job``; ``script_id`` names the
    script for script runs. The server binds one to its stored rules.
    """

    def __call__(
        self, kind: str, hosts: Sequence[Host], script_id: str | None
    ) -> ApprovalNeed | None: ...


def approval_policy(need: ApprovalNeed | None) -> dict[str, Any]:
    """The execution ``policy`` entry that records a need (empty when none)."""
    return {} if need is None else {"approval": need.to_json()}


def _hosts_text(hosts: Iterable[str], shown: int = 5) -> str:
    names = list(hosts)
    text = ", ".join(names[:shown])
    if len(names) > shown:
        text += f" and {len(names) - shown} more"
    return text

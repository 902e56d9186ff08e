"""Approval requests and the rules that decide them.

An approval request is bound to one subject (an execution, a workflow step)
and moves ``pending -> approved | rejected | expired``; terminal statuses
never change. Every function here is pure: it takes a request and returns a
new one, so the store can persist the result with a compare-and-set on the
old status.

Rules, in the order :func:`decide` applies them:

* A decided request takes no more votes (``StateTransitionError``).
* Once the deadline has passed, a vote is refused with
  :class:`ApprovalExpiredError`, which carries the expired request for the
  caller to persist; expired counts as rejected ("deadline passed").
* The requester can never approve their own request, whatever their roles.
  The requester *may* reject it: that is a withdrawal, it ends the request as
  rejected. Refusing it would only force them to ask someone else to stop
  what they themselves no longer want; rejection is the safe direction.
* Only eligible approvers vote: a user named by ``user:NAME`` or holding a
  role named by ``role:NAME``. Roles do not imply each other here (an admin
  is eligible only if ``role:admin`` is listed); RBAC decides separately
  whether the caller may use the approval endpoints at all.
* One vote per user; a second one is a ``ConflictError``.

Policies (``N`` is the electorate size, requester excluded):

* ``singular`` - exactly one approver spec, a ``user:``; that user decides.
* ``one_of_many`` - one approval suffices; any eligible rejection rejects.
* ``two_of_many`` - two distinct approvals; any eligible rejection rejects.
* ``all`` - every member of the electorate approves; one rejection rejects.
* ``majority`` - more than ``N/2`` approvals; rejected as soon as that can no
  longer happen (``2 * rejections >= N``), so a lone "no" does not veto.

``all`` and ``majority`` count heads, so their electorate must be a fixed set
of users: it is taken when the request is opened, from the listed users plus
the members of listed roles at that moment (``role_members``). A user who
joins the role later cannot vote on it, and leaving the role does not shrink
the count, so nobody can change the arithmetic after the fact. The requester
is never part of the electorate (asking is not approving).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from muster.domain.states import HostRunState
from muster.errors import (
    ConflictError,
    PermissionDeniedError,
    StateTransitionError,
    ValidationError,
)

__all__ = [
    "DEADLINE_PASSED",
    "ApprovalExpiredError",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ApprovalStatus",
    "ApproverKind",
    "ApproverSpec",
    "Decision",
    "Vote",
    "decide",
    "expire_if_due",
    "open_request",
    "parse_approver",
    "parse_approvers",
]

DEADLINE_PASSED = "deadline passed"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}")


class ApprovalPolicy(enum.StrEnum):
    SINGULAR = "singular"
    ONE_OF_MANY = "one_of_many"
    TWO_OF_MANY = "two_of_many"
    ALL = "all"
    MAJORITY = "majority"

    @property
    def counts_heads(self) -> bool:
        """True when the policy needs a fixed electorate (``all``, ``majority``)."""
        return self in (ApprovalPolicy.ALL, ApprovalPolicy.MAJORITY)


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self is not ApprovalStatus.PENDING


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ApproverKind(enum.StrEnum):
    ROLE = "role"
    USER = "user"


@dataclass(frozen=True, slots=True)
class ApproverSpec:
    """``role:NAME`` or ``user:NAME``."""

    kind: ApproverKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name}"

    def matches(self, user: str, roles: Iterable[str]) -> bool:
        if self.kind is ApproverKind.USER:
            return user == self.name
        return self.name in set(roles)


def parse_approver(text: str, *, field: str = "approvers") -> ApproverSpec:
    """Parse one ``role:NAME`` / ``user:NAME`` spec; anything else is refused."""
    kind, sep, name = text.strip().partition(":")
    if not sep or kind not in ("role", "user"):
        raise ValidationError(f"{field}: {text!r} must be 'role:NAME' or 'user:NAME'", field=field)
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"{field}: {text!r} has an invalid name (letters, digits, _ . @ + -; max 128)",
            field=field,
        )
    return ApproverSpec(ApproverKind(kind), name)


def parse_approvers(items: Iterable[str], *, field: str = "approvers") -> tuple[ApproverSpec, ...]:
    """Parse specs in order, dropping exact duplicates; an empty list is refused."""
    if isinstance(items, str):
        raise ValidationError(f"{field}: must be a list of specs, not one string", field=field)
    specs: list[ApproverSpec] = []
    for item in items:
        spec = parse_approver(item, field=field)
        if spec not in specs:
            specs.append(spec)
    if not specs:
        raise ValidationError(f"{field}: at least one approver is required", field=field)
    return tuple(specs)


@dataclass(frozen=True, slots=True)
class Vote:
    user: str
    decision: Decision
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One request and every vote cast on it. Build with :func:`open_request`."""

    id: str
    subject: str
    policy: ApprovalPolicy
    approvers: tuple[ApproverSpec, ...]
    requester: str
    created_at: datetime
    deadline: datetime | None
    #: The fixed voter set of ``all``/``majority``; ``None`` for other policies.
    electorate: frozenset[str] | None = None
    status: ApprovalStatus = ApprovalStatus.PENDING
    votes: tuple[Vote, ...] = ()
    decided_at: datetime | None = None
    reason: str | None = None

    @property
    def approvals(self) -> tuple[str, ...]:
        return tuple(v.user for v in self.votes if v.decision is Decision.APPROVE)

    @property
    def rejections(self) -> tuple[str, ...]:
        return tuple(v.user for v in self.votes if v.decision is Decision.REJECT)

    @property
    def required(self) -> int:
        """Approvals needed to approve."""
        if self.policy is ApprovalPolicy.TWO_OF_MANY:
            return 2
        if self.electorate is not None:
            n = len(self.electorate)
            return n if self.policy is ApprovalPolicy.ALL else n // 2 + 1
        return 1

    @property
    def resolution(self) -> HostRunState | None:
        """What the bound host runs become: queued, rejected, or ``None`` while pending."""
        if self.status is ApprovalStatus.APPROVED:
            return HostRunState.QUEUED
        if self.status.terminal:
            return HostRunState.REJECTED
        return None

    def has_voted(self, user: str) -> bool:
        return any(v.user == user for v in self.votes)

    def is_eligible(self, user: str, roles: Iterable[str]) -> bool:
        """May ``user`` (holding ``roles``) approve? The requester never may."""
        if user == self.requester:
            return False
        if self.electorate is not None:
            return user in self.electorate
        roles = frozenset(roles)
        return any(spec.matches(user, roles) for spec in self.approvers)


class ApprovalExpiredError(StateTransitionError):
    """A vote arrived after the deadline; ``request`` is the expired request to persist."""

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__(f"approval {request.id}: {DEADLINE_PASSED}")
        self.request = request


def open_request(
    *,
    id: str,
    subject: str,
    policy: ApprovalPolicy | str,
    approvers: Iterable[str | ApproverSpec],
    requester: str,
    now: datetime,
    deadline: datetime | None = None,
    role_members: Mapping[str, Iterable[str]] | None = None,
) -> ApprovalRequest:
    """A new pending request, refused when it could never be approved.

    ``role_members`` maps a role name to its users at this moment; it is
    required for every listed role under ``all``/``majority`` (the electorate
    is fixed now) and, when given, lets ``two_of_many`` check it can be met.
    """
    try:
        policy = ApprovalPolicy(policy)
    except ValueError:
        choices = ", ".join(p.value for p in ApprovalPolicy)
        raise ValidationError(
            f"policy: {policy!r} is not one of {choices}", field="policy"
        ) from None
    if isinstance(approvers, str):
        raise ValidationError(
            "approvers: must be a list of specs, not one string", field="approvers"
        )
    specs = parse_approvers(str(a) for a in approvers)
    if not requester:
        raise ValidationError("requester: must name a user", field="requester")
    if deadline is not None and deadline <= now:
        raise ValidationError("deadline: must be in the future", field="deadline")

    users = {s.name for s in specs if s.kind is ApproverKind.USER}
    role_names = [s.name for s in specs if s.kind is ApproverKind.ROLE]
    electorate: frozenset[str] | None = None

    if policy is ApprovalPolicy.SINGULAR:
        if len(specs) != 1 or specs[0].kind is not ApproverKind.USER:
            raise ValidationError(
                "approvers: singular needs exactly one 'user:NAME' approver", field="approvers"
            )
        if specs[0].name == requester:
            raise ValidationError(
                "approvers: the requester cannot be the only approver", field="approvers"
            )
    elif policy.counts_heads:
        members = dict(role_members or {})
        missing = [r for r in role_names if r not in members]
        if missing:
            raise ValidationError(
                f"approvers: {policy.value} fixes its voters when the request opens; "
                f"members of role(s) {', '.join(missing)} were not given",
                field="approvers",
            )
        voters = set(users)
        for role in role_names:
            voters.update(members[role])
        voters.discard(requester)
        if not voters:
            raise ValidationError(
                f"approvers: {policy.value} has nobody but the requester to vote",
                field="approvers",
            )
        electorate = frozenset(voters)
    else:
        possible = _possible_voters(users, role_names, role_members)
        if possible is not None:
            possible.discard(requester)
            need = 2 if policy is ApprovalPolicy.TWO_OF_MANY else 1
            if len(possible) < need:
                raise ValidationError(
                    f"approvers: {policy.value} needs {need} approver(s) besides the requester, "
                    f"only {len(possible)} can vote",
                    field="approvers",
                )

    return ApprovalRequest(
        id=id,
        subject=subject,
        policy=policy,
        approvers=specs,
        requester=requester,
        created_at=now,
        deadline=deadline,
        electorate=electorate,
    )


def _possible_voters(
    users: set[str], roles: list[str], role_members: Mapping[str, Iterable[str]] | None
) -> set[str] | None:
    """Every user who could vote, or ``None`` when a role's members are unknown."""
    voters = set(users)
    for role in roles:
        if role_members is None or role not in role_members:
            return None
        voters.update(role_members[role])
    return voters


def expire_if_due(request: ApprovalRequest, now: datetime) -> ApprovalRequest:
    """The request, expired if it is pending and its deadline is at or before ``now``."""
    if request.status.terminal or request.deadline is None or now < request.deadline:
        return request
    return replace(request, status=ApprovalStatus.EXPIRED, decided_at=now, reason=DEADLINE_PASSED)


def decide(
    request: ApprovalRequest,
    user: str,
    roles: Iterable[str],
    decision: Decision | str,
    reason: str | None,
    now: datetime,
) -> ApprovalRequest:
    """Record ``user``'s vote and settle the request if the policy is now met.

    Raises ``StateTransitionError`` on a decided request,
    :class:`ApprovalExpiredError` past the deadline, ``PermissionDeniedError``
    for self-approval or an ineligible user, ``ConflictError`` for a second
    vote, ``ValidationError`` for an unknown decision.
    """
    try:
        decision = Decision(decision)
    except ValueError:
        raise ValidationError(
            f"decision: {decision!r} must be approve or reject", field="decision"
        ) from None
    if reason is not None:
        reason = reason.strip() or None
    if request.status.terminal:
        raise StateTransitionError(
            f"approval {request.id} is already {request.status.value}; it takes no more votes"
        )
    expired = expire_if_due(request, now)
    if expired is not request:
        raise ApprovalExpiredError(expired)

    if user == request.requester:
        if decision is Decision.APPROVE:
            raise PermissionDeniedError("the requester cannot approve their own request")
        return _settle(
            request,
            Vote(user, decision, reason, now),
            ApprovalStatus.REJECTED,
            f"withdrawn by requester: {reason}" if reason else "withdrawn by requester",
            now,
        )
    if not request.is_eligible(user, roles):
        raise PermissionDeniedError(f"{user} is not an approver of request {request.id}")
    if request.has_voted(user):
        raise ConflictError(f"{user} has already voted on request {request.id}")

    vote = Vote(user, decision, reason, now)
    voted = replace(request, votes=(*request.votes, vote))
    if decision is Decision.REJECT:
        if request.policy is ApprovalPolicy.MAJORITY:
            n = len(request.electorate or ())
            rejected = len(voted.rejections)
            if 2 * rejected < n:
                return voted
            why = f"majority no longer possible: {rejected} of {n} rejected"
            return _settle(request, vote, ApprovalStatus.REJECTED, why, now)
        return _settle(request, vote, ApprovalStatus.REJECTED, reason or f"rejected by {user}", now)
    if len(voted.approvals) >= voted.required:
        return _settle(request, vote, ApprovalStatus.APPROVED, reason, now)
    return voted


def _settle(
    request: ApprovalRequest,
    vote: Vote,
    status: ApprovalStatus,
    reason: str | None,
    now: datetime,
) -> ApprovalRequest:
    return replace(
        request,
        votes=(*request.votes, vote),
        status=status,
        decided_at=now,
        reason=reason,
    )

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.approvals import (
    DEADLINE_PASSED,
    ApprovalExpiredError,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    ApproverKind,
    ApproverSpec,
    Decision,
    decide,
    expire_if_due,
    open_request,
    parse_approver,
    parse_approvers,
)
from muster.domain.states import HostRunState
from muster.errors import (
    ConflictError,
    PermissionDeniedError,
    StateTransitionError,
    ValidationError,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)
DEADLINE = T0 + timedelta(hours=1)


def req(
    policy: str, approvers: list[str], requester: str = "rita", **kw: object
) -> ApprovalRequest:
    return open_request(
        id="a1",
        subject="execution:1",
        policy=policy,
        approvers=approvers,
        requester=requester,
        now=T0,
        deadline=kw.pop("deadline", DEADLINE),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def yes(r: ApprovalRequest, user: str, roles: tuple[str, ...] = ()) -> ApprovalRequest:
    return decide(r, user, roles, Decision.APPROVE, None, LATER)


def no(r: ApprovalRequest, user: str, roles: tuple[str, ...] = (), why: str | None = None):
    return decide(r, user, roles, "reject", why, LATER)


# --- specs -------------------------------------------------------------------


def test_parse_approver_specs() -> None:
    assert parse_approver("role:admin") == ApproverSpec(ApproverKind.ROLE, "admin")
    assert parse_approver(" user:5 ") == ApproverSpec(ApproverKind.USER, "5")
    assert str(parse_approver("user:alice@example.com")) == "user:alice@example.com"


@pytest.mark.parametrize(
    "text",
    ["admin", "group:ops", "role:", "user: bob", "role:a b", "user:-x", ":x", "user:" + "a" * 129],
)
def test_parse_approver_rejects_malformed(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_approver(text)
    assert info.value.field == "approvers"


def test_parse_approvers_dedupes_and_needs_one() -> None:
    assert parse_approvers(["user:a", "role:x", "user:a"]) == (
        ApproverSpec(ApproverKind.USER, "a"),
        ApproverSpec(ApproverKind.ROLE, "x"),
    )
    with pytest.raises(ValidationError, match="at least one"):
        parse_approvers([])
    with pytest.raises(ValidationError, match="list"):
        parse_approvers("user:a")


# --- opening -----------------------------------------------------------------


def test_open_refuses_unknown_policy_and_past_deadline() -> None:
    with pytest.raises(ValidationError) as info:
        req("quorum", ["user:a"])
    assert info.value.field == "policy"
    with pytest.raises(ValidationError) as info:
        req("one_of_many", ["user:a"], deadline=T0)
    assert info.value.field == "deadline"


@pytest.mark.parametrize("approvers", [["role:admin"], ["user:a", "user:b"], ["user:rita"]])
def test_singular_needs_one_user_who_is_not_the_requester(approvers: list[str]) -> None:
    with pytest.raises(ValidationError):
        req("singular", approvers)


def test_open_refuses_requests_nobody_could_approve() -> None:
    with pytest.raises(ValidationError, match="besides the requester"):
        req("one_of_many", ["user:rita"])
    with pytest.raises(ValidationError, match="needs 2"):
        req("two_of_many", ["user:rita", "user:bob"])
    with pytest.raises(ValidationError, match="needs 2"):
        req("two_of_many", ["role:ops"], role_members={"ops": ["bob"]})
    with pytest.raises(ValidationError, match="nobody but the requester"):
        req("all", ["user:rita"])


def test_role_specs_without_members_are_accepted_for_dynamic_policies() -> None:
    r = req("two_of_many", ["role:ops"])
    assert r.electorate is None and r.required == 2


@pytest.mark.parametrize("policy", ["all", "majority"])
def test_head_counting_policies_need_role_members(policy: str) -> None:
    with pytest.raises(ValidationError, match="ops"):
        req(policy, ["role:ops", "user:bob"])
    r = req(policy, ["role:ops", "user:bob"], role_members={"ops": ["carol", "rita", "bob"]})
    assert r.electorate == frozenset({"bob", "carol"})  # requester dropped, bob once


# --- every policy ------------------------------------------------------------


def test_singular_designated_user_decides() -> None:
    r = req("singular", ["user:ann"])
    with pytest.raises(PermissionDeniedError):
        yes(r, "bob", ("admin",))
    done = yes(r, "ann")
    assert done.status is ApprovalStatus.APPROVED
    assert done.resolution is HostRunState.QUEUED
    assert done.decided_at == LATER


def test_singular_reject() -> None:
    done = no(req("singular", ["user:ann"]), "ann", why="not today")
    assert done.status is ApprovalStatus.REJECTED
    assert done.reason == "not today"
    assert done.resolution is HostRunState.REJECTED


def test_one_of_many_by_role_or_user() -> None:
    r = req("one_of_many", ["role:admin", "user:5"])
    assert yes(r, "5").status is ApprovalStatus.APPROVED
    assert yes(r, "zed", ("viewer", "admin")).status is ApprovalStatus.APPROVED
    with pytest.raises(PermissionDeniedError, match="not an approver"):
        yes(r, "zed", ("operator",))


def test_one_of_many_any_eligible_reject_rejects() -> None:
    done = no(req("one_of_many", ["role:admin"]), "amy", ("admin",))
    assert done.status is ApprovalStatus.REJECTED
    assert done.reason == "rejected by amy"


def test_two_of_many_needs_two_distinct() -> None:
    r = req("two_of_many", ["role:ops"])
    one = yes(r, "a", ("ops",))
    assert one.status is ApprovalStatus.PENDING and one.approvals == ("a",)
    with pytest.raises(ConflictError, match="already voted"):
        yes(one, "a", ("ops",))
    two = yes(one, "b", ("ops",))
    assert two.status is ApprovalStatus.APPROVED
    assert two.approvals == ("a", "b")


def test_two_of_many_reject_after_one_approval_rejects() -> None:
    one = yes(req("two_of_many", ["user:a", "user:b", "user:c"]), "a")
    assert no(one, "c").status is ApprovalStatus.REJECTED


def test_all_needs_every_member() -> None:
    r = req("all", ["user:a", "user:b", "role:ops"], role_members={"ops": ["c"]})
    r = yes(r, "a")
    r = yes(r, "c", ("ops",))
    assert r.status is ApprovalStatus.PENDING
    assert yes(r, "b").status is ApprovalStatus.APPROVED


def test_all_one_reject_rejects() -> None:
    r = yes(req("all", ["user:a", "user:b"]), "a")
    assert no(r, "b").status is ApprovalStatus.REJECTED


def test_all_electorate_is_fixed_at_open() -> None:
    r = req("all", ["role:ops"], role_members={"ops": ["a"]})
    # joined the role later: holds the role now but is not a voter
    with pytest.raises(PermissionDeniedError):
        yes(r, "late", ("ops",))
    # left the role later: still a voter
    assert yes(r, "a", ()).status is ApprovalStatus.APPROVED


def test_requester_listed_under_all_is_dropped_not_required() -> None:
    r = req("all", ["user:rita", "user:a"])
    assert r.required == 1
    assert yes(r, "a").status is ApprovalStatus.APPROVED


@pytest.mark.parametrize(("n", "needed"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_majority_threshold(n: int, needed: int) -> None:
    users = [f"u{i}" for i in range(n)]
    r = req("majority", [f"user:{u}" for u in users])
    assert r.required == needed
    for u in users[: needed - 1]:
        r = yes(r, u)
        assert r.status is ApprovalStatus.PENDING
    assert yes(r, users[needed - 1]).status is ApprovalStatus.APPROVED


def test_majority_reject_counts_until_approval_is_impossible() -> None:
    r = req("majority", ["user:a", "user:b", "user:c", "user:d", "user:e"])
    r = no(r, "a")
    assert r.status is ApprovalStatus.PENDING and r.rejections == ("a",)
    r = no(r, "b")
    assert r.status is ApprovalStatus.PENDING
    r = no(r, "c")
    assert r.status is ApprovalStatus.REJECTED
    assert r.reason == "majority no longer possible: 3 of 5 rejected"


def test_majority_of_even_electorate_half_rejects() -> None:
    r = yes(req("majority", ["user:a", "user:b", "user:c", "user:d"]), "a")
    r = no(r, "b")
    assert r.status is ApprovalStatus.PENDING
    assert no(r, "c").status is ApprovalStatus.REJECTED


@given(votes=st.lists(st.booleans(), min_size=1, max_size=9), n=st.integers(1, 9))
def test_majority_matches_arithmetic(votes: list[bool], n: int) -> None:
    users = [f"u{i}" for i in range(n)]
    r = req("majority", [f"user:{u}" for u in users])
    ayes = nays = 0
    for user, vote in zip(users, votes, strict=False):
        r = yes(r, user) if vote else no(r, user)
        ayes, nays = ayes + vote, nays + (not vote)
        if 2 * ayes > n:
            assert r.status is ApprovalStatus.APPROVED
            break
        if 2 * nays >= n:
            assert r.status is ApprovalStatus.REJECTED
            break
        assert r.status is ApprovalStatus.PENDING


# --- self-approval, withdrawal, double votes, terminal -------------------------


@pytest.mark.parametrize("policy", ["one_of_many", "two_of_many", "all", "majority"])
def test_requester_can_never_approve(policy: str) -> None:
    r = req(policy, ["role:admin", "user:a", "user:b"], role_members={"admin": ["rita"]})
    with pytest.raises(PermissionDeniedError, match="own request"):
        yes(r, "rita", ("admin",))
    assert not r.is_eligible("rita", ("admin",))


def test_requester_reject_is_a_withdrawal() -> None:
    r = no(req("one_of_many", ["user:a"]), "rita", why="wrong hosts")
    assert r.status is ApprovalStatus.REJECTED
    assert r.reason == "withdrawn by requester: wrong hosts"
    assert r.votes[0].user == "rita"


def test_decided_request_takes_no_votes() -> None:
    done = yes(req("one_of_many", ["user:a", "user:b"]), "a")
    with pytest.raises(StateTransitionError, match="already approved"):
        no(done, "b")


def test_unknown_decision_refused() -> None:
    with pytest.raises(ValidationError) as info:
        decide(req("one_of_many", ["user:a"]), "a", (), "maybe", None, LATER)
    assert info.value.field == "decision"


def test_blank_reason_is_no_reason() -> None:
    done = decide(req("one_of_many", ["user:a"]), "a", (), "reject", "   ", LATER)
    assert done.votes[0].reason is None
    assert done.reason == "rejected by a"


# --- deadline ----------------------------------------------------------------


def test_deadline_expires_as_rejection() -> None:
    r = req("one_of_many", ["user:a"])
    assert expire_if_due(r, DEADLINE - timedelta(seconds=1)) is r
    gone = expire_if_due(r, DEADLINE)
    assert gone.status is ApprovalStatus.EXPIRED
    assert gone.reason == DEADLINE_PASSED
    assert gone.resolution is HostRunState.REJECTED
    assert expire_if_due(gone, DEADLINE + timedelta(hours=1)) is gone


def test_vote_after_deadline_raises_with_expired_request() -> None:
    r = yes(req("two_of_many", ["user:a", "user:b"]), "a")
    with pytest.raises(ApprovalExpiredError) as info:
        decide(r, "b", (), Decision.APPROVE, None, DEADLINE + timedelta(seconds=1))
    assert info.value.request.status is ApprovalStatus.EXPIRED
    assert info.value.request.votes == r.votes  # the late vote is not recorded
    assert isinstance(info.value, StateTransitionError)


def test_no_deadline_never_expires() -> None:
    r = req("one_of_many", ["user:a"], deadline=None)
    assert expire_if_due(r, T0 + timedelta(days=3650)) is r


def test_decided_request_never_expires() -> None:
    done = yes(req("one_of_many", ["user:a"]), "a")
    assert expire_if_due(done, DEADLINE + timedelta(days=1)) is done


def test_policy_enum_values() -> None:
    assert [p.value for p in ApprovalPolicy] == [
        "singular",
        "one_of_many",
        "two_of_many",
        "all",
        "majority",
    ]

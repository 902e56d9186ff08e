"""Approvals through the API, on a running server: every policy, self-approval refused,
a deadline passing into rejection (by the server's own loop), and the pinned hash:
the script edited between request and approval does not change what runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, wait_for
from tests.integration.server.helpers import wait_terminal

APPROVERS = ("amy", "ben", "cat")


class Team:
    def __init__(self, server: LiveServer, fleet: SimFleet) -> None:
        self.server = server
        self.admin = server.client()
        # An SSH host: operators may not run anything on the server's own machine.
        self.host = register_fleet(self.admin, fleet)[0]
        self.clients: dict[str, httpx.Client] = {}
        self.clients["olga"] = server.client(token=server.issue_token("olga", ["operator"]))
        for name in APPROVERS:
            self.clients[name] = server.client(token=server.issue_token(name, ["approver"]))

    def __getitem__(self, name: str) -> httpx.Client:
        return self.clients[name]

    def close(self) -> None:
        for c in [self.admin, *self.clients.values()]:
            c.close()


@pytest.fixture
def team(server: LiveServer, fleet: SimFleet) -> Any:
    t = Team(server, fleet)
    try:
        yield t
    finally:
        t.close()


def _script(team: Team, name: str, policy: dict[str, Any]) -> str:
    olga = team["olga"]
    resp = olga.post(
        "/api/v1/automation/scripts",
        json={"name": name, "shell": "sh", "body": "echo v1\n", "requires_approval": True},
    )
    assert resp.status_code == 201, resp.text
    sid = resp.json()["id"]
    # the requirement is the admin's rule, not the operator's requires_approval above
    set_policy = team.admin.put(
        f"/api/v1/automation/scripts/{sid}/approval-policy", json={**policy, "required": True}
    )
    assert set_policy.status_code == 200, set_policy.text
    return str(sid)


def _request(team: Team, script_id: str) -> tuple[dict[str, Any], str]:
    resp = team["olga"].post(
        f"/api/v1/automation/scripts/{script_id}/execute", json={"host_ids": [team.host]}
    )
    assert resp.status_code == 201, resp.text
    execution = resp.json()
    assert execution["status"] == "pending_approval"
    pending = team["amy"].get("/api/v1/automation/approvals", params={"status": "pending"})
    ids = [a["id"] for a in pending.json()["items"] if a["execution_id"] == execution["id"]]
    assert len(ids) == 1, pending.text
    return execution, ids[0]


def _vote(team: Team, who: str, approval_id: str, decision: str, **params: str) -> httpx.Response:
    return team[who].post(
        f"/api/v1/automation/approvals/{approval_id}/{decision}", params=params or None
    )


def _status(team: Team, execution_id: str) -> str:
    return str(team.admin.get(f"/api/v1/automation/executions/{execution_id}").json()["status"])


def test_singular_only_the_named_user_and_the_pinned_hash_runs(team: Team) -> None:
    sid = _script(team, "singular", {"policy": "singular", "approvers": ["user:amy"]})
    execution, aid = _request(team, sid)
    # edited after the request: version 2 prints something else
    edit = team["olga"].post(
        "/api/v1/automation/scripts",
        json={
            "name": "singular",
            "shell": "sh",
            "body": "echo CHANGED\n",
            "requires_approval": True,
        },
    )
    assert edit.status_code == 201 and edit.json()["version"] == 2, edit.text
    assert _vote(team, "ben", aid, "approve").status_code == 403  # not the named user
    ok = _vote(team, "amy", aid, "approve")
    assert ok.status_code == 200 and ok.json()["status"] == "approved", ok.text
    done = wait_terminal(team.admin, execution["id"])
    assert done["status"] == "succeeded"
    assert done["hosts"][0]["stdout_tail"] == "v1\n"
    assert done["content_hash"] == execution["content_hash"] == ok.json()["content_hash"]


def test_one_of_many_refuses_self_approval(team: Team, server: LiveServer) -> None:
    # olga may approve in general (she holds the approver role too) but not her own request
    sec_token = server.issue_token("olga2", ["operator", "approver"])
    team.clients["olga2"] = server.client(token=sec_token)
    sid = _script(team, "one", {"policy": "one_of_many", "approvers": ["role:approver"]})
    resp = team["olga2"].post(
        f"/api/v1/automation/scripts/{sid}/execute", json={"host_ids": [team.host]}
    )
    execution = resp.json()
    aid = team["amy"].get("/api/v1/automation/approvals?status=pending").json()["items"][0]["id"]
    selfish = _vote(team, "olga2", aid, "approve")
    assert selfish.status_code == 403, selfish.text
    assert _status(team, execution["id"]) == "pending_approval"
    assert _vote(team, "amy", aid, "approve").json()["status"] == "approved"
    assert wait_terminal(team.admin, execution["id"])["status"] == "succeeded"


def test_two_of_many_needs_two_distinct_approvals(team: Team) -> None:
    sid = _script(team, "two", {"policy": "two_of_many", "approvers": ["role:approver"]})
    execution, aid = _request(team, sid)
    assert _vote(team, "amy", aid, "approve").json()["status"] == "pending"
    assert _vote(team, "amy", aid, "approve").status_code == 409  # one vote per user
    assert _status(team, execution["id"]) == "pending_approval"
    assert _vote(team, "ben", aid, "approve").json()["status"] == "approved"
    assert wait_terminal(team.admin, execution["id"])["status"] == "succeeded"


def test_all_needs_everyone_and_one_no_rejects(team: Team) -> None:
    sid = _script(team, "all", {"policy": "all", "approvers": ["role:approver"]})
    execution, aid = _request(team, sid)
    for who in ("amy", "ben"):
        assert _vote(team, who, aid, "approve").json()["status"] == "pending"
    assert _vote(team, "cat", aid, "approve").json()["status"] == "approved"
    assert wait_terminal(team.admin, execution["id"])["status"] == "succeeded"

    second, aid2 = _request(team, sid)
    _vote(team, "amy", aid2, "approve")
    no = _vote(team, "ben", aid2, "reject", reason="not during the sale")
    assert no.json()["status"] == "rejected"
    assert _status(team, second["id"]) == "rejected"
    runs = team.admin.get(f"/api/v1/automation/executions/{second['id']}").json()["hosts"]
    assert "not during the sale" in (runs[0]["message"] or "")


def test_majority_counts_heads(team: Team) -> None:
    sid = _script(team, "majority", {"policy": "majority", "approvers": ["role:approver"]})
    execution, aid = _request(team, sid)
    assert _vote(team, "amy", aid, "approve").json()["status"] == "pending"
    assert _vote(team, "ben", aid, "reject").json()["status"] == "pending"  # no lone veto
    assert _vote(team, "cat", aid, "approve").json()["status"] == "approved"
    assert wait_terminal(team.admin, execution["id"])["status"] == "succeeded"

    second, aid2 = _request(team, sid)
    _vote(team, "amy", aid2, "reject")
    assert _vote(team, "ben", aid2, "reject").json()["status"] == "rejected"
    assert _status(team, second["id"]) == "rejected"


def test_deadline_passes_into_rejection_without_anyone_asking(team: Team) -> None:
    policy = {"policy": "one_of_many", "approvers": ["role:approver"], "deadline_minutes": 0.02}
    sid = _script(team, "deadline", policy)
    execution, aid = _request(team, sid)

    def rejected() -> bool:
        # GET of an execution does not touch approvals: the server's loop must do it
        return _status(team, execution["id"]) == "rejected"

    wait_for(rejected, timeout=30, what="the deadline to reject the execution")
    late = _vote(team, "amy", aid, "approve")
    assert late.status_code == 409, late.text
    got = team.admin.get(f"/api/v1/automation/approvals/{aid}").json()
    assert got["status"] == "expired" and "deadline" in (got["reason"] or "")

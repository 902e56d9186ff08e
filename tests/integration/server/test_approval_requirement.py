"""Whether a run needs approval is an admin-set rule, and every way to run code meets it.

Through the API of a running server (SQLite and PostgreSQL), on simulated
SSH hosts in groups ``web`` and ``db``: an operator cannot drop the
requirement by saving, restoring or choosing a version; only
``approvals.manage`` changes a rule, and that is audited; group rules hold
scripts, commands and jobs; the command/job rules hold those; a retry of an
approved run that failed waits for a new approval unless the rule says not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer
from tests.integration.server.helpers import wait_terminal

_A = "/api/v1/automation"


class Crew:
    """An admin, an operator (olga), an approver (amy) and the fleet's host names."""

    def __init__(self, server: LiveServer, fleet: SimFleet) -> None:
        self.admin = server.client()
        self.olga = server.client(token=server.issue_token("olga", ["operator"]))
        self.amy = server.client(token=server.issue_token("amy", ["approver"]))
        register_fleet(self.admin, fleet)
        hosts = {h.name: h.groups for h in fleet.hosts()}
        self.web = sorted(n for n, g in hosts.items() if "web" in g)
        self.db = sorted(n for n, g in hosts.items() if "db" in g)

    def close(self) -> None:
        for c in (self.admin, self.olga, self.amy):
            c.close()


@pytest.fixture
def crew(server: LiveServer, fleet: SimFleet) -> Iterator[Crew]:
    c = Crew(server, fleet)
    try:
        yield c
    finally:
        c.close()


def _ok(resp: httpx.Response, *codes: int) -> dict[str, Any]:
    assert resp.status_code in (codes or (200, 201)), (resp.status_code, resp.text)
    return dict(resp.json())


def _save(client: httpx.Client, name: str, body: str, **extra: Any) -> dict[str, Any]:
    return _ok(
        client.post(f"{_A}/scripts", json={"name": name, "shell": "sh", "body": body, **extra})
    )


def _execute(client: httpx.Client, sid: str, hosts: list[str], **extra: Any) -> dict[str, Any]:
    resp = client.post(f"{_A}/scripts/{sid}/execute", json={"host_ids": hosts, **extra})
    return _ok(resp, 201)


def _pending_approval_for(client: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    items = _ok(client.get(f"{_A}/approvals", params={"status": "pending"}))["items"]
    return [a for a in items if a["execution_id"] == execution_id]


def test_operator_cannot_drop_approval_by_saving_restoring_or_choosing_a_version(
    crew: Crew,
) -> None:
    # an admin saves v1 asking for approval: that turns the script's rule on
    v1 = _save(crew.admin, "rotate-keys", "echo v1\n", requires_approval=True)
    sid = v1["id"]
    assert v1["requires_approval"] is True

    # v2 saved by the operator without the flag: still needs approval
    v2 = _save(crew.olga, "rotate-keys", "echo v2\n", requires_approval=False)
    latest = _execute(crew.olga, sid, crew.web[:1])
    assert latest["status"] == "pending_approval"
    assert v2["version"] == 2 and v2["requires_approval"] is True  # the script's rule
    assert latest["approval"]["reasons"] == ["script 'rotate-keys' requires approval"]
    assert len(_pending_approval_for(crew.amy, latest["id"])) == 1

    # v3 by the operator, then the older v2, which never asked for approval: still needs it
    _save(crew.olga, "rotate-keys", "echo v3\n")
    older = _execute(crew.olga, sid, crew.web[:1], version=2)
    assert older["status"] == "pending_approval" and older["script_version"] == 2

    # restoring v2 makes v4 with v2's content: still needs it
    restored = _ok(crew.olga.post(f"{_A}/scripts/{sid}/versions/2/restore"))
    assert restored["version"] == 4 and restored["requires_approval"] is True
    again = _execute(crew.olga, sid, crew.web[:1])
    assert again["status"] == "pending_approval" and again["script_version"] == 4

    # and the rule itself is untouched by all of it
    rule = _ok(crew.olga.get(f"{_A}/scripts/{sid}/approval-policy"))
    assert rule["required"] is True and rule["retry_needs_approval"] is True
    assert rule["updated_by"] == "test-admin"


def test_only_approvals_manage_changes_a_rule_and_each_change_is_audited(
    crew: Crew, server: LiveServer
) -> None:
    sid = _save(crew.olga, "purge-cache", "echo purge\n")["id"]
    urls = [
        f"{_A}/scripts/{sid}/approval-policy",
        f"{_A}/approval-policies/groups/db",
        f"{_A}/approval-policies/kinds/command",
        f"{_A}/approval-policies/kinds/job",
    ]
    for url in urls:
        for who in (crew.olga, crew.amy):
            assert who.put(url, json={"required": True}).status_code == 403, url
    assert crew.olga.delete(f"{_A}/approval-policies/groups/db").status_code == 403

    # an operator's content that asks for approval does not turn the rule on ...
    asked = _save(crew.olga, "purge-cache", "echo purge v2\n", requires_approval=True)
    assert asked["requires_approval"] is False
    assert _execute(crew.olga, sid, crew.web[:1])["status"] != "pending_approval"

    # ... a custom role holding approvals.manage may change it, and is audited
    _ok(
        crew.admin.post(
            "/api/v1/roles", json={"name": "gatekeeper", "permissions": ["approvals.manage"]}
        ),
        201,
    )
    with server.client(token=server.issue_token("gus", ["gatekeeper"])) as gus:
        on = _ok(gus.put(urls[0], json={"required": True, "retry_needs_approval": False}))
    assert on["required"] is True and on["retry_needs_approval"] is False
    assert on["updated_by"] == "gus"
    assert _execute(crew.olga, sid, crew.web[:1])["status"] == "pending_approval"

    # the admin switches it off again; a PUT naming only approvers keeps "required"
    _ok(crew.admin.put(urls[0], json={"approvers": ["user:amy"], "policy": "singular"}))
    assert _ok(crew.admin.get(urls[0]))["required"] is True
    _ok(crew.admin.put(urls[1], json={"required": True}))
    assert crew.admin.delete(f"{_A}/approval-policies/groups/db").status_code == 204
    off = _ok(crew.admin.put(urls[0], json={"required": False}))
    assert off["required"] is False and off["approvers"] == ["user:amy"]

    def changes(action: str) -> list[tuple[str, str, Any, Any]]:
        page = _ok(crew.admin.get("/api/v1/audit", params={"action": action, "limit": 100}))
        return [
            (r["actor"], r["target"], r["details"]["before"], r["details"]["after"])
            for r in page["items"]
        ]

    scripts = changes("script.approval_policy")
    gus_turned_on = [c for c in scripts if c[0] == "gus" and c[1] == f"script:{sid}"]
    assert len(gus_turned_on) == 1
    assert gus_turned_on[0][2] is None  # there was no rule before
    assert gus_turned_on[0][3]["required"] is True
    assert gus_turned_on[0][3]["retry_needs_approval"] is False
    switched_off = [c for c in scripts if c[3]["required"] is False]
    assert [(c[0], c[2]["required"]) for c in switched_off] == [("test-admin", True)]
    groups = changes("group.approval_policy")
    assert [(c[1], c[3] is None) for c in groups] == [("group:db", True), ("group:db", False)]
    assert _ok(crew.admin.get("/api/v1/audit/verify"))["ok"] is True


def test_group_rule_holds_commands_jobs_and_scripts_touching_the_group(crew: Crew) -> None:
    _ok(crew.admin.put(f"{_A}/approval-policies/groups/db", json={"required": True}))
    db_host, web_host = crew.db[0], crew.web[0]

    cmd = _ok(crew.olga.post(f"{_A}/commands", json={"command": "true", "host_ids": [db_host]}))
    assert cmd["status"] == "pending_approval", cmd
    assert cmd["approval"]["reasons"] == [f"host group 'db' requires approval ({db_host})"]
    assert cmd["approval"]["decided_by"] == {"scope": "group", "name": "db"}
    assert len(_pending_approval_for(crew.amy, cmd["id"])) == 1

    job = _ok(
        crew.olga.post(
            f"{_A}/jobs",
            json={"type": "network_diagnostic", "tool": "netstat", "host_ids": [web_host, db_host]},
        )
    )
    assert job["status"] == "pending_approval", job

    sid = _save(crew.olga, "uptime", "uptime\n")["id"]
    assert _execute(crew.olga, sid, ["db"])["status"] == "pending_approval"

    # nothing in the group: no approval needed
    free = _ok(crew.olga.post(f"{_A}/commands", json={"command": "true", "host_ids": [web_host]}))
    assert free["status"] != "pending_approval" and free["approval"] is None
    assert wait_terminal(crew.admin, free["id"])["status"] == "succeeded"


def test_command_and_job_rules_hold_every_command_and_job(crew: Crew) -> None:
    web_host = crew.web[0]
    body = {"command": "true", "host_ids": [web_host]}
    before = _ok(crew.olga.post(f"{_A}/commands", json=body))
    assert before["status"] != "pending_approval"

    _ok(crew.admin.put(f"{_A}/approval-policies/kinds/command", json={"required": True}))
    cmd = _ok(crew.olga.post(f"{_A}/commands", json=body))
    assert cmd["status"] == "pending_approval"
    assert cmd["approval"]["reasons"] == ["server policy: ad-hoc commands require approval"]
    # a "command" job is a command
    as_job = _ok(crew.olga.post(f"{_A}/jobs", json={"type": "command", **body}))
    assert as_job["status"] == "pending_approval"

    netstat = {"type": "network_diagnostic", "tool": "netstat", "host_ids": [web_host]}
    assert _ok(crew.olga.post(f"{_A}/jobs", json=netstat))["status"] != "pending_approval"
    _ok(crew.admin.put(f"{_A}/approval-policies/kinds/job", json={"required": True}))
    job = _ok(crew.olga.post(f"{_A}/jobs", json=netstat))
    assert job["status"] == "pending_approval"
    assert job["approval"]["reasons"] == ["server policy: built-in jobs require approval"]

    listed = _ok(crew.olga.get(f"{_A}/approval-policies"))
    assert listed["kinds"]["command"]["required"] and listed["kinds"]["job"]["required"]


def _approve(crew: Crew, execution_id: str) -> None:
    [req] = _pending_approval_for(crew.amy, execution_id)
    _ok(crew.amy.post(f"{_A}/approvals/{req['id']}/approve"))


def test_retry_of_an_approved_run_that_failed_needs_a_new_approval(crew: Crew) -> None:
    sid = _save(crew.admin, "flaky", "echo trying; exit 3\n", requires_approval=True)["id"]
    first = _execute(crew.olga, sid, crew.web[:1])
    assert first["status"] == "pending_approval"
    _approve(crew, first["id"])
    assert wait_terminal(crew.admin, first["id"])["status"] == "failed"

    retried = _ok(crew.olga.post(f"{_A}/executions/{first['id']}/retry"))
    assert retried["status"] == "pending_approval", retried
    assert retried["hosts"][0]["attempt"] == 2
    assert retried["hosts"][0]["state"] == "pending_approval"
    # a new request, by the one who retried; the first approval does not carry over
    [req] = _pending_approval_for(crew.amy, first["id"])
    assert req["requester"] == "olga"
    assert crew.olga.post(f"{_A}/approvals/{req['id']}/approve").status_code == 403
    _approve(crew, first["id"])
    done = wait_terminal(crew.admin, first["id"])
    assert done["status"] == "failed" and done["hosts"][0]["attempt"] == 2

    # the rule may waive it for retries: then the new attempt queues at once
    _ok(crew.admin.put(f"{_A}/scripts/{sid}/approval-policy", json={"retry_needs_approval": False}))
    waived = _ok(crew.olga.post(f"{_A}/executions/{first['id']}/retry"))
    assert waived["status"] != "pending_approval"
    assert _pending_approval_for(crew.amy, first["id"]) == []
    final = wait_terminal(crew.admin, first["id"])
    assert final["status"] == "failed" and final["hosts"][0]["attempt"] == 3


def test_retry_needs_approval_when_a_group_rule_now_requires_it(crew: Crew) -> None:
    cmd = _ok(
        crew.olga.post(f"{_A}/commands", json={"command": "exit 4", "host_ids": [crew.db[0]]})
    )
    assert wait_terminal(crew.admin, cmd["id"])["status"] == "failed"
    # the group became protected after the first run: the retry meets today's rule
    _ok(crew.admin.put(f"{_A}/approval-policies/groups/db", json={"required": True}))
    retried = _ok(crew.olga.post(f"{_A}/executions/{cmd['id']}/retry"))
    assert retried["status"] == "pending_approval"
    assert retried["approval"]["decided_by"] == {"scope": "group", "name": "db"}


def test_bad_rules_are_refused_naming_the_problem_and_store_nothing(crew: Crew) -> None:
    bad_group = crew.admin.put(f"{_A}/approval-policies/groups/prod env", json={"required": True})
    assert bad_group.status_code == 422 and "group" in bad_group.text
    bad_kind = crew.admin.put(f"{_A}/approval-policies/kinds/workflow", json={"required": True})
    assert bad_kind.status_code == 422
    bad_approvers = crew.admin.put(
        f"{_A}/approval-policies/groups/db", json={"required": True, "approvers": ["team:ops"]}
    )
    assert bad_approvers.status_code == 422 and "team:ops" in bad_approvers.text
    unknown = crew.admin.put(f"{_A}/approval-policies/groups/db", json={"needed": True})
    assert unknown.status_code == 422 and "needed" in unknown.text
    assert _ok(crew.admin.get(f"{_A}/approval-policies"))["groups"] == []
    missing = crew.admin.delete(f"{_A}/approval-policies/groups/db")
    assert missing.status_code == 404

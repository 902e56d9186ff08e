"""``"dry_run": true`` on the script execute request: the plan per host, nothing queued.

Seed/issue 13: a preview shows the hosts selected (and skipped, with the
reason), the rendered body with secrets masked, the shell, the throttling and
the approval it would wait for; no execution, host run or approval request is
stored.
"""

from __future__ import annotations

import httpx

from tests.integration.server.harness import LiveServer
from tests.integration.server.helpers import row_counts, save_script


def test_dry_run_shows_the_plan_and_queues_nothing(server: LiveServer, api: httpx.Client) -> None:
    script = save_script(
        api,
        name="greet",
        body='echo "hello ${who}"\necho "${token}" | wc -c\n',
        parameters=[
            {"name": "who", "type": "string", "required": True},
            {"name": "token", "type": "secret", "required": True},
        ],
    )
    resp = api.post(
        "/api/v1/hosts",
        json={"name": "win1", "platform": "windows", "address": "10.0.0.9"},
    )
    assert resp.status_code == 201, resp.text
    api.put(
        f"/api/v1/automation/scripts/{script['id']}/approval-policy",
        json={"required": True, "policy": "one_of_many", "approvers": ["role:admin"]},
    ).raise_for_status()
    before = row_counts(server)
    resp = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute",
        json={
            "host_ids": ["localhost", "win1"],
            "parameter_values": {"who": "$(reboot)", "token": "s3cr3t-value"},
            "forks": 2,
            "dry_run": True,
        },
    )
    assert resp.status_code == 200, resp.text
    plan = resp.json()
    assert plan["dry_run"] is True and plan["queued"] is False
    assert plan["shell"] == "bash"
    assert plan["throttle"]["forks"] == 2
    assert plan["waits_for"]["approval"]["policy"] == "one_of_many"
    by_host = {h["host"]: h for h in plan["hosts"]}
    assert by_host["win1"]["selected"] is False
    assert "shell bash" in by_host["win1"]["skip_reason"]
    local = by_host["localhost"]
    assert local["selected"] is True
    # The value is quoted as one literal word; the secret never appears.
    assert 'echo "hello \\$(reboot)"' in local["body"]
    assert "MUSTER_PARAM_TOKEN" in local["body"]
    assert local["env"]["MUSTER_PARAM_TOKEN"] == "***"
    assert "s3cr3t-value" not in resp.text
    assert plan["parameters"]["token"] == "***"
    assert row_counts(server) == before
    assert api.get("/api/v1/automation/approvals").json()["total"] == 0


def test_dry_run_refuses_what_the_real_request_refuses(api: httpx.Client) -> None:
    script = save_script(
        api, name="count", body="echo ${n}\n", parameters=[{"name": "n", "type": "integer"}]
    )
    resp = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute",
        json={"host_ids": ["localhost"], "parameter_values": {"n": "many"}, "dry_run": True},
    )
    assert resp.status_code == 422, resp.text
    assert "n" in resp.text
    resp = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute",
        json={"host_ids": ["nosuchhost"], "dry_run": True},
    )
    assert resp.status_code == 422, resp.text
    assert "nosuchhost" in resp.text

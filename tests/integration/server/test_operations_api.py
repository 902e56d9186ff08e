"""Health, Prometheus metrics, OpenAPI, and worker drain over real HTTP."""

from __future__ import annotations

import re

import httpx

from tests.integration.server.harness import wait_for
from tests.integration.server.helpers import save_script, wait_terminal


def test_health_metrics_and_openapi(api: httpx.Client) -> None:
    health = api.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["database"] == "ok" and body["worker"] == "alive" and body["version"]

    script = save_script(api, name="m", body="echo m\n")
    eid = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute", json={"host_ids": ["localhost"]}
    ).json()["id"]
    wait_terminal(api, eid)
    metrics = api.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert "# TYPE muster_executions gauge" in text
    assert 'muster_executions{status="succeeded"} 1' in text
    assert 'muster_host_runs{state="succeeded"} 1' in text
    assert re.search(r"^muster_queue_depth 0$", text, re.M)
    assert re.search(r"^muster_workers 1$", text, re.M)
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{[a-z_]+=\"[a-z_]+\"\})? \S+", line)

    spec = api.get("/openapi.json").json()
    for path in (
        "/api/v1/automation/scripts",
        "/api/v1/automation/scripts/{script_id}/execute",
        "/api/v1/automation/executions/{execution_id}/stream",
        "/api/v1/hosts/import",
        "/api/v1/webhooks",
        "/health",
        "/metrics",
    ):
        assert path in spec["paths"], path
    docs = api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_drain_stops_claims_and_shows_waiting_reason(api: httpx.Client) -> None:
    drained = api.post("/api/v1/workers/drain")
    assert drained.status_code == 200 and drained.json()["draining"] is True
    assert api.get("/health").json()["worker"] == "draining"
    script = save_script(api, name="d", body="echo d\n")
    eid = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute", json={"host_ids": ["localhost"]}
    ).json()["id"]
    data = api.get(f"/api/v1/automation/executions/{eid}").json()
    assert data["status"] == "queued"
    assert data["hosts"][0]["waiting_reason"]
    assert re.search(r"^muster_queue_depth 1$", api.get("/metrics").text, re.M)
    assert api.post("/api/v1/workers/resume").json()["draining"] is False
    assert wait_terminal(api, eid)["status"] == "succeeded"
    wait_for(lambda: api.get("/api/v1/workers").json()["items"][0]["completed"] >= 1)

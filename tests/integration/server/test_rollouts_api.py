"""Published rollout reports through the API of a running server (SQLite and PostgreSQL).

The report is a real rollout's (tests/support/rollout_sample.py): publish,
re-publish idempotently, 409 for changed content under the same id, 413 above
the size limit, 422 naming a missing key, permissions per role, the audit
record, and secrets (a vault credential's value, a secret parameter given in
clear) masked before anything is stored.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from tests.integration.server.harness import LiveServer
from tests.support.rollout_sample import SECRET, sample_report

_R = "/api/v1/rollouts"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return sample_report(tmp_path_factory.mktemp("rollout"))


def _ok(resp: httpx.Response, *codes: int) -> Any:
    assert resp.status_code in (codes or (200,)), (resp.status_code, resp.text)
    return resp.json()


def test_publish_read_list_and_export(api: httpx.Client, report: dict[str, Any]) -> None:
    made = _ok(api.post(_R, json=report), 201)
    assert (made["id"], made["status"], made["created"]) == (report["id"], "rollback_failed", True)
    assert (made["hosts"], made["flagged"], made["published_by"]) == (4, 1, "test-admin")

    again = _ok(api.post(_R, json=report), 200)
    assert again["created"] is False and again["content_hash"] == made["content_hash"]

    listed = _ok(api.get(_R))
    assert [r["id"] for r in listed] == [report["id"]]
    got = _ok(api.get(f"{_R}/{report['id']}"))
    assert got["document"] == report
    assert got["document"]["hosts"]["h1"]["flagged"] is True
    assert got["document"]["hosts"]["h3"]["drift"] == ["motd"]

    export = api.get(f"{_R}/{report['id']}/evidence.json")
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    assert json.loads(export.text) == report

    audit = _ok(api.get("/api/v1/audit", params={"limit": 50}))["items"]
    published = [a for a in audit if a["action"] == "rollout.publish"]
    assert len(published) == 2
    assert published[0]["target"] == f"rollout:{report['id']}"


def test_changed_content_under_a_published_id_is_409(
    api: httpx.Client, report: dict[str, Any]
) -> None:
    _ok(api.post(_R, json=report), 201)
    changed = copy.deepcopy(report)
    changed["hosts"]["h3"]["state"] = "succeeded"
    resp = api.post(_R, json=changed)
    assert resp.status_code == 409
    assert "already published with other content" in resp.text
    assert _ok(api.get(f"{_R}/{report['id']}"))["document"]["hosts"]["h3"]["state"] == (
        "rolled_back"
    )


def test_too_large_and_malformed_reports_are_refused(
    api: httpx.Client, report: dict[str, Any]
) -> None:
    big = {**report, "id": "big", "padding": "x" * (1024 * 1024)}
    resp = api.post(_R, json=big)
    assert resp.status_code == 413
    assert "at most 1 MiB" in resp.text
    resp = api.post(_R, json={k: v for k, v in report.items() if k != "waves"})
    assert resp.status_code == 422 and "waves" in resp.text
    resp = api.post(_R, json={**report, "id": "bad id/../x"})
    assert resp.status_code == 422 and "rollout id" in resp.text
    resp = api.post(_R, content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "not JSON" in resp.text
    assert _ok(api.get(_R)) == []
    assert api.get(f"{_R}/nope").status_code == 404


def test_reading_needs_workflows_view_and_publishing_workflows_manage(
    server: LiveServer, api: httpx.Client, report: dict[str, Any]
) -> None:
    viewer = server.client(token=server.issue_token("vera", ["viewer"]))
    nobody = server.client(token=server.issue_token("nils", []))
    operator = server.client(token=server.issue_token("olga", ["operator"]))
    try:
        assert viewer.post(_R, json=report).status_code == 403
        assert nobody.get(_R).status_code == 403
        assert _ok(operator.post(_R, json=report), 201)["published_by"] == "olga"
        assert _ok(viewer.get(_R))[0]["id"] == report["id"]
        assert viewer.get(f"{_R}/{report['id']}/evidence.json").status_code == 200
        assert nobody.get(f"{_R}/{report['id']}").status_code == 403
    finally:
        for c in (viewer, nobody, operator):
            c.close()


def test_secrets_are_masked_before_storing(api: httpx.Client, report: dict[str, Any]) -> None:
    vault_value = "vault-held-password-99173"
    _ok(
        api.post(
            "/api/v1/credentials",
            json={"name": "db-root", "kind": "password", "secret": vault_value},
        ),
        201,
    )
    leaky = copy.deepcopy(report)
    leaky["id"] = "leaky"
    # A careless publisher: the secret parameter in clear, and both values in output.
    leaky["parameters"] = {"token": SECRET, "release": "3.0.13"}
    leaky["secret_parameters"] = ["token"]
    leaky["hosts"]["h2"]["evidence"][0]["after"]["motd"] = f"token {SECRET} pw {vault_value}\n"
    leaky["message"] = f"{SECRET}-{vault_value}"
    _ok(api.post(_R, json=leaky), 201)
    stored = _ok(api.get(f"{_R}/leaky"))
    text = json.dumps(stored)
    assert SECRET not in text and vault_value not in text
    doc = stored["document"]
    assert doc["parameters"] == {"token": "***", "release": "3.0.13"}
    assert doc["hosts"]["h2"]["evidence"][0]["after"]["motd"] == "token *** pw ***\n"
    assert doc["message"] == "***-***"
    export = api.get(f"{_R}/leaky/evidence.json").text
    assert SECRET not in export and vault_value not in export

"""A workflow that declares a rollout is refused by the server (SQLite and PostgreSQL):
its durable driver runs a workflow as one flat DAG, so waves, gates, before/after
captures and wave windows would be ignored without a word. Push, start and the
editor's check all say why and point at ``muster workflow run``; nothing is stored
or queued."""

from __future__ import annotations

import httpx
import pytest
import yaml

from muster.domain.workflows import load_workflow_text
from tests.integration.server.harness import LiveServer
from tests.integration.server.test_workflows_api import INST, WF

ROLLOUT = """
name: waves
steps:
  - {id: patch, targets: "*", command: echo patched, rollback: echo undone}
rollout:
  waves: [1, "100%"]
  auto_rollback: true
"""
VERIFIED = """
name: verified
steps:
  - {id: patch, targets: "*", command: echo patched}
verifications:
  v: {before_tasks: [patch], after_tasks: [patch], commands: {a: echo 1}}
"""


@pytest.mark.parametrize(("text", "key"), [(ROLLOUT, "rollout"), (VERIFIED, "verifications")])
def test_push_refuses_a_rollout_naming_why_and_the_cli(
    api: httpx.Client, text: str, key: str
) -> None:
    for resp in (
        api.post(WF, json={"source": text}),
        api.post(WF, json={"definition": yaml.safe_load(text)}),
        api.post(WF, content=text, headers={"content-type": "application/yaml"}),
    ):
        assert resp.status_code == 422, resp.text
        said = resp.text
        assert f"declares {key}:" in said and "does not run" in said, said
        assert "muster workflow run FILE -i INVENTORY" in said
    name = yaml.safe_load(text)["name"]
    assert api.get(f"{WF}/{name}").status_code == 404


def test_validate_reports_the_rollout_as_the_problem(api: httpx.Client) -> None:
    resp = api.post(f"{WF}/validate", json={"source": ROLLOUT})
    assert resp.status_code == 200  # the editor's check always answers 200
    doc = resp.json()
    assert doc["valid"] is False
    assert doc["problem"]["field"] == "rollout"
    assert "muster workflow run" in doc["problem"]["message"]


def test_start_refuses_a_rollout_stored_before_the_refusal(
    server: LiveServer, api: httpx.Client
) -> None:
    # A definition saved by an older server (straight into the store) cannot start either.
    server.ctx.store.save_workflow(load_workflow_text(ROLLOUT), created_by="test", source=ROLLOUT)
    resp = api.post(f"{WF}/waves/start", json={})
    assert resp.status_code == 422, resp.text
    assert "muster workflow run" in resp.text and "rollout:" in resp.text
    assert api.get(INST, params={"workflow": "waves"}).json()["total"] == 0

"""A workflow that declares a rollout is accepted by the server (SQLite and PostgreSQL):
push, the editor's check and start take it, and start hands it to the durable
rollout driver, which plans its waves at once (a rollout selecting no host is
refused then, naming the rollout, with nothing stored). Running rollouts over
real hosts: ``tests/integration/workflows/test_rollout_server_ssh.py``."""

from __future__ import annotations

import httpx
import pytest
import yaml

from muster.domain.workflows import load_workflow_text
from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
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


@pytest.mark.parametrize("text", [ROLLOUT, VERIFIED])
def test_push_accepts_a_rollout_in_every_form(api: httpx.Client, text: str) -> None:
    name = yaml.safe_load(text)["name"]
    first = api.post(WF, json={"source": text})
    assert first.status_code == 201, first.text
    for resp in (
        api.post(WF, json={"definition": yaml.safe_load(text)}),
        api.post(WF, content=text, headers={"content-type": "application/yaml"}),
    ):
        assert resp.status_code in (200, 201), resp.text
    assert api.get(f"{WF}/{name}").status_code == 200


def test_validate_accepts_the_rollout(api: httpx.Client) -> None:
    resp = api.post(f"{WF}/validate", json={"source": ROLLOUT})
    assert resp.status_code == 200
    assert resp.json()["valid"] is True, resp.json()


def test_start_plans_the_waves_and_refuses_a_rollout_selecting_no_host(
    server: LiveServer, api: httpx.Client, fleet: SimFleet
) -> None:
    # A definition saved by an older server (straight into the store) starts too.
    text = ROLLOUT.replace('targets: "*"', "targets: web")
    server.ctx.store.save_workflow(load_workflow_text(text), created_by="test", source=text)
    empty = api.post(f"{WF}/waves/start", json={})
    assert empty.status_code == 422, empty.text
    assert "the rollout selects no host" in empty.text
    assert api.get(INST, params={"workflow": "waves"}).json()["total"] == 0

    register_fleet(api, fleet)
    web = sorted(h.name for h in fleet.hosts() if "web" in h.groups)
    started = api.post(f"{WF}/waves/start", json={})
    assert started.status_code == 201, started.text
    roll = started.json()["rollout"]
    assert roll["status"] == "running" and roll["total"] == len(web)
    assert [w["hosts"] for w in roll["waves"]] == [web[:1], web[1:]]
    assert api.get(INST, params={"workflow": "waves"}).json()["total"] == 1

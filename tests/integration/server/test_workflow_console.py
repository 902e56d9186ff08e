"""The console's workflow pages on a real server: list, editor (save with a problem
shown beside the step, a good save), graph rendered by the server, start, the
instance view with its state-coloured graph and per-step output, the actions, and
workflow approval steps in the approvals inbox."""

from __future__ import annotations

import re

import httpx

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, wait_for

GATED = """name: gated
targets: web
steps:
  - id: hello
    command: echo hello from the console
  - id: gate
    depends_on: [hello]
    approval: {approvers: ["user:alice"]}
  - id: after
    depends_on: [gate]
    command: echo after
"""


def test_console_workflow_pages(server: LiveServer, api: httpx.Client, fleet: SimFleet) -> None:
    register_fleet(api, fleet)
    with server.client(follow_redirects=False) as web:
        assert web.get("/workflows").status_code == 200
        editor = web.get("/workflows/new")
        assert editor.status_code == 200 and "wf-source" in editor.text
        bad = web.post("/workflows", data={"source": GATED.replace("[hello]", "[nope]")})
        assert bad.status_code == 422
        assert "Step gate" in bad.text and "nope" in bad.text
        saved = web.post("/workflows", data={"source": GATED})
        assert saved.status_code == 303 and saved.headers["location"] == "/workflows/gated"
        shown = web.get("/workflows/gated")
        assert shown.status_code == 200
        assert "<svg" in shown.text and 'data-step="gate"' in shown.text
        started = web.post("/workflows/gated/start", data={})
        assert started.status_code == 303
        page = started.headers["location"]
        iid = page.rsplit("/", 1)[1]

        def waiting() -> str | None:
            html = web.get(page).text
            return html if re.search(r'data-step="gate" data-state="waiting"', html) else None

        html = wait_for(waiting, timeout=60, what="the gate to wait")
        assert 'data-step="hello" data-state="succeeded"' in html
        assert "hello from the console" in html
        inbox = web.get("/approvals").text
        assert "workflow gated: approval step gate" in inbox
        assert f"/workflow-instances/{iid}" in inbox
        killed = web.post(f"/workflow-instances/{iid}/action", data={"action": "kill"})
        assert killed.status_code == 303
        after = web.get(page).text
        assert re.search(r'id="instance-status">killed<', after)
        refused = web.post(f"/workflow-instances/{iid}/action", data={"action": "pause"})
        assert refused.status_code == 409

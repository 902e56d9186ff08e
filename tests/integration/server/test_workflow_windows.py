"""A workflow step held by a maintenance window shows it (SQLite and PostgreSQL).

The queue's claim keeps a host run outside its window queued with the reason
"outside maintenance window; next opens ..."; the durable driver must show the
step (and so the instance) as ``waiting`` with reason ``window`` and that
message, and go back to running once the window lets the hosts start.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import wait_for
from tests.integration.server.test_workflows_api import INST, WF, wait_instance

_W = "/api/v1/maintenance-windows"

HELD = """
name: held
steps:
  - id: patch
    targets: db
    command: echo patched
  - id: after
    depends_on: [patch]
    targets: db
    command: echo after
"""


def test_a_step_outside_its_window_waits_with_reason_window(
    api: httpx.Client, fleet: SimFleet
) -> None:
    register_fleet(api, fleet)
    db = sorted(h.name for h in fleet.hosts() if "db" in h.groups)
    assert db
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    freeze = api.post(
        _W,
        json={
            "name": "db freeze",
            "kind": "blackout",
            "scope": "group",
            "target": "db",
            "timezone": "Europe/Berlin",
            "starts_at": (now - dt.timedelta(minutes=5)).isoformat(),
            "ends_at": (now + dt.timedelta(hours=2)).isoformat(),
        },
    )
    assert freeze.status_code == 201, freeze.text
    api.post(WF, json={"source": HELD}).raise_for_status()
    iid = api.post(f"{WF}/held/start", json={}).json()["id"]

    data = wait_instance(api, iid, {"waiting", "succeeded", "failed"})
    assert data["status"] == "waiting", data
    assert data["waiting_reason"] == "window"
    patch = {s["id"]: s for s in data["steps"]}["patch"]
    assert patch["state"] == "waiting" and patch["wait_reason"] == "window", patch
    assert patch["message"].startswith("outside maintenance window; next opens "), patch
    assert patch["message"].endswith(("CET", "CEST")), patch

    # The window is lifted: the hosts start, the step runs, the instance succeeds.
    assert api.delete(f"{_W}/{freeze.json()['id']}").status_code == 204

    def running_again() -> dict[str, Any] | None:
        got = api.get(f"{INST}/{iid}").json()
        step = {s["id"]: s for s in got["steps"]}["patch"]
        return got if step["state"] != "waiting" else None

    wait_for(running_again, timeout=60, interval=0.1, what="the step to leave waiting")
    done = wait_instance(api, iid, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["waiting_reason"] is None
    steps = {s["id"]: s for s in done["steps"]}
    assert steps["patch"]["wait_reason"] is None
    assert sorted(h["host"] for h in steps["patch"]["hosts"]) == db
    assert all(h["stdout"] == "patched\n" for h in steps["patch"]["hosts"])

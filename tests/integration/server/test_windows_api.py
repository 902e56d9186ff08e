"""Maintenance windows through the API of a running server (SQLite and PostgreSQL).

Simulated SSH hosts in groups ``web`` and ``db``: a blackout on ``db`` holds
its host runs queued with the reason naming the reopening while ``web``
runs; only ``windows.override`` lets the execution run anyway, and that is
audited; bad windows answer 422 naming the field; the forecast answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, wait_for
from tests.integration.server.helpers import wait_terminal

_W = "/api/v1/maintenance-windows"
_A = "/api/v1/automation"


@pytest.fixture
def clients(server: LiveServer, fleet: SimFleet) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    admin = server.client()
    olga = server.client(token=server.issue_token("olga", ["operator"]))
    register_fleet(admin, fleet)
    try:
        yield admin, olga
    finally:
        admin.close()
        olga.close()


def _ok(resp: httpx.Response, *codes: int) -> Any:
    assert resp.status_code in (codes or (200, 201)), (resp.status_code, resp.text)
    return resp.json()


def _groups(fleet: SimFleet) -> tuple[list[str], list[str]]:
    hosts = {h.name: h.groups for h in fleet.hosts()}
    return (
        sorted(n for n, g in hosts.items() if "db" in g),
        sorted(n for n, g in hosts.items() if "web" in g and "db" not in g),
    )


def test_blackout_holds_db_hosts_until_an_audited_override(clients, fleet) -> None:
    admin, olga = clients
    db, web = _groups(fleet)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    blackout = {
        "name": "db freeze",
        "kind": "blackout",
        "scope": "group",
        "target": "db",
        "timezone": "Europe/Berlin",
        "starts_at": (now - dt.timedelta(minutes=5)).isoformat(),
        "ends_at": (now + dt.timedelta(hours=2)).isoformat(),
    }
    # An operator may not define windows; an admin may.
    assert olga.post(_W, json=blackout).status_code == 403
    made = _ok(admin.post(_W, json=blackout), 201)
    assert made["kind"] == "blackout" and made["target"] == "db"
    assert [w["id"] for w in _ok(olga.get(_W))] == [made["id"]]

    ex = _ok(olga.post(f"{_A}/commands", json={"command": "true", "host_ids": [*db, *web]}))

    def settled() -> dict[str, Any] | None:
        data = admin.get(f"{_A}/executions/{ex['id']}").json()
        hosts = {h["host"]: h for h in data["hosts"]}
        done = all(hosts[n]["state"] == "succeeded" for n in web)
        return data if done else None

    data = wait_for(settled, timeout=60, interval=0.1, what="web hosts")
    for h in data["hosts"]:
        if h["host"] in db:
            assert h["state"] == "queued"
            assert h["waiting_reason"].startswith("outside maintenance window; next opens ")
            assert h["waiting_reason"].endswith(("CET", "CEST"))
    # Running anyway is its own right ...
    body = {"execution_id": ex["id"], "reason": "hotfix"}
    assert olga.post(f"{_W}/overrides", json=body).status_code == 403
    assert _ok(admin.post(f"{_W}/overrides", json=body))["released"] == len(db)
    assert wait_terminal(admin, ex["id"])["status"] == "succeeded"
    # ... and audited, as are window changes.
    actions = [r["action"] for r in _ok(admin.get("/api/v1/audit", params={"limit": 50}))["items"]]
    assert "window.create" in actions and "window.override" in actions
    assert admin.delete(f"{_W}/{made['id']}").status_code == 204
    assert _ok(admin.get(_W)) == []
    assert admin.get(f"{_W}/{made['id']}").status_code == 404


BAD = [
    ({"spec": "Sun 01:00-01:00", "target": "db"}, "end_time"),
    ({"spec": "Sun 01:00-03:00", "target": "db", "timezone": "Mars/Olympus"}, "timezone"),
    ({"spec": "Sunday-ish 01:00-03:00", "target": "db"}, "days"),
    ({"days": "Sun", "start_time": "01:00", "target": "db"}, "end_time"),
    ({"spec": "Sun 01:00-03:00"}, "target"),
    (
        {
            "kind": "extra",
            "target": "db",
            "starts_at": "2030-01-02T00:00",
            "ends_at": "2030-01-01T00:00",
        },
        "ends_at",
    ),
    ({"kind": "blackout", "target": "db", "starts_at": "soon", "ends_at": "later"}, "starts_at"),
    ({"kind": "sometimes", "target": "db"}, "kind"),
]


def test_bad_windows_answer_422_naming_the_field(clients) -> None:
    admin, _ = clients
    for body, field in BAD:
        resp = admin.post(_W, json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert field in [d["field"] for d in resp.json()["detail"]], (body, resp.json())
    assert _ok(admin.get(_W)) == []  # nothing stored


def test_forecast_answers_and_checks_its_range(clients) -> None:
    admin, olga = clients
    _ok(
        admin.post(
            _W, json={"spec": "Sun 01:00-03:00", "target": "db", "timezone": "Europe/Berlin"}
        )
    )
    fc = _ok(olga.get(f"{_W}/forecast", params={"days": 7}))
    assert set(fc) >= {"start", "end", "entries", "will_not_fit"}
    assert admin.get(f"{_W}/forecast", params={"days": 0}).status_code == 422
    listed = _ok(olga.get(_W))
    assert listed[0]["spec"] == "Sun 01:00-03:00 Europe/Berlin"
    assert listed[0]["next_open"]["start"]

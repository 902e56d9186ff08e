"""Schedules over the API on SQLite and PostgreSQL: CRUD with seed 000's fields,
pause/resume, run-now, the firings each schedule started, RBAC, the audit, and bad
input answered 422 naming the field (nothing stored)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from tests.integration.server.harness import LiveServer, wait_for
from tests.integration.server.helpers import save_script

S = "/api/v1/automation/schedules"


def _body(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "nightly-uptime",
        "cron_expression": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "target": "command",
        "command": "uptime",
        "host_ids": ["localhost"],
    }
    body.update(kw)
    return body


def _field(resp: httpx.Response) -> list[str | None]:
    return [d.get("field") for d in resp.json()["detail"]]


def test_crud_pause_resume_and_seed_fields(api: httpx.Client) -> None:
    created = api.post(S, json=_body(misfire_policy="catch_up", catch_up_limit=3))
    assert created.status_code == 201, created.text
    s = created.json()
    for key in ("cron_expression", "enabled", "last_run", "last_status", "next_run"):
        assert key in s
    assert s["cron_expression"] == "30 2 * * *" and s["enabled"] is True
    assert s["last_run"] is None and s["last_status"] is None and s["created_by"] == "test-admin"
    nxt = dt.datetime.fromisoformat(s["next_run"])
    assert nxt.astimezone(dt.timezone(dt.timedelta(hours=1))).minute == 30
    assert [x["name"] for x in api.get(S).json()] == ["nightly-uptime"]
    assert api.get(f"{S}/nightly-uptime").json()["id"] == s["id"]
    paused = api.post(f"{S}/{s['id']}/pause").json()
    assert paused["enabled"] is False and paused["next_run"] is None
    resumed = api.post(f"{S}/{s['id']}/resume").json()
    assert resumed["enabled"] is True and resumed["next_run"] == s["next_run"]
    changed = api.put(f"{S}/{s['id']}", json=_body(cron_expression="0 * * * *"))
    assert changed.status_code == 200 and changed.json()["cron_expression"] == "0 * * * *"
    assert api.post(S, json=_body()).status_code == 409
    assert api.delete(f"{S}/{s['id']}").status_code == 204
    assert api.get(f"{S}/{s['id']}").status_code == 404


def test_run_now_and_the_firings_it_started(server: LiveServer, api: httpx.Client) -> None:
    save_script(api, name="hello", body="echo hi from ${who}", parameters=[{"name": "who"}])
    s = api.post(
        S,
        json=_body(
            name="hello-hourly",
            target="script",
            script="hello",
            command=None,
            parameter_values={"who": "cron"},
            cron_expression="0 * * * *",
        ),
    ).json()
    assert s["version"] == "latest"
    run = api.post(f"{S}/{s['id']}/run-now")
    assert run.status_code == 201, run.text
    execution = run.json()
    wait_for(
        lambda: (
            api.get(f"/api/v1/automation/executions/{execution['id']}").json()["status"]
            == "succeeded"
        ),
        timeout=60,
        what="run-now execution",
    )
    (firing,) = api.get(f"{S}/{s['id']}/firings").json()
    assert firing["manual"] is True and firing["status"] == "fired"
    assert firing["execution_id"] == execution["id"] and firing["script_version"] == 1
    assert firing["execution_status"] == "succeeded"
    after = api.get(f"{S}/{s['id']}").json()
    assert after["last_status"] == "succeeded" and after["last_run"] is not None
    assert after["runs"] == 0  # run-now is outside the cron
    actions = [a["action"] for a in api.get("/api/v1/audit", params={"limit": 50}).json()["items"]]
    assert "schedule.create" in actions and "execution.create" in actions


BAD = [
    ({"cron_expression": "61 * * * *"}, "cron_expression"),
    ({"cron_expression": "* * * *"}, "cron_expression"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"end_at": "2001-01-01T00:00:00Z"}, "end_at"),
    ({"end_at": "2099-01-01T00:00:00"}, "end_at"),
    ({"target": "script", "script": "no-such-script"}, "script"),
    ({"command": None}, "command"),
    ({"host_ids": ["no-such-host"]}, "host_ids"),
    ({"misfire_policy": "sometimes"}, "misfire_policy"),
    ({"parameter_values": {"x": 1}}, "parameter_values"),
    ({"target": "script", "script": "x", "version": 2**40}, "version"),
]


def test_bad_input_names_the_field_and_stores_nothing(api: httpx.Client) -> None:
    for change, field in BAD:
        resp = api.post(S, json=_body(**change))
        assert resp.status_code == 422, (change, resp.text)
        assert field in _field(resp), (change, resp.json())
    assert api.get(S).json() == []


def test_viewers_read_operators_manage(server: LiveServer, api: httpx.Client) -> None:
    created = api.post(S, json=_body()).json()
    with server.client(token=server.issue_token("vic", ["viewer"])) as viewer:
        assert viewer.get(S).status_code == 200
        assert viewer.get(f"{S}/{created['id']}/firings").status_code == 200
        assert viewer.post(S, json=_body(name="x")).status_code == 403
        assert viewer.post(f"{S}/{created['id']}/run-now").status_code == 403
    with server.client(token=server.issue_token("opal", ["operator"])) as operator:
        # the server's own machine needs hosts.local, at creation as at every firing
        refused = operator.post(S, json=_body(name="opal-job"))
        assert refused.status_code == 403, refused.text
        assert operator.post(f"{S}/{created['id']}/pause").status_code == 200


def test_the_cli_client_drives_schedules(server: LiveServer, api: httpx.Client) -> None:
    from typer.testing import CliRunner

    from muster.cli.main import app as cli

    runner = CliRunner()
    env = {"MUSTER_URL": server.url, "MUSTER_TOKEN": server.admin_token, "COLUMNS": "200"}

    def muster(*args: str) -> str:
        result = runner.invoke(cli, ["schedule", *args], env=env)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    out = muster(
        "add",
        "disk",
        "--cron",
        "0 3 * * MON-FRI",
        "--tz",
        "America/New_York",
        "--command",
        "df -h",
        "-H",
        "localhost",
        "--misfire",
        "skip",
    )
    assert "schedule disk" in out and "next run 20" in out
    assert "disk" in muster("list") and "0 3 * * MON-FRI" in muster("list")
    assert "paused" in muster("pause", "disk")
    assert "next run 20" in muster("resume", "disk")
    assert "execution" in muster("run-now", "disk")
    shown = muster("show", "disk")
    assert "cron_expression 0 3 * * MON-FRI" in shown and "(run now)" in shown
    bad = runner.invoke(
        cli,
        ["schedule", "add", "x", "--cron", "0 3 * *", "--command", "true", "-H", "localhost"],
        env=env,
    )
    assert bad.exit_code != 0 and "cron_expression" in bad.output
    assert "deleted" in muster("delete", "disk")
    assert api.get(S).json() == []

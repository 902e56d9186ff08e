"""``muster window`` as a user runs it against a live server: add, list, forecast, delete,
and a bad window refused naming the field."""

from __future__ import annotations

import json

from tests.e2e.test_cli_client import cli, run  # noqa: F401


def test_window_add_list_forecast_delete(cli) -> None:  # noqa: F811
    _, env = cli
    added = run(
        env,
        "window",
        "add",
        "Sun 01:00-03:00",
        "--group",
        "db",
        "--tz",
        "Europe/Berlin",
        "--stop",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    assert made["spec"] == "Sun 01:00-03:00 Europe/Berlin" and made["close_policy"] == "stop"
    blackout = run(
        env,
        "window",
        "add",
        "--all",
        "--blackout",
        "--from",
        "2031-12-24T18:00",
        "--until",
        "2031-12-27T08:00",
        "--tz",
        "Europe/Berlin",
    )
    assert blackout.returncode == 0, blackout.stderr
    assert "blackout" in blackout.stdout

    listed = run(env, "window", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Sun 01:00-03:00 Europe/Berlin" in listed.stdout and "all hosts" in listed.stdout

    fc = run(env, "window", "forecast", "--days", "3")
    assert fc.returncode == 0, fc.stderr
    assert "will not fit in a window" in fc.stdout

    bad = run(env, "window", "add", "Sun 01:00-01:00", "--group", "db")
    assert bad.returncode != 0
    assert "end_time" in bad.stderr
    unknown = run(env, "window", "add", "Sun 01:00-02:00", "--group", "db", "--tz", "Nowhere/City")
    assert unknown.returncode != 0 and "timezone" in unknown.stderr

    unknown_ex = run(env, "window", "override", "no-such-execution", "--reason", "test")
    assert unknown_ex.returncode != 0 and "404" in unknown_ex.stderr

    gone = run(env, "window", "delete", made["id"])
    assert gone.returncode == 0, gone.stderr
    remaining = json.loads(run(env, "window", "list", "--json").stdout)
    assert [w["kind"] for w in remaining] == ["blackout"]

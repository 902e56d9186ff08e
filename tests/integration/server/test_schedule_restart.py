"""Restart ``muster serve`` across due times: the misfire policy is applied and every
missed, skipped and caught-up tick is recorded.

The downtime is real for the server (it is stopped) and for the ticks (their due
times are real past minutes); only its length is made, not waited for: while the
server is down, each schedule's stored cursor is put back eleven minutes, which is
what an eleven-minute outage leaves in the database. Ticks fall 10, 6 and 2 minutes
before the restart, all later than the one-minute misfire threshold."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from muster.config import Settings
from muster.domain.schedules import next_firing
from muster.store.sqlalchemy_store import open_store
from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import wait_for
from tests.integration.server.test_restart_crash import ServeProcess

S = "/api/v1/automation/schedules"

POLICIES = {
    "skip": ({"misfire_policy": "skip"}, ["missed", "missed", "missed"]),
    "once": ({"misfire_policy": "run_once"}, ["skipped", "skipped", "fired"]),
    "catch-up": (
        {"misfire_policy": "catch_up", "catch_up_limit": 2},
        ["skipped", "fired", "fired"],
    ),
    "late": (
        {"misfire_policy": "catch_up", "catch_up_limit": 5, "max_lateness": 300},
        ["missed", "missed", "fired"],
    ),
}


@pytest.fixture
def serve_factory() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for p in started:
        with contextlib.suppress(Exception):
            if p.proc is not None and p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(10)


def test_restart_applies_the_misfire_policy_and_records_ticks(
    serve_factory: list[ServeProcess],
    tmp_path: Path,
    fleet: SimFleet,
) -> None:
    # muster serve's own default, SQLite; the same decisions on PostgreSQL are in
    # tests/integration/store/test_scheduler_service.py (and the two-process test).
    database_url = ""
    data = tmp_path / "data"
    first = ServeProcess(data, database_url, fleet).start()
    serve_factory.append(first)
    floor = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    ticks = [floor - dt.timedelta(minutes=m) for m in (10, 6, 2)]
    cron = ",".join(str(t.minute) for t in ticks) + " * * * *"
    with first.client() as api:
        host = register_fleet(api, fleet)[0]
        ids = {}
        for name, (policy, _) in POLICIES.items():
            body = {
                "name": name,
                "cron_expression": cron,
                "target": "command",
                "command": "echo caught up",
                "host_ids": [host],
                **policy,
            }
            created = api.post(S, json=body)
            assert created.status_code == 201, created.text
            ids[name] = created.json()["id"]
    assert first.terminate() == 0

    store = open_store(Settings(data_dir=data, database_url=database_url), listen=False)
    try:
        down_since = floor - dt.timedelta(minutes=11)
        for sid in ids.values():
            record = store.get_schedule(sid)
            assert store.advance_schedule(
                sid,
                expected_cursor=record.cursor,
                cursor=down_since,
                next_run=next_firing(record.schedule.cron, down_since),
            )
    finally:
        store.close()

    second = ServeProcess(data, database_url, fleet).start()
    serve_factory.append(second)
    with second.client() as api:

        def recorded() -> dict[str, list[dict]] | None:
            got = {n: api.get(f"{S}/{sid}/firings").json() for n, sid in ids.items()}
            return got if all(len(f) == 3 for f in got.values()) else None

        firings = wait_for(recorded, timeout=60, what="the misfired ticks to be recorded")
        for name, (_, expected) in POLICIES.items():
            mine = sorted(firings[name], key=lambda f: f["due_at"])
            assert [dt.datetime.fromisoformat(f["due_at"]) for f in mine] == ticks, name
            assert [f["status"] for f in mine] == expected, (name, mine)
            for f in mine:
                assert (f["execution_id"] is not None) == (f["status"] == "fired"), f
                assert f["reason"], f  # each says why: misfired, folded, too late
            schedule = api.get(f"{S}/{ids[name]}").json()
            assert schedule["runs"] == expected.count("fired")
            assert dt.datetime.fromisoformat(schedule["next_run"]) > floor
        executions = api.get("/api/v1/automation/executions", params={"limit": 50}).json()
        assert executions["total"] == 1 + 2 + 1  # run_once, catch-up of 2, the one in time
    assert second.terminate() == 0

"""Two ``muster scheduler`` processes on one PostgreSQL database, 1,000 schedules due
in the same minute (real time): exactly 1,000 executions. The leader is killed with
SIGKILL while it fires; the other takes the lead and fires the rest. Nothing fires
twice (one fired firing and one execution per schedule), nothing is lost."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from muster.config import Settings
from muster.domain.hosts import Host, TransportKind
from muster.domain.schedules import Schedule, ScheduleTarget, TargetKind, parse_cron
from muster.store.schedule_tables import schedule_firings
from muster.store.sqlalchemy_store import SqlStore, open_store
from muster.store.tables import executions
from tests.integration.server.harness import PG_ENV, fresh_postgres, pg_base_url, wait_for

MUSTER = str(Path(sys.executable).parent / "muster")
N = 1000


@pytest.fixture
def database_url() -> Iterator[str]:
    if pg_base_url() is None:
        reason = f"{PG_ENV} is not set: several schedulers need PostgreSQL"
        print(reason)
        pytest.skip(reason)
    with fresh_postgres() as url:
        yield url


def _count(store: SqlStore, query) -> int:  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _due_minute(now: dt.datetime, setup: float) -> dt.datetime:
    """The next minute boundary at least ``setup`` seconds away."""
    due = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return due if (due - now).total_seconds() >= setup else due + dt.timedelta(minutes=1)


def test_two_schedulers_fire_each_tick_once_across_a_kill(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    store = open_store(settings)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    try:
        store.create_user("owner", roles=["operator"])
        store.create_host(Host(name="web1", address="192.0.2.10", transport=TransportKind.SSH))
        due = _due_minute(dt.datetime.now(dt.UTC), setup=12)
        cron = parse_cron(f"{due.minute} {due.hour} * * *", "UTC")
        for i in range(N):
            store.create_schedule(
                Schedule(
                    name=f"s{i:04d}",
                    cron=cron,
                    target=ScheduleTarget(TargetKind.COMMAND, command="true", timeout=30),
                    selector=("web1",),
                    created_by="owner",
                ),
                cursor=due - dt.timedelta(seconds=1),
                next_run=due,
            )
        env = {
            **os.environ,
            "MUSTER_DATA_DIR": str(settings.data_dir),
            "MUSTER_DATABASE_URL": database_url,
            "MUSTER_SCHEDULER_POLL": "0.5",
        }
        for name, log in logs.items():
            with log.open("wb") as out:
                procs[name] = subprocess.Popen(
                    [MUSTER, "scheduler"], env=env, stdout=out, stderr=subprocess.STDOUT
                )

        def leader() -> str | None:
            lead = [n for n, log in logs.items() if ": leading" in log.read_text()]
            return lead[0] if len(lead) == 1 else None

        first = wait_for(leader, timeout=30, what="one scheduler to lead")
        fired = select(func.count()).select_from(schedule_firings)
        # Kill the leader while it fires (between the first and the last firing).
        wait_for(
            lambda: _count(store, fired) >= 50,
            timeout=(due - dt.datetime.now(dt.UTC)).total_seconds() + 60,
            interval=0.02,
            what="the first firings",
        )
        procs[first].send_signal(signal.SIGKILL)
        procs[first].wait(10)
        at_kill = _count(store, fired)
        other = "b" if first == "a" else "a"
        wait_for(lambda: ": leading" in logs[other].read_text(), timeout=30, what="a new lead")
        wait_for(lambda: _count(store, fired) >= N, timeout=90, what=f"{N} firings")
        took = (dt.datetime.now(dt.UTC) - due).total_seconds()
        print(
            f"leader {first} killed after {at_kill} firings; all {N} recorded {took:.1f}s after due"
        )
        time.sleep(1.0)  # anything a double firing would add shows up by now
        n_exec = _count(store, select(func.count()).select_from(executions))
        per_schedule = select(func.count(func.distinct(schedule_firings.c.schedule_id))).where(
            schedule_firings.c.status == "fired", schedule_firings.c.execution_id.is_not(None)
        )
        assert (_count(store, fired), n_exec, _count(store, per_schedule)) == (N, N, N), logs[
            other
        ].read_text()[-3000:]
        assert 50 <= at_kill < N, f"the leader was killed after {at_kill} firings"
        linked = select(func.count(func.distinct(schedule_firings.c.execution_id)))
        assert _count(store, linked) == N
        assert all(r.runs == 1 for r in store.list_schedules())
        procs[other].send_signal(signal.SIGTERM)
        assert procs[other].wait(30) == 0, logs[other].read_text()[-2000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        store.close()

"""Scheduler benchmark: firings per second and the lag from due time to queued.

N schedules (one host each) are due at the same real minute boundary; one
:class:`~muster.services.scheduler.Scheduler` leads and fires them through the
schedule service (owner's rights, approval gate, firing row and execution in
one transaction, approval check and audit record), as ``muster serve`` does.
For every firing, the lag is the execution's ``created_at`` (queued) minus the
tick's due time; firings/s is N over the time from the first to the last
execution queued.

The baseline, measured in the same run on the same database: the same N
executions written with ``store.create_execution`` by as many threads as the
scheduler uses (no schedule, no owner, no approval check, no audit): what
storing the work costs at least. The ratio is the scheduler's time per firing
over the baseline's time per insert (1.0: firing costs nothing beyond the
insert).

    uv run python bench/scheduler.py --schedules 500
    MUSTER_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        uv run python bench/scheduler.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from muster.config import normalise_database_url
from muster.domain.hosts import Host, TransportKind
from muster.domain.schedules import Schedule, ScheduleTarget, TargetKind, parse_cron
from muster.security.audit import AuditKeys
from muster.security.vault import Vault
from muster.services.scheduler import Scheduler, schedule_service
from muster.store._core import make_engine
from muster.store.audit_store import use_audit_keys
from muster.store.base import ExecutionKind, HostTarget, NewExecution
from muster.store.migrations import upgrade
from muster.store.schedule_tables import schedule_firings
from muster.store.sqlalchemy_store import SqlStore
from muster.store.tables import executions

#: The scheduler's threads per pass (its default), and the baseline's.
THREADS = 8


def _database(pg: str | None, tmp: Path) -> tuple[str, Any]:
    """A fresh database URL and a function that drops it."""
    if not pg:
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    base = normalise_database_url(pg)
    name = f"bench_sched_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    head, _, _ = base.rpartition("/")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{head}/{name}", drop


def _store(url: str) -> SqlStore:
    engine = make_engine(url)
    upgrade(engine)
    use_audit_keys(engine, AuditKeys(os.urandom(32)))
    return SqlStore(engine, vault=Vault(os.urandom(32)))


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(n: int, pg: str | None, setup: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = _database(pg, Path(tmp))
        store = _store(url)
        try:
            store.create_user("owner", roles=["operator"])
            host = store.create_host(
                Host(name="web1", address="192.0.2.10", transport=TransportKind.SSH)
            )
            # Baseline: the same executions, stored directly.
            new = NewExecution(
                kind=ExecutionKind.COMMAND,
                targets=[HostTarget(host.id, host.name)],
                timeout=30,
                command="true",
                shell="sh",
                requested_by="owner",
            )
            started = time.perf_counter()
            with ThreadPoolExecutor(THREADS) as pool:
                for _ in pool.map(lambda _: store.create_execution(new), range(n)):
                    pass
            baseline = (time.perf_counter() - started) / n

            now = dt.datetime.now(dt.UTC)
            due = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
            if (due - now).total_seconds() < setup:
                due += dt.timedelta(minutes=1)
            cron = parse_cron(f"{due.minute} {due.hour} * * *")
            for i in range(n):
                store.create_schedule(
                    Schedule(
                        name=f"s{i:05d}",
                        cron=cron,
                        target=ScheduleTarget(TargetKind.COMMAND, command="true", timeout=30),
                        selector=("web1",),
                        created_by="owner",
                    ),
                    cursor=due - dt.timedelta(seconds=1),
                    next_run=due,
                )
            scheduler = Scheduler(schedule_service(store), poll=0.1, concurrency=THREADS)
            stop = threading.Event()

            def loop() -> None:
                while not stop.is_set():
                    scheduler.step()
                    stop.wait(scheduler.poll)

            thread = threading.Thread(target=loop, daemon=True)
            thread.start()
            wait_until = due + dt.timedelta(seconds=600)
            while dt.datetime.now(dt.UTC) < wait_until:
                with store.engine.connect() as conn:
                    done = conn.execute(
                        select(schedule_firings.c.id).where(schedule_firings.c.status == "fired")
                    ).all()
                if len(done) >= n:
                    break
                time.sleep(0.5)
            stop.set()
            thread.join(60)
            scheduler.lock.release()
            with store.engine.connect() as conn:
                rows = conn.execute(
                    select(schedule_firings.c.due_at, executions.c.created_at).join(
                        executions, executions.c.id == schedule_firings.c.execution_id
                    )
                ).all()
            lags = [(created - due_at).total_seconds() for due_at, created in rows]
            created = sorted(c for _, c in rows)
            span = (created[-1] - created[0]).total_seconds() if len(created) > 1 else 0.0
            per_firing = span / max(1, len(created) - 1)
            return {
                "database": "postgresql" if pg else "sqlite",
                "schedules": n,
                "fired": len(rows),
                "firings_per_s": round(1 / per_firing, 1) if per_firing else None,
                "lag_p50_s": round(_pct(lags, 50), 3),
                "lag_p99_s": round(_pct(lags, 99), 3),
                "lag_max_s": round(max(lags), 3),
                "lag_mean_s": round(statistics.fmean(lags), 3),
                "baseline_inserts_per_s": round(1 / baseline, 1),
                "ratio_baseline_per_firing": round(per_firing / baseline, 2),
            }
        finally:
            store.close()
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=500)
    parser.add_argument(
        "--setup", type=float, default=20.0, help="Seconds to create the schedules before due."
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pg = os.environ.get("MUSTER_BENCH_POSTGRES_URL") or None
    result = run(args.schedules, pg, args.setup)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:28} {value}")
    print(
        f"\nscheduler: {result['firings_per_s']} firings/s, lag p50 {result['lag_p50_s']}s "
        f"p99 {result['lag_p99_s']}s; baseline create_execution {result['baseline_inserts_per_s']}"
        f"/s; one firing costs {result['ratio_baseline_per_firing']}x one bare insert"
    )


if __name__ == "__main__":
    main()

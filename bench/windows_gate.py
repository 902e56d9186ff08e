"""What the maintenance-window gate costs the queue's claim, as ratios in one run.

One process, the SQL store, batches of 64: claim, ``mark_started_many``,
``finish_host_runs`` until every run is terminal. Four configurations on the
same database engine, freshly queued runs each:

- ``none``: no window defined (the baseline: the gate reads an empty table);
- ``open``: ten windows, every host inside an open one (each claim computes
  the windows and writes a hold per run);
- ``mixed``: half the hosts' groups are outside their window (their runs are
  put back with the next opening; the claim looks further to fill its batch);
- ``many``: 200 windows, every host inside one.

Prints runs per second and the ratio to ``none``.

    uv run python bench/windows_gate.py --runs 3000
    MUSTER_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        uv run python bench/windows_gate.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, delete, text

from muster.config import normalise_database_url
from muster.domain.hosts import Host, TransportKind
from muster.domain.states import HostRunState
from muster.domain.throttle import group_key
from muster.domain.windows import MaintenanceWindow, WindowKind, WindowScope
from muster.store._core import make_engine
from muster.store.base import ExecutionKind, HostTarget, NewExecution, RunResult
from muster.store.migrations import upgrade
from muster.store.sqlalchemy_store import SqlStore
from muster.store.tables import host_runs
from muster.store.window_tables import maintenance_windows

GROUPS = 20
BATCH = 64


def _window(name: str, group: str, start: dt.datetime, end: dt.datetime) -> MaintenanceWindow:
    return MaintenanceWindow(
        name=name,
        kind=WindowKind.EXTRA,
        scope=WindowScope.GROUP,
        target=group,
        starts_at=start,
        ends_at=end,
    )


def _setup(store: SqlStore, config: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(delete(maintenance_windows))
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    if config == "open":
        for g in range(min(10, GROUPS)):
            store.create_window(_window(f"w{g}", f"g{g}", now - day, now + day))
    elif config == "mixed":
        for g in range(GROUPS):
            start = now - day if g % 2 == 0 else now + day
            store.create_window(_window(f"w{g}", f"g{g}", start, start + 2 * day))
    elif config == "many":
        for i in range(200):
            store.create_window(_window(f"w{i}", f"g{i % GROUPS}", now - day, now + day))


def _queue(store: SqlStore, targets: list[HostTarget], runs: int) -> None:
    left = runs
    while left > 0:
        n = min(left, len(targets))
        store.create_execution(
            NewExecution(
                kind=ExecutionKind.COMMAND,
                targets=targets[:n],
                timeout=60,
                command="true",
                shell="sh",
            )
        )
        left -= n


def _drain(store: SqlStore, expected: int) -> tuple[int, float]:
    done = 0
    t0 = time.perf_counter()
    while done < expected:
        got = store.claim_host_runs("bench", BATCH, 600)
        if not got:
            break
        started = store.mark_started_many("bench", [(c.id, c.epoch) for c in got])
        results = [
            RunResult(c.id, c.epoch, HostRunState.SUCCEEDED, 0) for c in got if c.id in started
        ]
        done += len(store.finish_host_runs("bench", results))
    return done, time.perf_counter() - t0


def bench(url: str, runs: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    store = SqlStore(engine)
    targets = []
    for i in range(200):
        g = [f"g{i % GROUPS}"]
        rec = store.create_host(
            Host(name=f"bh{uuid.uuid4().hex[:8]}", transport=TransportKind.LOCAL, groups=g)
        )
        targets.append(HostTarget(rec.id, rec.name, group_key=group_key(g)))
    base = None
    kind = engine.dialect.name
    for config in ("none", "open", "mixed", "many"):
        with engine.begin() as conn:
            conn.execute(delete(host_runs))
        _setup(store, config)
        _queue(store, targets, runs)
        expected = runs // 2 if config == "mixed" else runs
        done, secs = _drain(store, expected)
        rate = done / secs if secs else 0.0
        base = base or rate
        print(f"{kind:10} {config:6} {done:6} runs  {rate:8.0f}/s  vs none {rate / base:5.2f}")
    store.notifier.close()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--postgres", default=os.environ.get("MUSTER_BENCH_POSTGRES_URL", ""))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{Path(tmp) / 'bench.db'}", args.runs)
    if args.postgres:
        base = normalise_database_url(args.postgres)
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in base else "?"
            bench(f"{base}{sep}options=-csearch_path%3D{schema}", args.runs)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()

"""Queue benchmark: host runs claimed and completed per second through the database.

For SQLite and PostgreSQL, with 1 and 2 worker processes, it measures:

- ``muster``: real :class:`~muster.worker.Worker` processes over the SQL
  store with a no-op transport (claim in batches, ``mark_started``, run,
  ``finish_host_run``; leases, CAS, execution counters and notifications
  all included);
- ``raw``: the same processes running a plain driver loop (``sqlite3`` /
  ``psycopg``) on the same table: one claim statement per batch
  (``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``)
  and one committed ``UPDATE`` per finished run, the least a durable queue
  can do.

Each configuration gets freshly queued runs; the clock starts when every
process is ready and stops when the last run is terminal. Goals (DESIGN):
>= 500/s on SQLite and >= 1,000/s on PostgreSQL with 2 workers.

    uv run python bench/queue_claims.py --runs 4000
    MUSTER_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \
        uv run python bench/queue_claims.py
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, func, select, text

from muster.config import normalise_database_url
from muster.domain.hosts import Host, TransportKind
from muster.domain.scripts import ScriptVersion
from muster.domain.states import TERMINAL_STATES, HostRunState
from muster.security.vault import Vault
from muster.store._core import make_engine
from muster.store.base import ExecutionKind, HostTarget, NewExecution
from muster.store.migrations import upgrade
from muster.store.sqlalchemy_store import SqlStore
from muster.store.tables import executions, host_runs
from muster.transports.base import TransportOutcome

HOSTS_PER_EXECUTION = 100
BATCH = 64


class NoopTransport:
    async def run_plan(self, host: Any, plan: Any, sink: Any) -> TransportOutcome:
        return TransportOutcome(HostRunState.SUCCEEDED, exit_code=0)

    async def close(self) -> None:
        return None


# -- child processes ------------------------------------------------------------


def _muster_child(url: str, wid: str, ready: Any, go: Any, stop: Any) -> None:
    from muster.worker import Worker

    store = SqlStore(make_engine(url), vault=Vault(b"k" * 32))
    worker = Worker(
        store,
        {TransportKind.LOCAL: NoopTransport()},
        worker_id=wid,
        concurrency=BATCH,
        lease_seconds=60,
        heartbeat_seconds=20,
        poll_seconds=0.05,
    )

    async def main() -> None:
        ready.set()
        await asyncio.to_thread(go.wait)
        task = asyncio.create_task(worker.run())
        await asyncio.to_thread(stop.wait)
        await worker.stop(grace=5)
        await task

    asyncio.run(main())


def _raw_child(url: str, wid: str, ready: Any, go: Any, stop: Any) -> None:
    claim = (
        "UPDATE host_runs SET state='running', owner=%(w)s, epoch=epoch+1, claimed_at=%(now)s,"
        " lease_expires_at=%(now)s WHERE id IN (SELECT id FROM host_runs WHERE state='queued'"
        " ORDER BY priority DESC, queued_at, id LIMIT %(n)s{lock}) RETURNING id, epoch"
    )
    finish = (
        "UPDATE host_runs SET state='succeeded', finished_at=%(now)s, exit_code=0"
        " WHERE id=%(id)s AND state='running' AND owner=%(w)s AND epoch=%(e)s"
    )
    if url.startswith("sqlite"):
        conn: Any = sqlite3.connect(url.split("///", 1)[1], isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        to_q = lambda sql: sql.replace("%(", ":").replace(")s", "")  # noqa: E731
        claim_sql, finish_sql = to_q(claim.format(lock="")), to_q(finish)
        begin = "BEGIN IMMEDIATE"
    else:
        import psycopg

        conn = psycopg.connect(_libpq(url), autocommit=True)
        claim_sql, finish_sql = claim.format(lock=" FOR UPDATE SKIP LOCKED"), finish
        begin = "BEGIN"
    ready.set()
    go.wait()
    while not stop.is_set():
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        conn.execute(begin)
        rows = conn.execute(claim_sql, {"w": wid, "now": now, "n": BATCH}).fetchall()
        conn.execute("COMMIT")
        if not rows:
            stop.wait(0.05)
            continue
        for run_id, epoch in rows:
            conn.execute(begin)
            conn.execute(finish_sql, {"id": run_id, "w": wid, "e": epoch, "now": now})
            conn.execute("COMMIT")
    conn.close()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# -- the parent -----------------------------------------------------------------


def _queue_runs(store: SqlStore, n: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(delete(executions))
    host = store.list_hosts()[0]
    v = store.get_version("bench")
    left = n
    while left > 0:
        k = min(HOSTS_PER_EXECUTION, left)
        store.create_execution(
            NewExecution(
                kind=ExecutionKind.SCRIPT,
                targets=[HostTarget(host.id, host.name)] * k,
                timeout=60,
                script_id=v.script_id,
                script_version=v.number,
                content_hash=v.content_hash,
            )
        )
        left -= k


def _done(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(host_runs)
                .where(host_runs.c.state.in_([s.value for s in TERMINAL_STATES]))
            ).scalar_one()
        )


def measure(store: SqlStore, url: str, kind: str, workers: int, n: int) -> float:
    _queue_runs(store, n)
    ctx = mp.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    target = _muster_child if kind == "muster" else _raw_child
    procs, readies = [], []
    for i in range(workers):
        ready = ctx.Event()
        p = ctx.Process(target=target, args=(url, f"{kind}-{i}", ready, go, stop))
        p.start()
        procs.append(p)
        readies.append(ready)
    for r in readies:
        if not r.wait(60):
            raise RuntimeError("a worker process did not start")
    t0 = time.perf_counter()
    go.set()
    deadline = t0 + 300
    while _done(store) < n:
        if time.perf_counter() > deadline or not any(p.is_alive() for p in procs):
            stop.set()
            raise RuntimeError("benchmark did not finish (300 s, or every worker died)")
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    stop.set()
    for p in procs:
        p.join(30)
    return n / elapsed


def _prepare(url: str) -> SqlStore:
    engine = make_engine(url)
    upgrade(engine)
    store = SqlStore(engine, vault=Vault(b"k" * 32))
    if not store.list_hosts():
        store.create_host(Host(name="noop", transport=TransportKind.LOCAL))
    store.save_script(ScriptVersion(name="bench", shell="sh", body="true"))
    return store


def run_backend(name: str, url: str, n: int, results: list[tuple[str, int, float, float]]) -> None:
    store = _prepare(url)
    try:
        for workers in (1, 2):
            raw = measure(store, url, "raw", workers, n)
            ours = measure(store, url, "muster", workers, n)
            results.append((name, workers, ours, raw))
            print(
                f"{name:10s} workers={workers}  muster {ours:8.0f}/s   raw SQL {raw:8.0f}/s"
                f"   muster/raw {ours / raw:5.2f}",
                flush=True,
            )
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--postgres", default=os.environ.get("MUSTER_BENCH_POSTGRES_URL", ""))
    args = parser.parse_args()
    results: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        run_backend("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.runs, results)
    if args.postgres:
        base = normalise_database_url(args.postgres)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in base else "?"
        try:
            run_backend(
                "postgresql", f"{base}{sep}options=-csearch_path%3D{schema}", args.runs, results
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    else:
        print("postgresql: skipped (set MUSTER_BENCH_POSTGRES_URL or --postgres)")
    goals = {"sqlite": 500, "postgresql": 1000}
    ok = True
    for name, workers, ours, _ in results:
        if workers == 2:
            met = ours >= goals[name]
            ok &= met
            print(f"goal {name} 2 workers >= {goals[name]}/s: {'met' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Workflow benchmark, part 2 (issue 13): no-op tasks through the durable engine.

On SQLite and PostgreSQL, in one run:

* ``workflow``: one instance of N no-op command steps (layers of ``--width``
  steps, each depending on one step of the layer before) driven by the
  server's :class:`~muster.services.workflow_driver.WorkflowDriver` (state
  machine, per-host rendering, one transaction per pass, dispatched
  executions) and run by a real :class:`~muster.worker.Worker` with a no-op
  transport (claims, leases, CAS, output, finish): tasks/s from start to the
  instance's end;
* ``raw``: the queue's raw-SQL floor from ``bench/queue_claims.py`` (one claim
  statement per batch, one committed UPDATE per finished run) over N host
  runs on the same database, measured in the same run.

The ratio says what a workflow task costs beyond the least a durable queue can do.

    uv run python bench/workflow_queue.py --tasks 10000
    MUSTER_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        uv run python bench/workflow_queue.py --tasks 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import create_engine, text

import queue_claims
from muster.config import normalise_database_url
from muster.domain.hosts import TransportKind
from muster.domain.workflows import InstanceState, parse_workflow
from muster.security.rbac import Permission
from muster.services.approvals import Approvals
from muster.services.workflow_driver import WorkflowDriver
from muster.store.sqlalchemy_store import SqlStore


def definition(tasks: int, width: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for i in range(tasks):
        layer, pos = divmod(i, width)
        step: dict[str, Any] = {"id": f"t{i}", "command": "true", "targets": "noop"}
        if layer:
            step["depends_on"] = [f"t{(layer - 1) * width + pos}"]
        steps.append(step)
    return {"name": f"bench-{uuid.uuid4().hex[:6]}", "steps": steps}


async def _run_workflow(store: SqlStore, tasks: int, width: int) -> float:
    from muster.worker import Worker

    workflow = parse_workflow(definition(tasks, width))
    record, _ = store.save_workflow(workflow)
    approvals = Approvals(
        store, book=store, rules=store, users=store, audit=store, clock=store.clock
    )
    driver = WorkflowDriver(store, approvals, interval=0.02, poll=0.02, batch=10)
    worker = Worker(
        store,
        {TransportKind.LOCAL: queue_claims.NoopTransport()},
        worker_id="bench-worker",
        concurrency=queue_claims.BATCH,
        lease_seconds=60,
        heartbeat_seconds=20,
        poll_seconds=0.02,
    )
    actor = {"name": "bench", "roles": ["admin"], "permissions": [p.value for p in Permission]}
    work = asyncio.create_task(worker.run())
    t0 = time.perf_counter()
    inst = store.create_instance(
        record,
        InstanceState.new([s.id for s in workflow.steps]),
        params={},
        created_by="bench",
        context={"actor": actor, "pins": {}},
    )
    driver.start()
    try:
        while True:
            status = await asyncio.to_thread(lambda: store.get_instance(inst.id).status)
            if status.terminal:
                break
            if time.perf_counter() - t0 > 1800:
                raise RuntimeError("the workflow did not finish in 30 minutes")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        if status.value != "succeeded":
            raise RuntimeError(f"the benchmark instance ended {status.value}")
    finally:
        await driver.stop()
        await worker.stop(grace=5)
        await work
    return tasks / elapsed


def run_backend(name: str, url: str, tasks: int, width: int) -> dict[str, Any]:
    store = queue_claims._prepare(url)
    try:
        raw = queue_claims.measure(store, url, "raw", 1, tasks)
        ours = asyncio.run(_run_workflow(store, tasks, width))
    finally:
        store.close()
    print(
        f"{name:10s} tasks={tasks}  workflow {ours:8.0f} tasks/s   raw SQL {raw:8.0f} runs/s"
        f"   workflow/raw {ours / raw:5.2f}",
        flush=True,
    )
    return {"backend": name, "tasks": tasks, "workflow_per_s": ours, "raw_per_s": raw}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=100, help="steps per layer")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run_backend("sqlite", f"sqlite:///{tmp}/bench.db", args.tasks, args.width))
    pg = os.environ.get("MUSTER_BENCH_POSTGRES_URL") or os.environ.get("MUSTER_TEST_POSTGRES_URL")
    if pg:
        base = normalise_database_url(pg)
        db = f"wfbench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        try:
            results.append(
                run_backend("postgresql", base.rsplit("/", 1)[0] + f"/{db}", args.tasks, args.width)
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin.dispose()
    else:
        print("postgresql: skipped (set MUSTER_BENCH_POSTGRES_URL)")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

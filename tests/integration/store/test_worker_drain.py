"""Drain one of two real worker processes: it stops claiming, the other carries on.

Two ``python -m muster.worker`` processes (A and B) share one database and
one execution of many short host runs. A drain written to the store for A
(as the API and the console write it) reaches A through its own heartbeat:
A finishes what it holds, reports ``draining`` then ``drained``, and claims
nothing more while B keeps running the execution's remaining host runs.
Resume clears the flag and A claims again. SIGTERM ends both cleanly and
both are recorded ``stopped``. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from muster.domain.scripts import ScriptVersion
from muster.domain.states import ExecutionStatus, HostRunState
from muster.domain.workers import WorkerState
from muster.store._core import utcnow
from muster.store.base import ExecutionKind, NewExecution
from muster.store.sqlalchemy_store import SqlStore

from .conftest import make_hosts
from .waiting import wait_until

N = 60
LEASE = 3.0
W = WorkerState


def _spawn(worker_id: str, url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MUSTER_DATABASE_URL": url,
        "MUSTER_DATA_DIR": str(data_dir),
        "MUSTER_LEASE_SECONDS": str(LEASE),
        "MUSTER_HEARTBEAT_SECONDS": "0.3",
        "MUSTER_SHUTDOWN_GRACE": "5",
    }
    log = open(data_dir / f"{worker_id}.log", "wb")  # noqa: SIM115 - lives with the process
    return subprocess.Popen(
        [sys.executable, "-m", "muster.worker", "--id", worker_id, "--concurrency", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _owned(store: SqlStore, execution_id: str, owner: str) -> set[str]:
    runs = store.get_execution(execution_id, history=True).host_runs
    return {r.id for r in runs if r.owner == owner}


def _finished_by(store: SqlStore, execution_id: str, owner: str) -> int:
    runs = store.get_execution(execution_id).host_runs
    return sum(1 for r in runs if r.owner == owner and r.state is HostRunState.SUCCEEDED)


async def test_a_drained_worker_stops_claiming_while_the_other_runs_the_rest(
    store: SqlStore, db_url: str, tmp_path: Path
) -> None:
    store.clock = utcnow  # the workers write real times; read them against real time
    saved = store.save_script(
        ScriptVersion(name="short", shell="bash", body="sleep 0.3\necho ok\n", timeout=60)
    )
    v = saved.version
    ex = store.create_execution(
        NewExecution(
            kind=ExecutionKind.SCRIPT,
            targets=make_hosts(store, N),
            timeout=60,
            script_id=v.script_id,
            script_version=v.number,
            content_hash=v.content_hash,
        )
    )
    a = _spawn("A", db_url, tmp_path)
    b = _spawn("B", db_url, tmp_path)
    try:
        await wait_until(
            store,
            ex.id,
            lambda: _finished_by(store, ex.id, "A") >= 2 and _finished_by(store, ex.id, "B") >= 2,
            timeout=60,
            what="both workers to run host runs",
        )
        assert {r.id: r.state for r in store.list_workers()} == {"A": W.RUNNING, "B": W.RUNNING}
        asked = store.request_drain("A", by="test")
        assert asked.drain_requested and asked.state is W.RUNNING

        drained = await wait_until(
            store,
            ex.id,
            lambda: (r := store.get_worker("A")).state is W.DRAINED and r,
            timeout=30,
            what="A to finish what it held and report drained",
        )
        assert drained.runs_held == 0 and drained.observed(utcnow()) is W.DRAINED
        a_runs = _owned(store, ex.id, "A")
        b_done = _finished_by(store, ex.id, "B")
        # B keeps running the execution's remaining host runs; A takes none of them.
        await wait_until(
            store,
            ex.id,
            lambda: _finished_by(store, ex.id, "B") >= b_done + 6,
            timeout=60,
            what="B to run six more host runs",
        )
        assert _owned(store, ex.id, "A") == a_runs, "a drained worker claimed a run"
        assert a.poll() is None, "draining must not stop the process"
        assert store.get_worker("A").state is W.DRAINED
        assert store.get_execution(ex.id).counts["queued"] > 0, "too few runs left to resume"

        store.request_resume("A", by="test")
        await wait_until(
            store,
            ex.id,
            lambda: _owned(store, ex.id, "A") - a_runs,
            timeout=30,
            what="A to claim again after resume",
        )
        assert store.get_worker("A").state is W.RUNNING
        rec = await wait_until(
            store,
            ex.id,
            lambda: (e := store.get_execution(ex.id)).status.terminal and e,
            timeout=120,
            what="the execution to end",
        )
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
    assert rec.status is ExecutionStatus.SUCCEEDED
    assert {r.owner for r in rec.host_runs} == {"A", "B"}
    stopped = {r.id: r for r in store.list_workers()}
    assert {i: r.state for i, r in stopped.items()} == {"A": W.STOPPED, "B": W.STOPPED}
    assert all(r.stopped_at is not None and r.runs_held == 0 for r in stopped.values())
    print(
        f"\ndrain: A ran {len(_owned(store, ex.id, 'A'))} runs ({len(a_runs)} before the "
        f"drain), B ran {len(_owned(store, ex.id, 'B'))}"
    )

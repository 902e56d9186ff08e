"""kill -9 a worker process with 200 host runs in flight: nothing is lost or run twice.

Worker A (a real ``python -m muster.worker`` process) claims all 200 runs,
and is SIGKILLed. Worker B starts beside it. Once A's leases expire, B's
reaper settles A's runs: unstarted ones go back to the queue and B runs
them; started ones end ``lost`` (and, for an idempotent script, are queued
again as attempt 2, which B runs). Every run's script appends start and end
lines with its run id to one log; the log proves that no run id executed
twice and that no host ran two attempts at the same time.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest

from muster.domain.scripts import ScriptVersion
from muster.domain.states import TERMINAL_STATES, HostRunState
from muster.store.base import ExecutionKind, NewExecution

from .conftest import make_hosts
from .waiting import wait_until

N = 200
LEASE = 5.0  # generous: under coverage a busy worker may miss a few 0.5 s beats
S = HostRunState


def _spawn(worker_id: str, url: str, data_dir: Path, key: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MUSTER_DATABASE_URL": url,
        "MUSTER_DATA_DIR": str(data_dir),
        "MUSTER_SECRET_KEY": key,
        "MUSTER_LEASE_SECONDS": str(LEASE),
        "MUSTER_HEARTBEAT_SECONDS": "0.5",
        "MUSTER_SHUTDOWN_GRACE": "5",
    }
    log = open(data_dir / f"{worker_id}.log", "wb")  # noqa: SIM115 - lives with the process
    return subprocess.Popen(
        [sys.executable, "-m", "muster.worker", "--id", worker_id, "--concurrency", str(N)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _row(r: object) -> tuple[object, ...]:
    """What a failure message shows of a host run that did not end as expected."""
    return tuple(
        getattr(r, f) for f in ("host_name", "attempt", "state", "reason", "owner", "message")
    )


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-6000:] if log.exists() else f"(no {log})"


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
async def test_sigkill_mid_flight_loses_nothing_and_runs_nothing_twice(
    store, db_url, tmp_path, idempotent
):
    import base64

    from muster.security.vault import Vault

    key_bytes = os.urandom(32)
    key = base64.urlsafe_b64encode(key_bytes).decode()
    store.vault = Vault(key_bytes)
    store.clock = __import__("muster.store._core", fromlist=["utcnow"]).utcnow
    # A worker runs local plans as an unprivileged account (MUSTER_LOCAL_RUN_AS,
    # default nobody), which cannot write into pytest's private tmp_path.
    shared = Path(tempfile.mkdtemp(prefix="muster-crash-"))
    shared.chmod(0o1777)
    runlog = shared / "runs.log"
    body = (
        f'echo "start $MUSTER_RUN_ID $(date +%s.%N)" >> {runlog}\n'
        "sleep 1.5\n"
        f'echo "end $MUSTER_RUN_ID $(date +%s.%N)" >> {runlog}\n'
    )
    saved = store.save_script(
        ScriptVersion(name="crash", shell="bash", body=body, timeout=60, idempotent=idempotent)
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
            idempotent=idempotent,
        )
    )
    a = _spawn("A", db_url, tmp_path, key)
    b = None
    try:
        await wait_until(
            store,
            ex.id,
            lambda: store.get_execution(ex.id).counts["running"] == N,
            timeout=60,
            what="worker A to hold all 200 runs",
        )
        started_before_kill = sum(
            1 for r in store.get_execution(ex.id).host_runs if r.started_at is not None
        )
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        b = _spawn("B", db_url, tmp_path, key)
        rec = await wait_until(
            store,
            ex.id,
            lambda: (e := store.get_execution(ex.id)).status.terminal and e,
            timeout=120,
            what="every host run to end",
        )
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)

    history = store.get_execution(ex.id, history=True).host_runs
    assert all(r.state in TERMINAL_STATES for r in history)
    current = rec.host_runs
    assert len(current) == N and len({r.host_name for r in current}) == N
    lost = [r for r in history if r.state is S.LOST]
    odd = [_row(r) for r in history if r.state is not S.SUCCEEDED and r.owner != "A"]
    if odd or any(r.reason != "worker_lost" for r in lost):
        print(_tail(tmp_path / "B.log"))
    assert all(r.reason == "worker_lost" and r.owner == "A" for r in lost), odd
    if idempotent:
        unfinished = [_row(r) for r in current if r.state is not S.SUCCEEDED]
        assert not unfinished, unfinished
        assert {r.retry_of for r in current if r.attempt == 2} == {r.id for r in lost}
    else:
        assert {r.state for r in current} <= {S.SUCCEEDED, S.LOST}
        assert all(r.attempt == 1 for r in current)
    # Runs requeued from A were finished by B.
    assert all(r.owner == "B" for r in current if r.state is S.SUCCEEDED)
    assert all(r.started_at is not None for r in lost)  # only started runs are lost
    print(
        f"\ncrash: {started_before_kill} started before the kill, {len(lost)} lost, "
        f"{N - len(lost)} finished by B"
    )

    # The log: each run id started at most once; per host, attempts never overlap.
    # Killed runs' scripts keep going (their own process groups) and end by themselves.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = runlog.read_text().splitlines()
        starts = [ln for ln in lines if ln.startswith("start")]
        ends = [ln for ln in lines if ln.startswith("end")]
        if len(ends) == len(starts):
            break
        await asyncio.sleep(0.1)  # the orphaned scripts are not ours to wait on
    spans: dict[str, list[float]] = defaultdict(list)
    starts_per_run: dict[str, int] = defaultdict(int)
    for line in lines:
        kind, run_id, at = line.split()
        spans[run_id].append(float(at))
        starts_per_run[run_id] += kind == "start"
    assert all(n == 1 for n in starts_per_run.values()), "a run id executed twice"
    by_id = {r.id: r for r in history}
    per_host: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for run_id, times in spans.items():
        per_host[by_id[run_id].host_name].append((min(times), max(times)))
    for host, intervals in per_host.items():
        intervals.sort()
        for (_, end1), (start2, _) in itertools.pairwise(intervals):
            assert end1 <= start2, f"{host} ran two attempts at once"
    succeeded = {r.id for r in history if r.state is S.SUCCEEDED}
    assert succeeded <= set(spans)  # every success really ran

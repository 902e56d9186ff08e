"""Server-side throttling across worker processes, on PostgreSQL.

Two ``muster worker`` processes (the embedded one drained) share one
execution of 60 simulated SSH hosts started with ``forks=5, per_group=2``;
the stored start and finish times must never show more than 5 hosts (or more
than 2 of one group) running at once. A ``delay`` spaces the starts.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from muster.app import SshOptions, default_transports
from muster.server.embedded import embedded_worker_factory
from muster.testing.simfleet import SimFleet
from tests.integration.server.harness import (
    LiveServer,
    fresh_postgres,
    pg_base_url,
    server_settings,
)
from tests.integration.server.helpers import save_script, wait_terminal

MUSTER = str(Path(sys.executable).parent / "muster")
GROUPS = ("web", "db", "cache")
SKIP = "MUSTER_TEST_POSTGRES_URL is not set: multi-worker throttling needs PostgreSQL"


@pytest.fixture(scope="module")
def fleet60() -> Iterator[SimFleet]:
    sim = SimFleet(60, base_address="127.78.0.1", groups=GROUPS).start_in_thread()
    try:
        yield sim
    finally:
        sim.stop_thread()


@pytest.fixture
def pg_server(tmp_path: Path, fleet60: SimFleet) -> Iterator[LiveServer]:
    if pg_base_url() is None:
        print(SKIP)
        pytest.skip(SKIP)
    transports = default_transports(
        SshOptions(
            known_hosts=str(fleet60.known_hosts_path),
            client_keys=(str(fleet60.client_key_path),),
        )
    )
    with fresh_postgres() as url:
        live = LiveServer(
            server_settings(tmp_path / "data", url),
            worker_factory=embedded_worker_factory(transports),
        ).start()
        try:
            yield live
        finally:
            live.stop()


def _workers(server: LiveServer, fleet: SimFleet, tmp_path: Path) -> list[subprocess.Popen[bytes]]:
    s = server.settings
    env = {
        **os.environ,
        "MUSTER_DATA_DIR": str(s.data_dir),
        "MUSTER_DATABASE_URL": s.database_url,
        "MUSTER_SSH_KNOWN_HOSTS": str(fleet.known_hosts_path),
        "MUSTER_SSH_CLIENT_KEYS": f'["{fleet.client_key_path}"]',
        # 2 x 3 slots: more than forks=5, and neither worker can reach 5 alone.
        "MUSTER_WORKER_CONCURRENCY": "3",
    }
    procs = []
    for i in range(2):
        out = (tmp_path / f"worker-{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [MUSTER, "worker", "--id", f"throttle-{i}"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def _register(api: httpx.Client, fleet: SimFleet) -> None:
    for h in fleet.hosts():
        r = api.post(
            "/api/v1/hosts",
            json={
                "name": h.name,
                "address": h.address,
                "port": h.port,
                "user": "root",
                "transport": "ssh",
                "groups": list(h.groups),
            },
        )
        assert r.status_code == 201, r.text


def _t(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _max_overlap(runs: list[dict[str, Any]]) -> int:
    edges: list[tuple[dt.datetime, int]] = []
    for r in runs:
        edges.append((_t(r["started_at"]), 1))
        edges.append((_t(r["finished_at"]), -1))
    # At equal times a finish frees its slot before a start takes one.
    edges.sort(key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_two_workers_keep_forks_and_per_group(
    pg_server: LiveServer, fleet60: SimFleet, tmp_path: Path
) -> None:
    api = pg_server.client()
    assert api.post("/api/v1/workers/drain").json()["draining"] is True
    _register(api, fleet60)
    procs = _workers(pg_server, fleet60, tmp_path)
    try:
        script = save_script(api, name="slow", body="sleep 0.3; echo done\n")
        r = api.post(
            f"/api/v1/automation/scripts/{script['id']}/execute",
            json={"host_ids": ["*"], "forks": 5, "per_group": 2},
        )
        assert r.status_code == 201, r.text
        assert r.json()["throttle"] == {"forks": 5, "per_group": 2, "delay": 0.0}
        try:
            done = wait_terminal(api, r.json()["id"], timeout=180)
        finally:
            logs = [(tmp_path / f"worker-{i}.log").read_text()[-3000:] for i in range(2)]
            print("\n".join(logs))
        assert done["status"] == "succeeded", (done["counts"], logs)
        runs = done["hosts"]
        assert len(runs) == 60
        assert _max_overlap(runs) <= 5
        group_of = {h.name: h.groups[0] for h in fleet60.hosts()}
        for g in GROUPS:
            assert _max_overlap([r for r in runs if group_of[r["host"]] == g]) <= 2, g
        # Both worker processes took part: the limit held across processes, not in one.
        stored = pg_server.ctx.store.get_execution(done["id"]).host_runs
        assert {r.owner for r in stored} == {"throttle-0", "throttle-1"}

        r = api.post(
            f"/api/v1/automation/scripts/{script['id']}/execute",
            json={"host_ids": ["web"], "delay_between_servers": "1s"},
        )
        assert r.status_code == 201, r.text
        done = wait_terminal(api, r.json()["id"], timeout=180)
        assert done["status"] == "succeeded"
        starts = sorted(_t(h["started_at"]) for h in done["hosts"])
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
        # Claims are spaced by exactly 1 s of database time; starts follow claims closely.
        assert min(gaps) >= 0.8, gaps
    finally:
        _stop(procs)

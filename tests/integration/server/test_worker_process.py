"""``muster worker``: an extra worker process on the server's database does the work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.integration.server.harness import LiveServer
from tests.integration.server.helpers import save_script, wait_terminal

MUSTER = str(Path(sys.executable).parent / "muster")


def test_extra_worker_runs_queued_work_and_stops_on_sigterm(
    server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    assert api.post("/api/v1/workers/drain").json()["draining"] is True
    s = server.settings
    env = {
        **os.environ,
        "MUSTER_DATA_DIR": str(s.data_dir),
        "MUSTER_DATABASE_URL": s.database_url,
        "MUSTER_LEASE_SECONDS": "4",
        "MUSTER_HEARTBEAT_SECONDS": "1",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [MUSTER, "worker", "--id", "extra-1"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        script = save_script(api, name="w", body="echo from-worker-process\n")
        eid = api.post(
            f"/api/v1/automation/scripts/{script['id']}/execute",
            json={"host_ids": ["localhost"]},
        ).json()["id"]
        done = wait_terminal(api, eid, timeout=60)
        assert done["status"] == "succeeded", (done, log.read_text())
        assert done["hosts"][0]["stdout_tail"] == "from-worker-process\n"
        # The drained embedded worker did none of it.
        assert api.get("/api/v1/workers").json()["items"][0]["completed"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
        assert "worker extra-1 stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

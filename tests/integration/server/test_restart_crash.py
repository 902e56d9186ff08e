"""Crash: ``kill -9`` a running ``muster serve`` mid-execution, restart it.

Nothing already stored is lost, and every host run ends in a terminal state
within a lease period of the restart (the one that had started ends ``lost``,
a truthful record; queued work runs on the new worker). ``serve`` registers no
host for its own machine, so the runs go to a simulated SSH host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from muster.config import Settings
from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import admin_token_for, free_port, wait_for
from tests.integration.server.helpers import TERMINAL, save_script, wait_terminal

LEASE = 3.0
MUSTER = str(Path(sys.executable).parent / "muster")


class ServeProcess:
    def __init__(self, data_dir: Path, database_url: str, fleet: SimFleet) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "MUSTER_DATA_DIR": str(data_dir),
            "MUSTER_DATABASE_URL": database_url,
            "MUSTER_LEASE_SECONDS": str(LEASE),
            "MUSTER_HEARTBEAT_SECONDS": "1",
            "MUSTER_SSH_KNOWN_HOSTS": str(fleet.known_hosts_path),
        }
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [MUSTER, "serve", "--port", str(self.port), "--log-level", "warning"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def healthy() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
            return False

        wait_for(healthy, timeout=60, interval=0.1, what="muster serve to answer /health")
        settings = Settings(
            data_dir=self.env["MUSTER_DATA_DIR"], database_url=self.env["MUSTER_DATABASE_URL"]
        )
        self.headers = {"Authorization": f"Bearer {admin_token_for(settings)}"}
        return self

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers=self.headers)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise
        return int(self.proc.returncode)


@pytest.fixture
def serve_factory(tmp_path: Path, database_url: str) -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for p in started:
        with contextlib.suppress(Exception):
            if p.proc is not None and p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(10)


def test_kill9_and_restart_loses_nothing(
    serve_factory: list[ServeProcess], tmp_path: Path, database_url: str, fleet: SimFleet
) -> None:
    data = tmp_path / "data"
    pid_file = tmp_path / "long.pid"
    first = ServeProcess(data, database_url, fleet).start()
    serve_factory.append(first)
    api = first.client()
    assert api.get("/api/v1/hosts").json()["total"] == 0  # not even the server's own machine
    host = register_fleet(api, fleet)[0]
    quick = save_script(api, name="quick", body="echo stored-before-crash\n")
    done = api.post(
        f"/api/v1/automation/scripts/{quick['id']}/execute", json={"host_ids": [host]}
    ).json()
    assert wait_terminal(api, done["id"])["status"] == "succeeded"
    long = save_script(api, name="long", body=f"echo $$ > {pid_file}\necho begun\nsleep 60\n")
    running = api.post(
        f"/api/v1/automation/scripts/{long['id']}/execute", json={"host_ids": [host]}
    ).json()

    def begun() -> bool:
        data = api.get(f"/api/v1/automation/executions/{running['id']}").json()
        return "begun" in data["hosts"][0]["stdout_tail"]

    wait_for(begun, timeout=30, what="the long run to start")
    before = {
        "scripts": api.get("/api/v1/automation/scripts").json(),
        "quick": api.get(f"/api/v1/automation/executions/{done['id']}").json(),
        "log": api.get(f"/api/v1/automation/executions/{done['id']}/hosts/{host}/log").text,
    }
    api.close()

    first.kill9()
    try:
        second = ServeProcess(data, database_url, fleet).start()
        restart_at = time.monotonic()
        serve_factory.append(second)
        api = second.client()
        assert api.get("/api/v1/automation/scripts").json() == before["scripts"]
        assert api.get(f"/api/v1/automation/executions/{done['id']}").json() == before["quick"]
        log = api.get(f"/api/v1/automation/executions/{done['id']}/hosts/{host}/log").text
        assert log == before["log"] == "stored-before-crash\n"

        def ended() -> dict | None:
            data = api.get(f"/api/v1/automation/executions/{running['id']}").json()
            return data if data["status"] in TERMINAL else None

        # A lease period, plus one reaper pass and scheduling slack on a busy machine.
        bound = LEASE + 5
        final = wait_for(ended, timeout=bound, interval=0.1, what="the orphaned run")
        assert time.monotonic() - restart_at < bound
        run = final["hosts"][-1]
        assert run["state"] == "lost", final
        assert run["reason"] == "worker_lost" and run["message"]
        assert "begun" in run["stdout_tail"]  # output stored before the crash is kept
        # The new server works: the same script runs again to the end.
        again = api.post(
            f"/api/v1/automation/scripts/{quick['id']}/execute", json={"host_ids": [host]}
        ).json()
        assert wait_terminal(api, again["id"])["status"] == "succeeded"
        api.close()
        assert second.terminate() == 0
        assert "muster stopped" in second.log.read_text()
    finally:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text().strip()), signal.SIGKILL)

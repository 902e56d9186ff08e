"""The server face of workflows over real OpenSSH sshd hosts, with ``muster serve`` run
as a process.

* Seed 004's graph (examples/workflows/os_patching.yaml) pushed and started on the
  server gives the same per-host results (state, exit code, output) as
  ``muster.Engine(...).execute`` on the same 20 hosts.
* ``kill -9`` of the server mid-workflow (a step done, one running, one waiting
  on approval): after a restart the instance finishes correctly, no finished
  step ran twice, the running step ends ``lost`` (its script is not marked
  idempotent) and follows its failure route, and the approval request is the
  same one, still pending, and decides the gate when voted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import muster
from muster.config import Settings
from muster.domain.hosts import Host
from muster.store.sqlalchemy_store import open_store
from tests.fleet.sshd import SshdServer
from tests.integration.server.harness import free_port, issue_token, wait_for
from tests.integration.workflows.test_workflow_ssh import REPO, auth, fleet

__all__ = ["auth", "fleet"]  # the 20-host sshd fleet of test_workflow_ssh, shared

pytestmark = pytest.mark.timeout(240)

MUSTER = str(Path(sys.executable).parent / "muster")
WF = "/api/v1/automation/workflows"
INST = "/api/v1/automation/workflow-instances"
LEASE = 3.0


class Serve:
    """``muster serve`` in its own process, on a data directory that outlives it."""

    def __init__(self, data: Path, known_hosts: Path) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "MUSTER_DATA_DIR": str(data),
            "MUSTER_DATABASE_URL": "",
            "MUSTER_LEASE_SECONDS": str(LEASE),
            "MUSTER_HEARTBEAT_SECONDS": "1",
            "MUSTER_SSH_KNOWN_HOSTS": str(known_hosts),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"serve-{self.port}.log"

    def start(self) -> Serve:
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

        wait_for(healthy, timeout=60, interval=0.1, what="muster serve")
        return self

    def token(self, user: str, roles: list[str]) -> str:
        store = open_store(
            Settings(data_dir=str(self.data), database_url=""), open_vault=False, listen=False
        )
        try:
            return issue_token(store, user, roles)
        finally:
            store.close()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _known_hosts(servers: list[SshdServer], where: Path) -> Path:
    path = where / "known_hosts"
    path.write_text("".join(s.known_hosts_lines() for s in servers))
    return path


def _register(api: httpx.Client, hosts: list[Host], key: Path) -> None:
    for h in hosts:
        resp = api.post(
            "/api/v1/hosts",
            json={
                "name": h.name,
                "address": h.address,
                "port": h.port,
                "user": "root",
                "groups": list(h.groups),
                "shells": list(h.shells),
                "key_file": str(key),
            },
        )
        assert resp.status_code == 201, resp.text


def _instance(api: httpx.Client, iid: str) -> dict[str, Any]:
    resp = api.get(f"{INST}/{iid}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _steps(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in data["steps"]}


@pytest.fixture
def serve(tmp_path: Path, fleet: tuple[list[SshdServer], list[Host]]) -> Any:
    servers, _ = fleet
    known = _known_hosts(servers, tmp_path)
    started: list[Serve] = []

    def make() -> Serve:
        s = Serve(tmp_path / "data", known).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def test_seed_004_on_the_server_matches_the_in_process_engine(
    serve: Any, fleet: tuple[list[SshdServer], list[Host]], auth: muster.SSHAuth
) -> None:
    servers, hosts = fleet
    text = (REPO / "examples" / "workflows" / "os_patching.yaml").read_text()
    local = muster.Engine(hosts, auth).execute(text)
    assert local.status == "succeeded"

    server = serve()
    with server.client(server.token("ops", ["admin"])) as api:
        _register(api, hosts, servers[0].client_key)
        assert api.post(WF, json={"source": text}).status_code == 201
        started = api.post(f"{WF}/os_patching/start", json={})
        assert started.status_code == 201, started.text
        iid = started.json()["id"]
        data = wait_for(
            lambda: (d := _instance(api, iid))["status"] in ("succeeded", "failed") and d,
            timeout=120,
            interval=0.2,
            what="the instance to end",
        )
    assert data["status"] == local.status
    remote = {
        sid: {h["host"]: (h["state"], h["exit_code"], h["stdout"]) for h in s["hosts"]}
        for sid, s in _steps(data).items()
    }
    expected = {
        sid: {h: (o.state, o.exit_code, o.stdout) for h, o in r.hosts.items()}
        for sid, r in local.task_results.items()
    }
    assert remote == expected
    assert len(remote["backup"]) == 20 and len(remote["verify_web"]) == 8


CRASH = """
name: crash
targets: [web]
steps:
  - id: done1
    command: echo run >> {marks}/done1.log
  - id: long
    depends_on: [done1]
    command: echo run >> {marks}/long.log; echo begun; sleep 30
    on_failure: cleanup
  - id: cleanup
    command: echo run >> {marks}/cleanup.log
  - id: gate
    approval: {{approvers: ["user:alice"], policy: one_of_many}}
  - id: final
    depends_on: [gate]
    command: echo run >> {marks}/final.log
"""


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_kill9_mid_workflow_then_restart(
    serve: Any, fleet: tuple[list[SshdServer], list[Host]], tmp_path: Path
) -> None:
    servers, all_hosts = fleet
    hosts = [h for h in all_hosts if h.name in ("web1", "web2", "web3")]
    marks = tmp_path / "marks"
    marks.mkdir()
    first = serve()
    admin = first.token("ops", ["admin"])
    alice = first.token("alice", ["approver"])
    with first.client(admin) as api:
        _register(api, hosts, servers[0].client_key)
        body = {"source": CRASH.format(marks=marks)}
        assert api.post(WF, json=body).status_code == 201
        iid = api.post(f"{WF}/crash/start", json={}).json()["id"]

        def in_the_middle() -> dict[str, Any] | None:
            data = _instance(api, iid)
            steps = _steps(data)
            ready = (
                steps["done1"]["state"] == "succeeded"
                and steps["long"]["state"] == "running"
                and steps["gate"]["state"] == "waiting"
                and steps["gate"]["approval_id"]
                and _lines(marks / "long.log") == 3
            )
            return data if ready else None

        before = wait_for(in_the_middle, timeout=60, interval=0.1, what="the middle")
        approval_id = _steps(before)["gate"]["approval_id"]
    first.kill9()

    second = serve()
    with second.client(admin) as api:
        pending = api.get(f"/api/v1/automation/approvals/{approval_id}").json()
        assert pending["status"] == "pending"
        assert pending["workflow"] == {"instance_id": iid, "step": "gate"}

        # Within a lease (plus a reaper pass and slack) the running step is lost and
        # routed to its failure path; the gate still waits for its approval.
        def long_ended() -> dict[str, Any] | None:
            data = _instance(api, iid)
            steps = _steps(data)
            return data if steps["cleanup"]["state"] == "succeeded" else None

        after = wait_for(long_ended, timeout=LEASE + 30, interval=0.2, what="long to be lost")
        steps = _steps(after)
        assert steps["long"]["state"] == "lost"
        assert {h["state"] for h in steps["long"]["hosts"]} == {"lost"}
        assert steps["gate"]["state"] == "waiting"
        assert after["status"] == "waiting"
        assert _steps(after)["gate"]["approval_id"] == approval_id
    with second.client(alice) as voter:
        voted = voter.post(f"/api/v1/automation/approvals/{approval_id}/approve")
        assert voted.status_code == 200, voted.text
    with second.client(admin) as api:
        final = wait_for(
            lambda: (d := _instance(api, iid))["status"] in ("succeeded", "failed") and d,
            timeout=60,
            interval=0.2,
            what="the instance to end",
        )
    assert final["status"] == "succeeded", final
    assert {s: x["state"] for s, x in _steps(final).items()} == {
        "done1": "succeeded",
        "long": "lost",
        "cleanup": "succeeded",
        "gate": "succeeded",
        "final": "succeeded",
    }
    # No finished step ran twice; the lost one was not run again (not idempotent).
    assert _lines(marks / "done1.log") == 3
    assert _lines(marks / "long.log") == 3
    assert _lines(marks / "cleanup.log") == 3
    assert _lines(marks / "final.log") == 3

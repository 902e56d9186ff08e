"""A newcomer's first minute: ``muster demo``, run a sample script on the fleet, watch it live."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server.harness import free_port, wait_for
from tests.integration.server.sse_client import read_events

MUSTER = str(Path(sys.executable).parent / "muster")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [MUSTER, "demo", "--port", str(port), "--data-dir", str(tmp_path / "demo")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        return False

    try:
        wait_for(up, timeout=90, interval=0.1, what="muster demo")
        yield url, proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_demo_runs_a_script_on_the_fleet_with_live_output(
    demo: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, proc, log = demo
    banner = log.read_text()
    assert url in banner and "curl" in banner and "muster exec start" in banner
    # The banner gives the console login and a CLI token; without it the API says 401.
    assert re.search(r"user admin, one-time password \S+", banner), banner
    found = re.search(r"export MUSTER_TOKEN=(\S+)", banner)
    assert found, banner
    token = found.group(1)
    assert httpx.get(f"{url}/api/v1/hosts", timeout=10).status_code == 401
    api = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})
    hosts = api.get("/api/v1/hosts").json()["items"]
    sim = [h for h in hosts if h["transport"] == "ssh"]
    assert len(sim) == 20
    # the demo's own machine is no host: only an admin may add one (hosts.local)
    assert [h["name"] for h in hosts if h["transport"] == "local"] == []
    assert {g for h in sim for g in h["groups"]} == {"web", "db", "cache"}
    names = {s["name"] for s in api.get("/api/v1/automation/scripts").json()["items"]}
    assert {"disk-usage", "patch", "restart-service"} <= names

    started = api.post("/api/v1/automation/scripts/disk-usage/execute", json={"host_ids": ["web"]})
    assert started.status_code == 201, started.text
    execution = started.json()
    web = {h["host"] for h in execution["hosts"]}
    assert len(web) == 7
    outputs: set[str] = set()
    events: set[str] = set()
    end = None
    with api.stream(
        "GET", f"/api/v1/automation/executions/{execution['id']}/stream", timeout=60
    ) as resp:
        for ev in read_events(resp.iter_lines()):
            if ev.event == "output":
                outputs.add(ev.data["host"])
            elif ev.event == "event":
                assert "disk_used_pct" in ev.data["data"]
                events.add(ev.data["host"])
            elif ev.event == "end":
                end = ev.data
                break
    assert end is not None and end["status"] == "succeeded"
    assert outputs == web and events == web

    # The CLI path from the banner: export the URL and token, start, follow.
    env = {**os.environ, "MUSTER_URL": url, "MUSTER_TOKEN": token}
    cli = subprocess.run(
        [MUSTER, "exec", "start", "patch", "--hosts", "db-01,cache-02",
         "-p", "target_dir=/srv/app", "--follow"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "dry run: nothing changed" in cli.stdout
    assert "db-01" in cli.stdout and "cache-02" in cli.stdout
    status = subprocess.run(
        [MUSTER, "exec", "status", execution["id"], "--json"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert json.loads(status.stdout)["status"] == "succeeded"

    api.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0

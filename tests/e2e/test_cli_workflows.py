"""``muster workflow push|start|list|instances|status|kill`` and ``muster approval
list|approve`` as a user runs them against a live server (localhost registered)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli_kit import client_env
from tests.integration.server.harness import LiveServer, server_settings

MUSTER = str(Path(sys.executable).parent / "muster")

GATED = """name: cli-gated
targets: localhost
steps:
  - id: hello
    command: echo hello from the cli
  - id: gate
    depends_on: [hello]
    approval: {approvers: ["user:alice"]}
  - id: after
    depends_on: [gate]
    command: echo after the gate
"""


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    server = LiveServer(server_settings(tmp_path / "data"), localhost=True).start()
    env = client_env(server, tmp_path)
    try:
        yield server, env
    finally:
        server.stop()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MUSTER, *args], capture_output=True, text=True, timeout=120, env=env)


def _status(env: dict[str, str], iid: str) -> dict:
    done = run(env, "workflow", "status", iid, "--json")
    assert done.returncode in (0, 1), done.stderr
    return dict(json.loads(done.stdout))


def _until(env: dict[str, str], iid: str, check, what: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        data = _status(env, iid)
        if check(data):
            return data
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {data}"
        time.sleep(0.2)


def test_workflow_and_approval_commands(
    cli: tuple[LiveServer, dict[str, str]], tmp_path: Path
) -> None:
    server, env = cli
    path = tmp_path / "gated.yaml"
    path.write_text(GATED)
    pushed = run(env, "workflow", "push", str(path))
    assert pushed.returncode == 0, pushed.stderr
    assert "cli-gated v1 (new version)" in pushed.stdout
    assert "unchanged" in run(env, "workflow", "push", str(path)).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(GATED.replace("[hello]", "[nope]"))
    refused = run(env, "workflow", "push", str(bad))
    assert refused.returncode != 0 and "steps.gate.depends_on" in refused.stderr
    assert "cli-gated" in run(env, "workflow", "list").stdout

    started = run(env, "workflow", "start", "cli-gated", "--json")
    assert started.returncode == 0, started.stderr
    iid = json.loads(started.stdout)["id"]

    def gate_waits(d: dict) -> bool:
        return any(s["id"] == "gate" and s["state"] == "waiting" for s in d["steps"])

    _until(env, iid, gate_waits, "the gate")
    alice = server.issue_token("alice", ["approver"])
    as_alice = {**env, "MUSTER_TOKEN": alice}
    listed = run(as_alice, "approval", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"workflow instance {iid} step gate" in listed.stdout
    pending = json.loads(run(as_alice, "approval", "list", "--json").stdout)["items"]
    (request,) = [a for a in pending if (a.get("workflow") or {}).get("instance_id") == iid]
    voted = run(as_alice, "approval", "approve", request["id"], "--reason", "go")
    assert voted.returncode == 0, voted.stderr
    assert "approved" in voted.stdout
    final = _until(env, iid, lambda d: d["status"] in ("succeeded", "failed"), "the end")
    assert final["status"] == "succeeded"
    after = {s["id"]: s for s in final["steps"]}["after"]
    assert after["hosts"][0]["stdout"] == "after the gate\n"
    shown = run(env, "workflow", "status", iid)
    assert shown.returncode == 0 and "hello from the cli" in shown.stdout
    assert iid in run(env, "workflow", "instances", "--workflow", "cli-gated").stdout
    # Kill of an instance that ended is refused with the reason.
    killed = run(env, "workflow", "kill", iid)
    assert killed.returncode != 0 and "409" in killed.stderr

"""``muster workflow push|start|status|pause|resume|abort|rollback`` on a rollout run
by a live server (localhost registered): the CLI face of the durable rollout driver."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli_workflows import _status, _until, cli, run
from tests.integration.server.harness import LiveServer

__all__ = ["cli"]

ROLL = """name: cli-roll-{tag}
steps:
  - id: change
    targets: localhost
    command: echo changed; sleep {nap}
    rollback: echo undone
  - id: check
    depends_on: [change]
    targets: localhost
    command: exit {code}
rollout:
  waves: ["100%"]
  verification_tasks: [check]
  auto_rollback: false
"""


def _start(env: dict[str, str], tmp: Path, tag: str, nap: int, code: int) -> str:
    path = tmp / f"{tag}.yaml"
    path.write_text(ROLL.format(tag=tag, nap=nap, code=code))
    pushed = run(env, "workflow", "push", str(path))
    assert pushed.returncode == 0, pushed.stderr
    started = run(env, "workflow", "start", f"cli-roll-{tag}", "--json")
    assert started.returncode == 0, started.stderr
    data = json.loads(started.stdout)
    assert data["rollout"]["waves"][0]["hosts"] == ["localhost"]
    return str(data["id"])


def test_failed_rollout_rolled_back_on_request(
    cli: tuple[LiveServer, dict[str, str]], tmp_path: Path
) -> None:
    _, env = cli
    iid = _start(env, tmp_path, "fails", 0, 1)
    done = _until(env, iid, lambda d: d["status"] in ("succeeded", "failed"), "the stop")
    assert done["rollout"]["status"] == "failed" and done["rollout"]["rollback"] == {}
    asked = run(env, "workflow", "rollback", iid)
    assert asked.returncode == 0, asked.stderr
    rolled = _until(env, iid, lambda d: d["rollout"]["status"] == "rolled_back", "rollback")
    assert rolled["rollout"]["rollback"]["localhost"]["state"] == "rolled_back"
    shown = run(env, "workflow", "status", iid)
    assert "rolled_back" in shown.stdout and "rollback localhost: rolled_back" in shown.stdout
    again = run(env, "workflow", "rollback", iid)
    assert again.returncode != 0 and "409" in again.stderr


def test_pause_resume_and_abort(cli: tuple[LiveServer, dict[str, str]], tmp_path: Path) -> None:
    _, env = cli
    iid = _start(env, tmp_path, "slow", 4, 0)
    paused = run(env, "workflow", "pause", iid)
    assert paused.returncode == 0 and "paused" in paused.stdout, paused.stderr
    assert _status(env, iid)["rollout"]["status"] == "paused"
    resumed = run(env, "workflow", "resume", iid)
    assert resumed.returncode == 0, resumed.stderr
    assert _status(env, iid)["rollout"]["status"] == "running"
    aborted = run(env, "workflow", "abort", iid)
    assert aborted.returncode == 0, aborted.stderr
    final = _until(env, iid, lambda d: d["status"] == "killed", "the abort")
    assert final["rollout"]["status"] == "aborted" and final["rollout"]["rollback"] == {}

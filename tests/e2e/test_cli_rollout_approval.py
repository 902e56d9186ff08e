"""An approval step inside a rollout run by ``muster workflow run``: the operator
decides it once for the whole rollout, ahead (``--approve STEP``, ``--yes``) or at
a terminal prompt; with neither, the step is refused with a reason naming it.

Hosts are the example inventory's local hosts; each writes ``ran-HOST`` when its
command runs, so the test sees which hosts got past the approval.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli_rollout_terminal import Terminal
from tests.e2e.test_cli_run import MUSTER, REPO, muster
from tests.e2e.test_cli_run_waves import HOST, _until
from tests.e2e.test_cli_workflow_rollout import INVENTORY

pytestmark = pytest.mark.timeout(180)

ALL = {"web1_dc1", "web2_dc1", "web1_dc2", "web2_dc2", "db1_dc1", "db1_dc2"}
QUESTION = "Approve step ok (change the fleet)? [y/N] "


def _definition(tmp_path: Path) -> Path:
    path = tmp_path / "approval.yaml"
    path.write_text(
        "name: approved\n"
        "steps:\n"
        "  - {id: ok, type: approval, title: change the fleet, approvers: ['user:ops']}\n"
        f"  - {{id: change, targets: '*', depends_on: [ok],\n"
        f"      command: '{HOST}; touch {tmp_path}/ran-$h'}}\n"
        "rollout: {waves: [1, '100%']}\n"
    )
    return path


def _ran(tmp_path: Path) -> set[str]:
    return {p.name.removeprefix("ran-") for p in tmp_path.glob("ran-*")}


def test_without_a_terminal_or_a_flag_the_step_is_refused_by_name(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run(
        [*MUSTER, "workflow", "run", str(_definition(tmp_path)), "-i", str(INVENTORY), "--json"],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "failed"
    assert [w["status"] for w in doc["waves"]] == ["failed", "not_run"]
    detail = doc["waves"][0]["failed_hosts"]["web1.dc1"]["detail"]
    assert "approval step 'ok' needs the operator's decision" in detail
    assert "--approve ok or --yes" in detail
    assert _ran(tmp_path) == set()


@pytest.mark.parametrize("flag", [["--approve", "ok"], ["--yes"]])
def test_approved_ahead_every_wave_runs(tmp_path: Path, flag: list[str]) -> None:
    path = _definition(tmp_path)
    proc = muster("workflow", "run", str(path), "-i", str(INVENTORY), "--json", *flag)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "succeeded"
    assert _ran(tmp_path) == ALL


@pytest.mark.parametrize(("answer", "approved"), [("y", True), ("n", False)])
def test_on_a_terminal_the_operator_is_asked_once(
    tmp_path: Path, answer: str, approved: bool
) -> None:
    path = _definition(tmp_path)
    term = Terminal(["workflow", "run", str(path), "-i", str(INVENTORY), "--json"], tmp_path)
    try:
        _until(term.proc, lambda: term.said(QUESTION), "the question")
        assert _ran(tmp_path) == set()
        term.type(answer)
        term.proc.wait(timeout=120)
    finally:
        term.close()
    doc = json.loads(term.out.read_text())
    # One question for the rollout, not one per host or per wave.
    assert term.err.read_text().count("Approve step") == 1
    if approved:
        assert term.proc.returncode == 0 and doc["status"] == "succeeded"
        assert _ran(tmp_path) == ALL
    else:
        assert term.proc.returncode == 1 and doc["status"] == "failed"
        detail = doc["waves"][0]["failed_hosts"]["web1.dc1"]["detail"]
        assert "approval step 'ok' refused at the prompt" in detail
        assert _ran(tmp_path) == set()

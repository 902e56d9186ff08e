"""``muster workflow run|plan`` and ``muster run --dry-run`` as an operator runs them:
a real process, real local commands. A dry run must send nothing: the canary file
a step would create stays absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli_run import muster

DEFINITION = """
name: cli
parameters:
  - {{name: who, type: string, required: true}}
  - {{name: token, type: secret}}
steps:
  - {{id: touch, command: "touch {canary} && echo hello {{{{params.who}}}}"}}
  - id: gate
    type: approval
    approvers: ["user:ops"]
    depends_on: touch
    on_success: deploy
    on_failure: notify
  - id: deploy
    command: "echo got {{{{step_touch.stdout}}}}; printf '%s' {{{{params.token}}}} | wc -c"
  - {{id: notify, command: "echo not approved"}}
"""


@pytest.fixture
def workflow_file(tmp_path: Path) -> tuple[Path, Path]:
    canary = tmp_path / "canary"
    path = tmp_path / "wf.yaml"
    path.write_text(DEFINITION.format(canary=canary))
    return path, canary


def test_plan_previews_every_step_and_sends_nothing(workflow_file: tuple[Path, Path]) -> None:
    path, canary = workflow_file
    proc = muster(
        "workflow", "plan", str(path), "--targets", "localhost",
        "-p", "who=it's $(id)", "-p", "token=tok-s3cret", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    steps = {s["id"]: s for s in doc["steps"]}
    assert list(steps) == ["touch", "gate", "deploy", "notify"]
    touch = steps["touch"]
    assert touch["hosts"] == ["localhost"] and touch["shell"] == "sh"
    assert touch["bodies"]["localhost"].endswith("echo hello 'it'\\''s $(id)'")
    assert any("approval (one_of_many) by user:ops" in w for w in steps["gate"]["waits_for"])
    assert steps["deploy"]["waits_for"][0] == "runs only when routed to from gate.on_success"
    assert "'<step_touch.stdout>'" in steps["deploy"]["bodies"]["localhost"]
    assert steps["deploy"]["env"]["MUSTER_PARAM_TOKEN"] == "***"
    assert "tok-s3cret" not in proc.stdout
    assert not canary.exists()


def test_plan_rejects_a_bad_definition_naming_step_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nsteps:\n  - {id: a, command: x, on_failure: nowhere}\n")
    proc = muster("workflow", "plan", str(path))
    assert proc.returncode == 2
    assert "step 'a'" in proc.stderr and "nowhere" in proc.stderr


def test_run_follows_the_approval_given_on_the_command_line(
    workflow_file: tuple[Path, Path],
) -> None:
    path, canary = workflow_file
    common = ["workflow", "run", str(path), "--targets", "localhost", "-p", "who=ops"]
    proc = muster(*common, "-p", "token=tok-s3cret", "--approve", "gate", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "succeeded"
    status = {s["id"]: s["status"] for s in doc["steps"]}
    assert status == {"touch": "succeeded", "gate": "succeeded", "deploy": "succeeded",
                      "notify": "skipped"}  # fmt: skip
    (deploy,) = doc["results"]["deploy"]["hosts"]
    assert deploy["stdout"] == "got hello ops\n10\n"
    assert "tok-s3cret" not in proc.stdout
    assert canary.exists()

    refused = muster(*common, "-p", "token=x")
    assert refused.returncode == 0, refused.stderr  # the failure route handled it
    assert "gate failed" in refused.stdout and "notify succeeded" in refused.stdout


def test_run_exits_1_when_the_workflow_fails(tmp_path: Path) -> None:
    path = tmp_path / "fail.yaml"
    path.write_text(
        "name: f\nsteps:\n  - {id: a, command: 'exit 5'}\n"
        "  - {id: b, command: 'true', depends_on: a}\n"
    )
    proc = muster("workflow", "run", str(path), "--targets", "localhost")
    assert proc.returncode == 1
    assert "workflow f failed" in proc.stdout
    assert "b skipped" in proc.stdout


def test_run_dry_run_shows_the_body_and_sends_nothing(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    script = tmp_path / "greet.sh"
    script.write_text(
        "# muster:param who string required\n# muster:param token secret\n"
        f'touch {canary}\nprintf "%s|%s" ${{who}} "${{token}}"\n'
    )
    proc = muster(
        "run", "localhost", "--script", str(script), "-p", "who=it's $(id)",
        "-p", "token=tok-s3cret", "--dry-run", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["dry_run"] is True and doc["hosts"] == ["localhost"]
    assert (
        "printf \"%s|%s\" 'it'\\''s $(id)' \"${MUSTER_PARAM_TOKEN}\"" in doc["bodies"]["localhost"]
    )
    assert doc["env"]["MUSTER_PARAM_TOKEN"] == "***"
    assert "tok-s3cret" not in proc.stdout
    assert not canary.exists()


def test_run_records_every_host_run_in_the_local_audit_file(
    workflow_file: tuple[Path, Path], tmp_path: Path
) -> None:
    path, _ = workflow_file
    audit = tmp_path / "wf-audit.jsonl"
    proc = muster(
        "workflow", "run", str(path), "--targets", "localhost", "-p", "who=ops",
        "-p", "token=tok-s3cret", "--approve", "gate", "--audit-file", str(audit),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in audit.read_text().splitlines()]
    ends = [r for r in rows if r["action"] == "host.run.end"]
    assert [r["details"]["outcome"] for r in ends] == ["succeeded", "succeeded"]
    assert all(r["target"] == "localhost" for r in rows)
    assert "tok-s3cret" not in audit.read_text()
    verified = muster("audit", "verify-file", str(audit))
    assert verified.returncode == 0 and f"{len(rows)} records" in verified.stdout
    both = muster(
        "workflow", "run", str(path), "--targets", "localhost", "-p", "who=ops",
        "--audit-file", str(audit), "--no-audit",
    )  # fmt: skip
    assert both.returncode == 2 and "contradict" in both.stderr

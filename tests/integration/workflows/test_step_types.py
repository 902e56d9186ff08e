"""Every step type and routing path, one body per behaviour, on every engine in ENGINES.

Host steps run for real (local transport in-process; the server face runs its
workers). Timed steps use short real durations (a delay of 0.2 s, an approval
deadline of 0.5 s): nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.workflows.conftest import WorkflowHarness

pytestmark = pytest.mark.timeout(120)


async def test_command_steps_route_on_success_and_read_the_same_hosts_output(
    workflow_engine: WorkflowHarness,
) -> None:
    run = await workflow_engine.run(
        """
name: routes
steps:
  - {id: who, command: 'echo "$MUSTER_RUN_ID" | sed "s/.*_//"', on_success: echo_back}
  - {id: echo_back, command: "echo got {{step_who.stdout}} other {{step_who.hosts.h2.stdout}}"}
"""
    )
    assert run.status == "succeeded", run.messages
    assert run.steps == {"who": "succeeded", "echo_back": "succeeded"}
    assert run.stdout("who", "h1") == "h1\n"
    # Same host: h1's step reads h1's result; hosts.h2 names another's.
    assert run.stdout("echo_back", "h1") == "got h1 other h2\n"
    assert run.stdout("echo_back", "h2") == "got h2 other h2\n"


async def test_inline_script_step_with_parameters_and_env(
    workflow_engine: WorkflowHarness,
) -> None:
    run = await workflow_engine.run(
        """
name: script
parameters:
  - {name: greeting, type: string, required: true}
  - {name: count, type: integer, default: 2}
env: {WORKFLOW_WIDE: wide}
steps:
  - id: greet
    type: script
    shell: bash
    env: {PER_STEP: "step {{params.count}}"}
    body: |
      for i in $(seq {{params.count}}); do printf '%s|' {{params.greeting}}; done
      echo "$WORKFLOW_WIDE $PER_STEP $MUSTER_PARAM_COUNT"
""",
        {"greeting": "hi there; $(id)"},
    )
    assert run.status == "succeeded", run.messages
    assert run.stdout("greet") == "hi there; $(id)|hi there; $(id)|wide step 2 2\n"


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_job_step_success_and_failure_routes(
    workflow_engine: WorkflowHarness, listening_port: int
) -> None:
    closed = _closed_port()
    run = await workflow_engine.run(
        f"""
name: jobs
steps:
  - id: open_port
    job: network_diagnostic
    fields: {{tool: port_check, target: 127.0.0.1, port: {listening_port}}}
    on_success: closed_port
  - id: closed_port
    job: network_diagnostic
    fields: {{tool: port_check, target: 127.0.0.1, port: {closed}}}
    on_failure: recovered
  - {{id: recovered, command: "echo recovered"}}
"""
    )
    assert run.status == "succeeded", run.messages
    assert run.steps == {
        "open_port": "succeeded",
        "closed_port": "failed",
        "recovered": "succeeded",
    }
    assert f"open 127.0.0.1:{listening_port}" in run.stdout("open_port")
    assert run.exit_code("closed_port") == 1


async def test_unhandled_failure_fails_the_instance_and_skips_the_rest(
    workflow_engine: WorkflowHarness,
) -> None:
    run = await workflow_engine.run(
        """
name: abort
steps:
  - {id: broken, command: "exit 3", on_success: never}
  - {id: never, command: "echo never"}
  - {id: after, command: "echo after", depends_on: broken}
"""
    )
    assert run.status == "failed"
    assert run.steps == {"broken": "failed", "never": "skipped", "after": "skipped"}
    assert run.exit_code("broken", "h2") == 3


async def test_on_failure_end_and_fail_words(workflow_engine: WorkflowHarness) -> None:
    ended = await workflow_engine.run(
        """
name: end-word
steps:
  - {id: broken, command: "exit 1", on_failure: end}
  - {id: other, command: "true"}
"""
    )
    assert ended.status == "succeeded"
    assert ended.steps == {"broken": "failed", "other": "succeeded"}
    aborted = await workflow_engine.run(
        """
name: fail-word
steps:
  - {id: fine, command: "true", on_success: fail}
"""
    )
    assert aborted.status == "failed"


async def test_parallel_branches_join(workflow_engine: WorkflowHarness) -> None:
    run = await workflow_engine.run(
        """
name: diamond
steps:
  - {id: left, command: "echo L"}
  - {id: right, command: "echo R"}
  - {id: join, command: "echo {{step_left.stdout}}{{step_right.stdout}}", depends_on: [left, right]}
"""
    )
    assert run.status == "succeeded", run.messages
    assert run.stdout("join") == "LR\n"


@pytest.mark.parametrize(("code", "branch"), [(0, "yes"), (7, "no")])
async def test_conditional_on_exit_code(
    workflow_engine: WorkflowHarness, code: int, branch: str
) -> None:
    run = await workflow_engine.run(
        f"""
name: cond-exit
steps:
  - {{id: probe, command: "exit {code}", on_failure: check, on_success: check}}
  - id: check
    type: conditional
    condition: "{{{{step_probe.exit_code}}}} == 0"
    on_true: "yes"
    on_false: "no"
  - {{id: "yes", command: "echo yes"}}
  - {{id: "no", command: "echo no"}}
"""
    )
    assert run.status == "succeeded", run.messages
    other = "no" if branch == "yes" else "yes"
    assert (run.steps[branch], run.steps[other]) == ("succeeded", "skipped")


@pytest.mark.parametrize(("ready", "branch"), [("true", "go"), ("false", "stop")])
async def test_conditional_on_json_key(
    workflow_engine: WorkflowHarness, ready: str, branch: str
) -> None:
    event = json.dumps({"ready": ready == "true", "db": {"lag": 3}})
    run = await workflow_engine.run(
        f"""
name: cond-json
steps:
  - {{id: scan, command: {json.dumps(f"echo '@@{event}'")}}}
  - id: check
    type: conditional
    depends_on: scan
    config:
      condition: "{{{{step_scan.json.ready}}}} == true and {{{{step_scan.json.db.lag}}}} < 5"
      on_true: go
      on_false: stop
  - {{id: go, command: "echo lag {{{{step_scan.json.db.lag}}}}"}}
  - {{id: stop, command: "echo stop"}}
"""
    )
    assert run.status == "succeeded", run.messages
    assert run.steps[branch] == "succeeded"
    assert run.steps["stop" if branch == "go" else "go"] == "skipped"
    if branch == "go":
        assert run.stdout("go") == "lag 3\n"


async def test_conditional_that_cannot_be_evaluated_fails_to_its_failure_path(
    workflow_engine: WorkflowHarness,
) -> None:
    run = await workflow_engine.run(
        """
name: cond-error
steps:
  - {id: text, command: "echo abc"}
  - id: check
    type: conditional
    depends_on: text
    condition: "{{step_text.stdout}} > 3"
    on_true: never
    on_failure: handled
  - {id: never, command: "true"}
  - {id: handled, command: "true"}
"""
    )
    assert run.status == "succeeded"
    assert run.steps["check"] == "failed"
    assert "needs numbers" in run.messages["check"]
    assert run.steps["handled"] == "succeeded"


async def test_delay_step_waits_then_continues(workflow_engine: WorkflowHarness) -> None:
    iid = await workflow_engine.start(
        """
name: delay
steps:
  - {id: pause, type: delay, seconds: 0.3, on_success: after}
  - {id: after, command: "echo after"}
  - {id: past, type: delay, until: "2000-01-01T00:00:00Z"}
"""
    )
    run = await workflow_engine.wait(iid)
    assert run.status == "succeeded"
    assert run.steps == {"pause": "succeeded", "after": "succeeded", "past": "succeeded"}


async def test_approval_approved_and_rejected_routes(workflow_engine: WorkflowHarness) -> None:
    definition = """
name: approve
steps:
  - id: gate
    type: approval
    approval: {policy: one_of_many, approvers: ["user:alice", "user:bob"], title: "deploy?"}
    on_success: deploy
    on_failure: notify
  - {id: deploy, command: "echo deploy"}
  - {id: notify, command: "echo notify"}
"""
    iid = await workflow_engine.start(definition)
    waiting = await workflow_engine.wait_step(iid, "gate", {"waiting"})
    assert waiting.status == "waiting"
    await workflow_engine.approve(iid, "gate", "alice")
    run = await workflow_engine.wait(iid)
    assert (run.steps["deploy"], run.steps["notify"]) == ("succeeded", "skipped")

    iid = await workflow_engine.start(definition)
    await workflow_engine.wait_step(iid, "gate", {"waiting"})
    await workflow_engine.reject(iid, "gate", "bob")
    run = await workflow_engine.wait(iid)
    assert run.status == "succeeded"
    assert (run.steps["gate"], run.steps["deploy"], run.steps["notify"]) == (
        "failed",
        "skipped",
        "succeeded",
    )


async def test_approval_deadline_routes_to_the_failure_path(
    workflow_engine: WorkflowHarness,
) -> None:
    run = await workflow_engine.run(
        """
name: deadline
steps:
  - id: gate
    type: approval
    approval: {approvers: ["user:alice"], timeout: 0.5}
    on_success: deploy
    on_failure: rollback
  - {id: deploy, command: "echo deploy"}
  - {id: rollback, command: "echo rollback"}
"""
    )
    assert run.status == "succeeded"
    assert run.steps == {"gate": "failed", "deploy": "skipped", "rollback": "succeeded"}
    assert "deadline" in run.messages["gate"]


async def test_retries_run_a_failed_step_again(
    workflow_engine: WorkflowHarness, tmp_path: Path
) -> None:
    marker = tmp_path / "second-time"
    run = await workflow_engine.run(
        f"""
name: retries
steps:
  - id: flaky
    retries: 2
    targets: h1
    command: "if [ -e {marker} ]; then echo ok; else touch {marker}; exit 1; fi"
"""
    )
    assert run.status == "succeeded", run.messages
    assert run.attempts["flaky"] == 2
    assert run.stdout("flaky") == "ok\n"


async def test_targets_select_groups(workflow_engine: WorkflowHarness) -> None:
    run = await workflow_engine.run(
        """
name: targets
steps:
  - {id: web_only, targets: web, command: "echo web"}
  - {id: both, targets: [web, db], command: "echo both"}
"""
    )
    assert set(run.outcomes["web_only"]) == {"h1"}
    assert set(run.outcomes["both"]) == {"h1", "h2"}


async def test_pause_and_resume_the_instance(
    workflow_engine: WorkflowHarness, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    iid = await workflow_engine.start(
        f"""
name: pause
steps:
  - {{id: first, command: "while [ ! -e {gate} ]; do sleep 0.05; done"}}
  - {{id: second, command: "echo second", depends_on: first}}
"""
    )
    await workflow_engine.pause(iid)
    gate.touch()
    paused = await workflow_engine.wait_step(iid, "first", {"succeeded"})
    assert paused.status == "paused"
    assert paused.steps["second"] == "pending"
    await workflow_engine.resume(iid)
    run = await workflow_engine.wait(iid)
    assert run.status == "succeeded"
    assert run.steps["second"] == "succeeded"


async def test_pause_a_step_for_a_while(workflow_engine: WorkflowHarness, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    iid = await workflow_engine.start(
        f"""
name: pause-step
steps:
  - {{id: first, command: "while [ ! -e {gate} ]; do sleep 0.05; done"}}
  - {{id: second, command: "echo second", depends_on: first}}
"""
    )
    await workflow_engine.pause(iid, "second", seconds=0.5)
    gate.touch()
    held = await workflow_engine.wait_step(iid, "first", {"succeeded"})
    assert held.steps["second"] == "pending"
    run = await workflow_engine.wait(iid)  # the pause ends by itself
    assert run.status == "succeeded"
    assert run.steps["second"] == "succeeded"


async def test_kill_the_instance_cancels_running_steps(workflow_engine: WorkflowHarness) -> None:
    iid = await workflow_engine.start(
        """
name: kill
steps:
  - {id: long, command: "sleep 60"}
  - {id: later, command: "true", depends_on: long}
"""
    )
    await workflow_engine.wait_step(iid, "long", {"running"})
    await workflow_engine.kill(iid)
    run = await workflow_engine.wait(iid, timeout=30)
    assert run.status == "killed"
    assert run.steps == {"long": "killed", "later": "killed"}


async def test_kill_a_step_then_retry_it(workflow_engine: WorkflowHarness, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    iid = await workflow_engine.start(
        f"""
name: kill-step
steps:
  - {{id: slow, command: "if [ -e {gate} ]; then echo fast; else sleep 60; fi"}}
  - {{id: after, command: "echo after", depends_on: slow}}
"""
    )
    await workflow_engine.wait_step(iid, "slow", {"running"})
    await workflow_engine.kill(iid, "slow")
    run = await workflow_engine.wait(iid, timeout=30)
    assert run.status == "failed"
    assert run.steps == {"slow": "killed", "after": "skipped"}
    gate.touch()
    await workflow_engine.retry(iid, "slow")
    run = await workflow_engine.wait(iid)
    assert run.status == "succeeded", run.messages
    assert run.steps == {"slow": "succeeded", "after": "succeeded"}
    assert run.attempts["slow"] == 2


async def test_resume_a_failed_instance_from_its_failed_steps(
    workflow_engine: WorkflowHarness, tmp_path: Path
) -> None:
    fixed = tmp_path / "fixed"
    counter = tmp_path / "done-count"
    iid = await workflow_engine.start(
        f"""
name: resume
steps:
  - {{id: done_once, targets: h1, command: "echo x >> {counter}"}}
  - {{id: needs_fix, targets: h1, command: "test -e {fixed}", depends_on: done_once}}
  - {{id: last, targets: h1, command: "echo last", depends_on: needs_fix}}
"""
    )
    run = await workflow_engine.wait(iid)
    assert run.status == "failed"
    assert run.steps == {"done_once": "succeeded", "needs_fix": "failed", "last": "skipped"}
    fixed.touch()
    await workflow_engine.resume_failed(iid)
    run = await workflow_engine.wait(iid)
    assert run.status == "succeeded", run.messages
    assert run.steps == {"done_once": "succeeded", "needs_fix": "succeeded", "last": "succeeded"}
    # The step that had succeeded did not run again.
    assert counter.read_text() == "x\n"
    assert run.attempts == {"done_once": 1, "needs_fix": 2, "last": 1}


async def test_step_timeout_fails_the_step_to_its_failure_path(
    workflow_engine: WorkflowHarness,
) -> None:
    run = await workflow_engine.run(
        """
name: timeout
steps:
  - {id: slow, targets: h1, command: "sleep 30", timeout: 0.5, on_failure: cleanup}
  - {id: cleanup, targets: h1, command: "echo cleanup"}
"""
    )
    assert run.status == "succeeded"
    assert run.steps == {"slow": "failed", "cleanup": "succeeded"}
    assert run.outcomes["slow"]["h1"].state == "timed_out"


async def test_throttle_forks_one_runs_hosts_one_at_a_time(
    workflow_engine: WorkflowHarness, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    run = await workflow_engine.run(
        f"""
name: throttle
steps:
  - id: serial
    throttle: {{forks: 1}}
    command: 'h=$(echo "$MUSTER_RUN_ID" | sed "s/.*_//"); echo "start $h" >> {log}; sleep 0.2; echo "end $h" >> {log}'
"""  # noqa: E501
    )
    assert run.status == "succeeded", run.messages
    lines = log.read_text().splitlines()
    # Never two hosts inside at once: every start is followed by its own end.
    assert len(lines) == 4
    assert [line.split()[0] for line in lines] == ["start", "end", "start", "end"]
    assert lines[0].split()[1] == lines[1].split()[1]

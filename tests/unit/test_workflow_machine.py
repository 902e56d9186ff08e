"""The workflow state machine alone: events in, actions out, no I/O, no sleeping."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from muster.domain.workflows import (
    HostOutcome,
    InstanceState,
    InstanceStatus,
    StepResult,
    WaitReason,
    load_workflow_text,
    validate,
)
from muster.domain.workflows.expr import ExpressionError, evaluate, parse_expression
from muster.domain.workflows.machine import (
    ApprovalDecided,
    CancelStep,
    CloseApproval,
    Finished,
    Kill,
    OpenApproval,
    Pause,
    Resume,
    ResumeFailed,
    Retry,
    RunStep,
    Start,
    StepFinished,
    StepHeld,
    Tick,
    advance,
    next_wakeup,
)
from muster.domain.workflows.refs import parse_reference, resolve
from muster.errors import ConflictError

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Machine:
    def __init__(self, text: str) -> None:
        self.graph = validate(load_workflow_text(text))
        self.state = InstanceState.new(self.graph.order)
        self.now = T0
        self.results: dict[str, StepResult] = {}

    def send(self, event: Any, *, after: float = 0.0) -> list[Any]:
        self.now += dt.timedelta(seconds=after)
        return advance(self.graph, self.state, event, now=self.now, results=self.results)

    def finish(self, step: str, ok: bool = True, **outcome: Any) -> list[Any]:
        attempt = self.state.steps[step].attempt
        host = HostOutcome("h1", "succeeded" if ok else "failed", **outcome)
        self.results[step] = StepResult(step, attempt, {"h1": host})
        return self.send(StepFinished(step, attempt, ok, hosts={"h1": host.state}))

    @property
    def statuses(self) -> dict[str, str]:
        return {k: v.status.value for k, v in self.state.steps.items()}


CHAIN = """
name: chain
steps:
  - {id: a, command: "true"}
  - {id: b, command: "true", depends_on: a}
  - {id: c, command: "true", depends_on: b}
"""


def test_chain_runs_in_order_and_finishes_once() -> None:
    m = Machine(CHAIN)
    assert m.send(Start()) == [RunStep("a", 1)]
    assert m.finish("a") == [RunStep("b", 1)]
    assert m.finish("b") == [RunStep("c", 1)]
    assert m.finish("c") == [Finished(InstanceStatus.SUCCEEDED)]
    assert m.state.status is InstanceStatus.SUCCEEDED
    with pytest.raises(ConflictError):
        m.send(Start())


def test_a_step_held_by_its_window_waits_then_runs_and_finishes() -> None:
    m = Machine(CHAIN)
    m.send(Start())
    why = "outside maintenance window; next opens Sun 01:00 CET"
    assert m.send(StepHeld("a", 1, True, why)) == []
    a = m.state.steps["a"]
    assert (a.status.value, a.wait_reason, a.message) == ("waiting", WaitReason.WINDOW, why)
    assert m.state.status is InstanceStatus.WAITING
    assert m.state.wait_reason is WaitReason.WINDOW
    assert next_wakeup(m.state) is None
    m.send(StepHeld("a", 0, False))  # a stale attempt changes nothing
    assert m.state.steps["a"].status.value == "waiting"
    m.send(StepHeld("a", 1, False))
    assert (a.status.value, a.wait_reason, a.message) == ("running", None, "")
    assert m.state.status is InstanceStatus.RUNNING
    m.send(StepHeld("a", 1, True, why))
    # A held step is still in flight: it may finish (the window opened and it ran
    # between two looks), and a kill cancels it.
    assert m.finish("a") == [RunStep("b", 1)]
    assert m.state.steps["a"].wait_reason is None
    m.send(StepHeld("b", 1, True, why))
    assert CancelStep("b") in m.send(Kill())
    assert m.state.status is InstanceStatus.KILLED


def test_late_and_stale_events_change_nothing() -> None:
    m = Machine(CHAIN)
    m.send(Start())
    assert m.send(StepFinished("a", 7, True)) == []  # not this attempt
    assert m.statuses["a"] == "running"
    m.send(Kill("a"))
    assert m.send(StepFinished("a", 1, True)) == []  # killed already
    assert m.statuses["a"] == "killed"


def test_retries_wait_their_delay_then_run_again() -> None:
    m = Machine(
        """
name: r
steps:
  - {id: a, command: "false", retries: 1, retry_delay: 30}
"""
    )
    m.send(Start())
    assert m.finish("a", ok=False) == []
    assert m.statuses["a"] == "pending"
    assert m.state.status is InstanceStatus.WAITING
    assert next_wakeup(m.state) == T0 + dt.timedelta(seconds=30)
    assert m.send(Tick(), after=10) == []
    assert m.send(Tick(), after=20) == [RunStep("a", 2)]
    assert m.finish("a", ok=False) == [Finished(InstanceStatus.FAILED)]
    assert "a failed" in m.state.message


def test_lost_step_routes_like_a_failure_and_is_never_retried_by_itself() -> None:
    m = Machine(
        """
name: l
steps:
  - {id: a, command: "x", retries: 3, on_failure: cleanup}
  - {id: cleanup, command: "true"}
"""
    )
    m.send(Start())
    assert m.send(StepFinished("a", 1, False, lost=True)) == [RunStep("cleanup", 1)]
    assert m.statuses["a"] == "lost"
    m.finish("cleanup")
    assert m.state.status is InstanceStatus.SUCCEEDED


def test_approval_deadline_is_a_rejection_on_the_failure_path() -> None:
    m = Machine(
        """
name: ap
steps:
  - {id: gate, type: approval, approvers: ["user:x"], timeout_minutes: 5,
     on_success: go, on_failure: rollback}
  - {id: go, command: "true"}
  - {id: rollback, command: "true"}
"""
    )
    deadline = T0 + dt.timedelta(minutes=5)
    assert m.send(Start()) == [OpenApproval("gate", 1, deadline)]
    assert m.state.status is InstanceStatus.WAITING
    assert m.state.wait_reason is not None and m.state.wait_reason.value == "approval"
    assert m.send(Tick(), after=299) == []
    assert m.send(Tick(), after=1) == [
        CloseApproval("gate", "deadline passed"),
        RunStep("rollback", 1),
    ]
    # A decision arriving after the deadline changes nothing.
    assert m.send(ApprovalDecided("gate", True)) == []
    assert m.statuses["go"] == "pending"


def test_pause_until_resumes_by_itself_and_illegal_pauses_are_refused() -> None:
    m = Machine(CHAIN)
    m.send(Start())
    m.send(Pause(until=T0 + dt.timedelta(minutes=5)))
    assert m.finish("a") == []
    assert m.state.status is InstanceStatus.PAUSED
    assert next_wakeup(m.state) == T0 + dt.timedelta(minutes=5)
    with pytest.raises(ConflictError):
        m.send(Pause("a"))  # already finished
    assert m.send(Tick(), after=300) == [RunStep("b", 1)]
    m.send(Pause("c"))
    assert m.finish("b") == []
    assert m.state.status is InstanceStatus.PAUSED
    with pytest.raises(ConflictError):
        m.send(Resume())  # the instance is not paused; the step is
    assert m.send(Resume("c")) == [RunStep("c", 1)]


def test_kill_cancels_running_closes_approvals_and_kills_the_rest() -> None:
    m = Machine(
        """
name: k
steps:
  - {id: a, command: "sleep 60"}
  - {id: gate, type: approval, approvers: ["user:x"]}
  - {id: later, command: "true", depends_on: a}
"""
    )
    m.send(Start())
    actions = m.send(Kill())
    assert CancelStep("a") in actions
    assert CloseApproval("gate", "killed") in actions
    assert actions[-1] == Finished(InstanceStatus.KILLED)
    assert set(m.statuses.values()) == {"killed"}


def test_resume_failed_reruns_only_failed_steps_and_what_they_blocked() -> None:
    m = Machine(CHAIN)
    m.send(Start())
    m.finish("a")
    assert m.finish("b", ok=False) == [Finished(InstanceStatus.FAILED)]
    assert m.statuses == {"a": "succeeded", "b": "failed", "c": "skipped"}
    with pytest.raises(ConflictError):
        m.send(Retry("a"))
    assert m.send(ResumeFailed()) == [RunStep("b", 2)]
    assert m.state.status is InstanceStatus.RUNNING
    assert m.finish("b") == [RunStep("c", 1)]
    m.finish("c")
    assert m.state.status is InstanceStatus.SUCCEEDED
    assert m.state.steps["a"].attempt == 1


def test_conditional_over_many_hosts_needs_them_to_agree() -> None:
    m = Machine(
        """
name: c
steps:
  - {id: probe, command: "x"}
  - {id: q, condition: "{{step_probe.exit_code}} == 0", on_true: "yes", on_false: "no",
     on_failure: broken, depends_on: probe}
  - {id: "yes", command: "true"}
  - {id: "no", command: "true"}
  - {id: broken, command: "true"}
"""
    )
    m.send(Start())
    hosts = {
        "h1": HostOutcome("h1", "succeeded", 0),
        "h2": HostOutcome("h2", "failed", 2),
    }
    m.results["probe"] = StepResult("probe", 1, hosts)
    assert m.send(StepFinished("probe", 1, True)) == [RunStep("broken", 1)]
    assert "differs between the hosts" in m.state.steps["q"].message


def test_state_survives_serialisation_mid_run() -> None:
    m = Machine(CHAIN)
    m.send(Start())
    m.finish("a")
    m.send(Pause("c", until=T0 + dt.timedelta(hours=1)))
    again = InstanceState.from_dict(m.state.to_dict())
    assert again.to_dict() == m.state.to_dict()
    m.state = again
    assert m.finish("b") == []
    assert m.statuses["c"] == "pending"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{{step_a.exit_code}} == 0", True),
        ("{{step_a.exit_code}} == '0'", True),
        ("{{step_a.exit_code}} != 0", False),
        ("{{step_a.stdout}} == 'hello world'", True),
        ("{{step_a.stdout}} contains 'world'", True),
        ("'wor' in {{step_a.stdout}}", True),
        ("{{step_a.stdout}} matches '^h.*d$'", True),
        ("{{step_a.json.ready}} == true", True),
        ("{{step_a.json.ready}}", True),
        ("not {{step_a.json.ready}} or {{step_a.json.n}} >= 3", True),
        ("{{step_a.json.n}} > 3", False),
        ("{{step_a.json.tags}} contains 'db'", True),
        ("'x' not in {{step_a.json.tags}}", True),
        ("{{step_a.json.missing}} == null", True),
        ("({{params.level}} > 1 && {{params.level}} < 3) || false", True),
        ("step_a.exit_code == 0 and params.level == 2", True),
    ],
)
def test_expressions(expression: str, expected: bool) -> None:
    outcome = HostOutcome(
        "h1", "succeeded", 0, "hello world\n", json={"ready": True, "n": 3, "tags": ["db", "web"]}
    )
    results = {"a": StepResult("a", 1, {"h1": outcome})}
    parsed = parse_expression(expression)
    value = evaluate(parsed, lambda ref: resolve(ref, params={"level": 2}, results=results))
    assert value is expected


@pytest.mark.parametrize(
    "bad",
    ["", "== 1", "(1 == 1", "1 = 1", "__import__('os')", "{{step_a.nope}} == 1", "a" * 5000],
)
def test_malformed_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ExpressionError):
        parse_expression(bad)


def test_references_parse_host_names_with_dots() -> None:
    ref = parse_reference("step_a.hosts.web1.example.com.json.k.v")
    assert (ref.step, ref.host, ref.key) == ("a", "web1.example.com", ("k", "v"))
    ref = parse_reference("variables.step_a.hosts.db-1.exit_code")
    assert (ref.host, ref.field) == ("db-1", "exit_code")

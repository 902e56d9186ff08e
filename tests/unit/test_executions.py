"""Execution records: transitions through the one table, timestamps, roll-up, JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from muster.domain.executions import Execution, HostRun
from muster.domain.hosts import Host
from muster.domain.states import ExecutionStatus, FailureReason, HostRunState
from muster.errors import StateTransitionError

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _execution(*names: str) -> Execution:
    return Execution.create(
        id="e1", description="command echo hi", hosts=[Host(n) for n in names], created_at=T0
    )


def test_create_queues_one_run_per_distinct_host() -> None:
    execution = Execution.create(
        id="e1", description="d", hosts=[Host("a", id="h-a"), Host("b"), Host("a")]
    )
    assert list(execution.host_runs) == ["a", "b"]
    run = execution.host_runs["a"]
    assert run.state is HostRunState.QUEUED
    assert run.host_id == "h-a"
    assert run.attempt == 1
    assert execution.status is ExecutionStatus.QUEUED


def test_transition_stamps_start_finish_and_duration() -> None:
    run = HostRun(host="a")
    assert run.duration is None
    run.transition(HostRunState.RUNNING, at=T0)
    assert run.started_at == T0 and run.finished_at is None
    run.transition(
        HostRunState.FAILED,
        at=T0 + timedelta(seconds=2.5),
        exit_code=3,
        reason=FailureReason.COMMAND_FAILED,
        message="exit code 3",
    )
    assert run.duration == 2.5
    assert (run.exit_code, run.reason, run.message) == (
        3,
        FailureReason.COMMAND_FAILED,
        "exit code 3",
    )


@pytest.mark.parametrize(
    "terminal",
    [HostRunState.SUCCEEDED, HostRunState.FAILED, HostRunState.CANCELLED, HostRunState.LOST],
)
def test_terminal_state_never_changes(terminal: HostRunState) -> None:
    run = HostRun(host="a")
    run.transition(HostRunState.RUNNING)
    run.transition(terminal)
    for target in HostRunState:
        with pytest.raises(StateTransitionError):
            run.transition(target)
    assert run.state is terminal


def test_illegal_transition_leaves_run_untouched() -> None:
    run = HostRun(host="a")
    with pytest.raises(StateTransitionError):
        run.transition(HostRunState.SUCCEEDED, at=T0)
    assert run.state is HostRunState.QUEUED and run.finished_at is None


def test_back_to_queued_clears_the_start() -> None:
    run = HostRun(host="a")
    run.transition(HostRunState.RUNNING, at=T0)
    run.transition(HostRunState.QUEUED, at=T0 + timedelta(seconds=1))
    assert run.started_at is None and run.queued_at == T0 + timedelta(seconds=1)


def test_status_rolls_up_and_host_lists_partition() -> None:
    execution = _execution("ok", "bad", "slow", "gone", "skip", "wait")
    runs = execution.host_runs
    for name in ("ok", "bad", "slow", "gone", "wait"):
        runs[name].transition(HostRunState.RUNNING)
    assert execution.status is ExecutionStatus.RUNNING
    runs["ok"].transition(HostRunState.SUCCEEDED)
    runs["bad"].transition(HostRunState.FAILED)
    runs["slow"].transition(HostRunState.TIMED_OUT)
    runs["gone"].transition(HostRunState.LOST)
    runs["skip"].transition(HostRunState.SKIPPED, reason=FailureReason.SHELL_UNAVAILABLE)
    assert execution.finished_at is None
    runs["wait"].transition(HostRunState.CANCELLED)
    final: ExecutionStatus = execution.status
    assert final is ExecutionStatus.FAILED
    assert execution.successful_hosts == ["ok"]
    assert execution.failed_hosts == ["bad", "slow", "gone"]
    assert execution.skipped_hosts == ["skip"]
    assert execution.finished_at == max(r.finished_at for r in runs.values() if r.finished_at)


def test_all_skipped_is_skipped() -> None:
    execution = _execution("a", "b")
    for run in execution.host_runs.values():
        run.transition(HostRunState.SKIPPED)
    assert execution.status is ExecutionStatus.SKIPPED
    assert execution.failed_hosts == []


def test_to_dict_is_the_json_document() -> None:
    execution = _execution("a", "b")
    a, b = execution.host_runs["a"], execution.host_runs["b"]
    a.transition(HostRunState.RUNNING, at=T0)
    a.stdout, a.events = "hi\n", [{"k": 1}]
    a.transition(HostRunState.SUCCEEDED, at=T0 + timedelta(seconds=1), exit_code=0)
    b.transition(
        HostRunState.SKIPPED,
        at=T0,
        reason=FailureReason.SHELL_UNAVAILABLE,
        message="zsh is not among this host's shells (bash, sh)",
    )
    doc = execution.to_dict()
    assert doc["status"] == "succeeded"
    assert doc["counts"] == {"succeeded": 1, "skipped": 1}
    assert doc["created_at"] == T0.isoformat()
    host_a = doc["hosts"][0]
    assert host_a["state"] == "succeeded"
    assert host_a["duration"] == 1.0
    assert host_a["stdout"] == "hi\n"
    assert host_a["events"] == [{"k": 1}]
    assert doc["skipped_hosts"] == [
        {"host": "b", "reason": "zsh is not among this host's shells (bash, sh)"}
    ]

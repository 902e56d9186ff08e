"""What an in-process workflow run answers: an instance as saved, with its step results.

:class:`WorkflowRun` is what the library (``muster.Engine``), ``muster
workflow run`` and the rollout engine hand their callers; it reads, it never
drives (that is :mod:`muster.engine.workflow`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from muster.domain.executions import Execution
from muster.domain.workflows import HostOutcome, InstanceStatus, StepResult, StepState, merge_events
from muster.engine.workflow_store import InstanceRecord

__all__ = ["WorkflowRun", "step_result_from_execution"]


def step_result_from_execution(step_id: str, attempt: int, execution: Execution) -> StepResult:
    """The :class:`StepResult` of an execution that ran a step's attempt."""
    hosts = {}
    for name, run in execution.host_runs.items():
        hosts[name] = HostOutcome(
            host=name,
            state=run.state.value,
            exit_code=run.exit_code,
            stdout=run.stdout,
            stderr=run.stderr,
            json=merge_events(run.events),
            message=run.message,
            duration=run.duration,
            reason=run.reason.value if run.reason is not None else None,
        )
    return StepResult(step_id=step_id, attempt=attempt, hosts=hosts)


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    """An instance as last saved, with its step results (the library's answer)."""

    record: InstanceRecord
    results: Mapping[str, StepResult]

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def status(self) -> InstanceStatus:
        return self.record.state.status

    @property
    def message(self) -> str:
        return self.record.state.message

    @property
    def steps(self) -> Mapping[str, StepState]:
        return self.record.state.steps

    @property
    def task_results(self) -> Mapping[str, StepResult]:
        """Seed 004's name for the per-step (per-task) results."""
        return self.results

    def _hosts(self) -> dict[str, bool]:
        ok: dict[str, bool] = {}
        for result in self.results.values():
            for name, outcome in result.hosts.items():
                ok[name] = ok.get(name, True) and outcome.succeeded
        return ok

    @property
    def successful_servers(self) -> list[str]:
        """Hosts where every step that ran on them succeeded."""
        return sorted(h for h, good in self._hosts().items() if good)

    @property
    def failed_servers(self) -> list[str]:
        """Hosts where some step did not succeed (failed, timed out, skipped, lost...)."""
        return sorted(h for h, good in self._hosts().items() if not good)

    def stdout(self, step_id: str, host: str) -> str:
        return self.results[step_id].hosts[host].stdout

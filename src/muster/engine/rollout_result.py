"""What a rollout reports: its waves, gates, evidence, rollback per host, flagged hosts.

:class:`RolloutRun` is what ``muster.Engine(...).execute(workflow)`` returns
(seed 004's ``result.status``, ``successful_servers``, ``failed_servers``,
``verification_results``) and what :meth:`RolloutRun.to_dict` exports as JSON
(evidence included). The engine mutates it while the rollout runs; callers
see a consistent snapshot after each step of the driver.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from muster.domain.rollout import HostFailure, WaveForecast
from muster.domain.rollout_gate import Gate
from muster.domain.verification import HostEvidence, evidence_report
from muster.domain.workflows import HostOutcome, StepResult, StepState
from muster.engine.workflow import WorkflowRun

__all__ = [
    "Gate",
    "RollbackOutcome",
    "RollbackState",
    "RolloutRun",
    "RolloutStatus",
    "WaveResult",
    "WaveStatus",
    "settle",
]


class RolloutStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        return self not in (RolloutStatus.RUNNING, RolloutStatus.PAUSED)


class WaveStatus(StrEnum):
    PENDING = "pending"
    WAITING_WINDOW = "waiting_window"
    RUNNING = "running"
    SOAKING = "soaking"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    #: Never started (an earlier wave stopped the rollout).
    NOT_RUN = "not_run"


class RollbackState(StrEnum):
    ROLLED_BACK = "rolled_back"
    #: A rollback command failed on the host (flagged).
    FAILED = "failed"
    #: The host could not be reached within the retry period (flagged).
    UNREACHABLE = "unreachable"
    #: No step with a rollback command ran on the host.
    NOTHING_TO_DO = "nothing_to_do"

    @property
    def flagged(self) -> bool:
        return self in (RollbackState.FAILED, RollbackState.UNREACHABLE)


def _iso(at: dt.datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@dataclass(eq=False)
class WaveResult:
    index: int
    hosts: tuple[str, ...]
    status: WaveStatus = WaveStatus.PENDING
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    #: When the wave waited for its hosts' windows: until when, and why.
    waited_for_window_until: dt.datetime | None = None
    wait_reason: str = ""
    failed_hosts: dict[str, HostFailure] = field(default_factory=dict)
    gate: Gate | None = None
    #: The verification tasks' outcomes after the soak (step -> result).
    soak_results: dict[str, StepResult] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "hosts": list(self.hosts),
            "status": self.status.value,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "waited_for_window_until": _iso(self.waited_for_window_until),
            "wait_reason": self.wait_reason,
            "failed_hosts": {h: f.to_dict() for h, f in self.failed_hosts.items()},
            "gate": self.gate.to_dict() if self.gate is not None else None,
            "soak_results": {k: r.to_dict() for k, r in self.soak_results.items()},
        }


@dataclass(eq=False)
class RollbackOutcome:
    """One host's rollback: each rollback step's outcome, newest step first."""

    host: str
    wave: int
    state: RollbackState
    steps: dict[str, HostOutcome] = field(default_factory=dict)
    message: str = ""
    attempts: int = 0
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "wave": self.wave,
            "state": self.state.value,
            "steps": {k: o.to_dict() for k, o in self.steps.items()},
            "message": self.message,
            "attempts": self.attempts,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


@dataclass(eq=False)
class RolloutRun:
    id: str
    workflow: str
    status: RolloutStatus = RolloutStatus.RUNNING
    message: str = ""
    waves: list[WaveResult] = field(default_factory=list)
    #: Verification name -> host -> evidence.
    verification_results: dict[str, dict[str, HostEvidence]] = field(default_factory=dict)
    rollback: dict[str, RollbackOutcome] = field(default_factory=dict)
    forecast: list[WaveForecast] = field(default_factory=list)
    #: Target hosts no wave reaches (left alone).
    unplanned: tuple[str, ...] = ()
    #: Step -> every host's latest outcome (the workflow's own steps only).
    task_results: dict[str, StepResult] = field(default_factory=dict)
    #: The workflow instances that ran (one per wave, or one per host in a rollout).
    runs: dict[str, WorkflowRun] = field(default_factory=dict)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    # -- seed 004's names ----------------------------------------------------------

    @property
    def failed_servers(self) -> list[str]:
        """Hosts that failed a task, a verification or a gate (the reason is in
        ``waves[i].failed_hosts``)."""
        return sorted({h for w in self.waves for h in w.failed_hosts})

    @property
    def successful_servers(self) -> list[str]:
        """Hosts that ran their part and failed nothing (before any rollback)."""
        failed = set(self.failed_servers)
        ran = {h for r in self.task_results.values() for h in r.hosts}
        return sorted(ran - failed)

    @property
    def flagged_hosts(self) -> list[str]:
        """Hosts whose rollback failed or could not reach them: never hidden."""
        return sorted(h for h, o in self.rollback.items() if o.state.flagged)

    @property
    def results(self) -> Mapping[str, StepResult]:
        return self.task_results

    @property
    def steps(self) -> Mapping[str, StepState]:
        """Each step's state: of the one instance, else the first that did not succeed."""
        merged: dict[str, StepState] = {}
        for run in self.runs.values():
            for sid, st in run.steps.items():
                if sid not in merged or merged[sid].status.value == "succeeded":
                    merged[sid] = st
        return merged

    def stdout(self, step_id: str, host: str) -> str:
        return self.task_results[step_id].hosts[host].stdout

    def evidence_report(self) -> dict[str, Any]:
        return evidence_report(
            e for by_host in self.verification_results.values() for e in by_host.values()
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "status": self.status.value,
            "message": self.message,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "waves": [w.to_dict() for w in self.waves],
            "forecast": [f.to_dict() for f in self.forecast],
            "unplanned": list(self.unplanned),
            "successful_servers": self.successful_servers,
            "failed_servers": self.failed_servers,
            "flagged_hosts": self.flagged_hosts,
            "verification_results": {
                name: {h: e.to_dict() for h, e in by_host.items()}
                for name, by_host in self.verification_results.items()
            },
            "rollback": {h: o.to_dict() for h, o in self.rollback.items()},
            "task_results": {k: r.to_dict() for k, r in self.task_results.items()},
        }


def settle(state: RolloutRun, *, aborted: bool, stopped: str, total: int) -> None:
    """The rollout's status once its waves are over (before any rollback)."""
    for wave in state.waves:
        if wave.status is WaveStatus.PENDING:
            wave.status = WaveStatus.NOT_RUN
    if aborted:
        state.status = RolloutStatus.ABORTED
        state.message = "aborted (nothing rolled back)"
    elif stopped:
        state.status = RolloutStatus.FAILED
        state.message = stopped
    elif state.failed_servers:
        state.status = RolloutStatus.FAILED
        state.message = (
            f"every wave ran; {len(state.failed_servers)} host(s) failed within the "
            "failure threshold"
        )
    else:
        state.status = RolloutStatus.SUCCEEDED
        state.message = f"{len(state.waves)} wave(s), {total} host(s) succeeded"

"""A rollout's state as the server keeps it: JSON in its workflow instance's context.

The server's rollout driver (:mod:`muster.services.rollout_driver`) must survive
a ``kill -9`` between any two passes, so everything it decides lives in the
store, under the instance context's ``rollout`` key, written with the instances
it starts in one compare-and-set (:meth:`commit_rollout`). The document::

    id, marker, status, message, phase (waves | rollback | done), current,
    total, failed_so_far, paused, aborted, stopped, unplanned, groups,
    started_at, finished_at, reports,
    waves: [{index, hosts, status, started_at, finished_at, soak_until,
             children: {host: instance}, soak_children: {host: instance},
             failed_hosts: {host: HostFailure}, gate: Gate,
             evidence: {verification: {host: HostEvidence}}, soak_results}],
    rollback: {queue: [wave index, newest first],
               hosts: {host: {steps, step, waits, child, retry_at, failed, done}},
               outcomes: {host: RollbackOutcome}}

Host results are not copied here: they stay with each host's instance (the
step results the workers' host runs became), and :func:`rollout_run` reads them
back to rebuild the engine's :class:`~muster.engine.rollout_result.RolloutRun`,
the report the in-process engine would have made of the same results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from muster.domain.rollout import HostFailure
from muster.domain.rollout_gate import Gate, merge_results, wave_evidence
from muster.domain.rollout_plan import RolloutPlan
from muster.domain.workflows import HostOutcome, StepResult, Workflow
from muster.domain.workflows.rollout_steps import with_captures
from muster.engine.rollout_result import (
    RollbackOutcome,
    RollbackState,
    RolloutRun,
    RolloutStatus,
    WaveResult,
    WaveStatus,
)

__all__ = [
    "ROLLOUT",
    "begin_rollback",
    "iso",
    "new_rollout",
    "outcome_from",
    "rollout_run",
    "rollout_view",
    "wave_result",
    "when",
]

#: The key of the rollout's state in its instance's context.
ROLLOUT = "rollout"


def iso(at: dt.datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def when(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def new_rollout(
    rid: str,
    marker: str,
    plan: RolloutPlan,
    groups: Mapping[str, str],
    windows: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """The state of a rollout planned but not started (``windows``: host -> the
    ``windows:`` selectors that cover it, fixed when it starts, as in-process)."""
    planned = {h.name for w in plan.waves for h in w}
    return {
        "id": rid,
        "marker": marker,
        "status": RolloutStatus.RUNNING.value,
        "message": "",
        "phase": "waves",
        "current": 0,
        "total": len(planned),
        "failed_so_far": 0,
        "paused": False,
        "aborted": False,
        "stopped": "",
        "unplanned": list(plan.unplanned),
        "groups": dict(groups),
        "windows": {h: list(sels) for h, sels in windows.items() if sels},
        "forecast": [f.to_dict() for f in plan.forecast],
        "started_at": None,
        "finished_at": None,
        "reports": [],
        "waves": [
            {
                "index": i,
                "hosts": [h.name for h in wave],
                "status": WaveStatus.PENDING.value,
                "started_at": None,
                "finished_at": None,
                "soak_until": None,
                "waited_for_window_until": None,
                "wait_reason": "",
                "children": {},
                "soak_children": {},
                "failed_hosts": {},
                "gate": None,
                "evidence": {},
                "soak_results": {},
            }
            for i, wave in enumerate(plan.waves)
        ],
        "rollback": {"queue": [], "hosts": {}, "outcomes": {}},
    }


def outcome_from(data: Mapping[str, Any]) -> RollbackOutcome:
    return RollbackOutcome(
        host=data["host"],
        wave=int(data["wave"]),
        state=RollbackState(data["state"]),
        steps={k: HostOutcome.from_dict(v) for k, v in (data.get("steps") or {}).items()},
        message=data.get("message", ""),
        attempts=int(data.get("attempts", 0)),
        started_at=when(data.get("started_at")),
        finished_at=when(data.get("finished_at")),
    )


def _failure(data: Mapping[str, Any]) -> HostFailure:
    return HostFailure(
        host=data["host"],
        reason=data["reason"],
        detail=data["detail"],
        step=data.get("step"),
        gate=bool(data.get("gate")),
    )


def wave_result(data: Mapping[str, Any]) -> WaveResult:
    """A stored wave as the engine's :class:`WaveResult` (without its soak results)."""
    gate = data.get("gate")
    return WaveResult(
        index=int(data["index"]),
        hosts=tuple(data["hosts"]),
        status=WaveStatus(data["status"]),
        started_at=when(data.get("started_at")),
        finished_at=when(data.get("finished_at")),
        waited_for_window_until=when(data.get("waited_for_window_until")),
        wait_reason=data.get("wait_reason", ""),
        failed_hosts={h: _failure(f) for h, f in (data.get("failed_hosts") or {}).items()},
        gate=Gate(**gate) if gate else None,
        soak_results={
            k: StepResult.from_dict(v) for k, v in (data.get("soak_results") or {}).items()
        },
    )


def rollout_run(
    r: Mapping[str, Any],
    workflow: Workflow,
    values: Mapping[str, object],
    results_of: Callable[[str], Mapping[str, StepResult]],
) -> RolloutRun:
    """The engine's :class:`RolloutRun` of a stored rollout: its waves, and the task
    results and verification evidence computed from each host's stored results by the
    same functions the in-process engine uses."""
    run = RolloutRun(
        id=r["id"],
        workflow=workflow.name,
        status=RolloutStatus(r["status"]),
        message=r.get("message", ""),
        unplanned=tuple(r.get("unplanned") or ()),
        started_at=when(r.get("started_at")),
        finished_at=when(r.get("finished_at")),
    )
    run.waves = [wave_result(w) for w in r["waves"]]
    marker = r["marker"]
    _, captures = with_captures(workflow, marker)
    per_wave = []
    for w in r["waves"]:
        children = w.get("children") or {}
        results = merge_results(results_of(iid) for iid in children.values())
        per_wave.append(results)
        for ev in wave_evidence(workflow, captures, marker, w["hosts"], results, values):
            run.verification_results.setdefault(ev.verification, {})[ev.host] = ev
    run.task_results = merge_results(per_wave, skip=captures.ids)
    run.rollback = {h: outcome_from(o) for h, o in r["rollback"]["outcomes"].items()}
    return run


def rollout_view(r: Mapping[str, Any]) -> dict[str, Any]:
    """The rollout as the API shows it with its instance: each wave's hosts, state,
    gate, failed hosts, evidence and the instances that ran its hosts; each host's
    rollback outcome; the hosts whose rollback failed (flagged, never hidden); the
    published report(s)."""
    rb = r["rollback"]
    outcomes = rb.get("outcomes") or {}
    return {
        "id": r["id"],
        "status": r["status"],
        "message": r.get("message", ""),
        "phase": r["phase"],
        "current_wave": r["current"],
        "paused": r["paused"],
        "aborted": r["aborted"],
        "total": r["total"],
        "unplanned": list(r.get("unplanned") or ()),
        "started_at": r.get("started_at"),
        "finished_at": r.get("finished_at"),
        "waves": [
            {
                "index": w["index"],
                "hosts": list(w["hosts"]),
                "status": w["status"],
                "started_at": w.get("started_at"),
                "finished_at": w.get("finished_at"),
                "soak_until": w.get("soak_until"),
                "waited_for_window_until": w.get("waited_for_window_until"),
                "wait_reason": w.get("wait_reason", ""),
                "gate": w.get("gate"),
                "failed_hosts": dict(w.get("failed_hosts") or {}),
                "evidence": dict(w.get("evidence") or {}),
                "instances": dict(w.get("children") or {}),
                "soak_instances": dict(w.get("soak_children") or {}),
            }
            for w in r["waves"]
        ],
        "rollback": dict(outcomes),
        "rollback_instances": {
            h: s["child"] for h, s in (rb.get("hosts") or {}).items() if s.get("child")
        },
        "flagged_hosts": sorted(
            h for h, o in outcomes.items() if RollbackState(o["state"]).flagged
        ),
        "reports": list(r.get("reports") or ()),
    }


def begin_rollback(r: dict[str, Any]) -> None:
    """Roll back every wave that started, newest first."""
    r["phase"] = "rollback"
    r["aborted"] = r["paused"] = False
    not_started = (WaveStatus.PENDING.value, WaveStatus.NOT_RUN.value)
    r["rollback"] = {
        "queue": [w["index"] for w in reversed(r["waves"]) if w["status"] not in not_started],
        "hosts": {},
        "outcomes": {},
    }

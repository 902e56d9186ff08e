"""One pass of a server-run rollout over its stored state: its waves and soaks
(the rollback: :mod:`muster.services.rollout_undo`).

Over one pass (:class:`RolloutPass`): it reads the hosts' instances
through ``status_of`` / ``results_of``, changes the rollout's state document
(:mod:`muster.services.rollout_state`) and lists the instances to start; the
driver (:mod:`muster.services.rollout_driver`) commits both at once. Every
decision is the in-process engine's own function: the wave verdict, the soak
verdict, the failure threshold, :func:`settle`, which steps a host rolls back,
when an unreachable host is tried again and when it is flagged.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from muster.domain.rollout import FitStatus, fit_wave
from muster.domain.rollout_gate import Gate, judge_soak, judge_wave, merge_results
from muster.domain.workflows import (
    InstanceState,
    InstanceStatus,
    StepResult,
    Workflow,
    workflow_to_dict,
)
from muster.domain.workflows.rollout_parse import window_objects
from muster.domain.workflows.rollout_steps import (
    verification_task_workflow,
    with_captures,
)
from muster.engine.dispatcher import DispatchPolicy
from muster.engine.rollout_result import (
    RolloutStatus,
    WaveStatus,
    settle,
)
from muster.engine.workflow_store import InstanceRecord
from muster.services.rollout_state import (
    begin_rollback,
    iso,
    rollout_run,
    wave_result,
    when,
)
from muster.store.workflow_durable import ChildInstance, InstanceDetail

__all__ = [
    "RolloutPass",
    "admit",
    "merged_results",
    "part_ended",
    "run_wave",
    "settle_rollout",
    "start_part",
]

#: The key of the one instance of a wave without a rollout (every host at once).
_ALL = "*"


@dataclass
class RolloutPass:
    """What one pass over a rollout reads and decides."""

    rollout: dict[str, Any]
    workflow: Workflow
    detail: InstanceDetail
    params: dict[str, Any]
    now: dt.datetime
    policy: DispatchPolicy
    status_of: Callable[[str], InstanceRecord | None]
    results_of: Callable[[str], Mapping[str, StepResult]]
    #: Instances this pass starts (committed with the state).
    children: list[ChildInstance] = field(default_factory=list)
    #: The next timer (a soak's end, a rollback retry), if nothing runs before.
    wake: dt.datetime | None = None
    #: Hosts' instances are running: look again soon.
    busy: bool = False

    def timer(self, at: dt.datetime) -> None:
        self.wake = at if self.wake is None else min(self.wake, at)


# -- hosts' instances ------------------------------------------------------------------


def start_part(p: RolloutPass, workflow: Workflow, host: str, part: str) -> str:
    """Start ``workflow`` on ``host`` alone, as its own instance (committed with the
    pass): the durable driver runs it like any instance, on this host only."""
    iid = str(uuid.uuid4())
    ctx = p.detail.context
    p.children.append(
        ChildInstance(
            id=iid,
            state=InstanceState.new([s.id for s in workflow.steps]),
            params=p.params,
            # In-process the part runs over an inventory of its one host: steps that
            # name no targets take that host here too.
            targets=host if host != _ALL else p.detail.record.targets,
            context={
                "actor": ctx.get("actor") or {},
                "pins": ctx.get("pins") or {},
                "definition": workflow_to_dict(workflow),
                **({"hosts": [host]} if host != _ALL else {}),
                "parent": p.detail.record.id,
                "part": part,
            },
        )
    )
    return iid


def part_ended(p: RolloutPass, iid: str) -> bool:
    if any(c.id == iid for c in p.children):
        return False
    rec = p.status_of(iid)
    return rec is None or rec.state.status.terminal


def admit(p: RolloutPass, candidates: Sequence[str], active: Sequence[str]) -> list[str]:
    """Which of ``candidates`` may start now: at most ``forks`` hosts of the wave at
    once, ``per_group`` per group (the workflow's throttle, else the defaults)."""
    t = p.workflow.throttle
    forks = t.forks or p.policy.forks
    per_group = t.per_group if t.per_group is not None else p.policy.per_group
    groups: Mapping[str, str] = p.rollout.get("groups") or {}
    running = list(active)
    out: list[str] = []
    for host in candidates:
        if len(running) >= forks:
            break
        if per_group is not None:
            mine = groups.get(host, "")
            if sum(1 for h in running if groups.get(h, "") == mine) >= per_group:
                continue
        running.append(host)
        out.append(host)
    return out


def fan_out(
    p: RolloutPass,
    hosts: Sequence[str],
    kids: dict[str, str],
    workflow: Workflow,
    part: str,
) -> bool:
    """Start ``workflow`` on the hosts not started yet (within the throttle, unless
    paused or aborted); True once nothing runs and nothing more will start."""
    r = p.rollout
    running = [h for h, iid in kids.items() if not part_ended(p, iid)]
    todo = [h for h in hosts if h not in kids]
    if todo and not r["paused"] and not r["aborted"]:
        admitted = admit(p, todo, running)
        delay = p.workflow.throttle.delay or p.policy.delay
        if delay > 0 and admitted:
            # ``delay`` spaces the hosts' starts, as the dispatcher and the workers do:
            # one start per ``delay``, the next on a timer (it survives a restart).
            last = when(r.get("last_start"))
            due = last + dt.timedelta(seconds=delay) if last is not None else p.now
            if p.now < due:
                admitted = []
                p.timer(due)
            else:
                admitted = admitted[:1]
                r["last_start"] = iso(p.now)
                p.timer(p.now + dt.timedelta(seconds=delay))
        for host in admitted:
            kids[host] = start_part(p, workflow, host, part)
            running.append(host)
            todo.remove(host)
    if running:
        p.busy = True
    return not running and (not todo or r["aborted"])


def merged_results(p: RolloutPass, kids: Mapping[str, str]) -> dict[str, StepResult]:
    return merge_results(p.results_of(iid) for iid in kids.values())


# -- waves -------------------------------------------------------------------------------


def run_wave(p: RolloutPass) -> None:
    """Move the current wave (and the next ones, as far as they can go now)."""
    r = p.rollout
    spec = p.workflow.rollout
    while r["phase"] == "waves":
        wave = r["waves"][r["current"]]
        if wave["status"] in (WaveStatus.PENDING.value, WaveStatus.WAITING_WINDOW.value):
            if r["aborted"]:
                settle_rollout(p)
                return
            if r["paused"] or not _fits(p, wave):
                return
            wave["status"] = WaveStatus.RUNNING.value
            wave["started_at"] = iso(p.now)
        if wave["status"] == WaveStatus.RUNNING.value:
            woven, _ = with_captures(p.workflow, r["marker"])
            # A rollout runs each host as its own instance (a failed host does not hold
            # the others back); without one, the wave is one instance of everything.
            hosts = wave["hosts"] if spec is not None else [_ALL]
            if not fan_out(p, hosts, wave["children"], woven, "wave"):
                return
            _judge(p, wave)
            continue
        if wave["status"] != WaveStatus.SOAKING.value or spec is None:
            return
        if not wave.get("soak_check"):
            if r["aborted"]:
                _end_wave(p, wave)
                continue
            until = when(wave["soak_until"])
            if r["paused"] or (until is not None and p.now < until):
                if until is not None and p.now < until:
                    p.timer(until)
                return
            if not spec.verification_tasks:
                _end_wave(p, wave)
                continue
            wave["soak_check"] = True
        check = verification_task_workflow(p.workflow, spec.verification_tasks)
        failed = wave["failed_hosts"]
        healthy = [h for h in wave["hosts"] if h not in failed]
        if not fan_out(p, healthy, wave["soak_children"], check, "soak"):
            return
        results = merged_results(p, wave["soak_children"])
        wave["soak_results"] = {k: v.to_dict() for k, v in results.items()}
        again, gate = judge_soak(Gate(**wave["gate"]), healthy, results, spec.verification_tasks)
        failed.update({h: f.to_dict() for h, f in again.items()})
        wave["gate"] = gate.to_dict()
        r["failed_so_far"] += len(again)
        _end_wave(p, wave)


def _fits(p: RolloutPass, wave: dict[str, Any]) -> bool:
    """Whether the wave may start now: every host inside an open maintenance window
    with the wave's estimated duration left (the engine's :func:`fit_wave`); else it
    waits visibly (until when, and why) on a timer, or stops the rollout when no
    instant within the horizon fits."""
    r = p.rollout
    covering: Mapping[str, Sequence[str]] = r.get("windows") or {}
    if not covering:
        return True
    windows = {
        h: tuple(
            w
            for sel in covering.get(h, ())
            if sel in p.workflow.windows
            for w in window_objects(sel, p.workflow.windows[sel])
        )
        for h in wave["hosts"]
    }
    spec = p.workflow.rollout
    previous = r["waves"][wave["index"] - 1] if wave["index"] else None
    measured = wave_result(previous).duration if previous is not None else None
    estimate = (spec.wave_duration if spec is not None else None) or measured or 0.0
    fit = fit_wave(windows, p.now, estimate)
    if fit.status is FitStatus.NOW:
        return True
    if fit.status is FitStatus.WILL_NOT_FIT:
        wave["status"] = WaveStatus.FAILED.value
        wave["wait_reason"] = f"wave {wave['index'] + 1} will not fit: {fit.reason}"
        r["stopped"] = wave["wait_reason"]
        settle_rollout(p)
        return False
    assert fit.starts_at is not None
    wave["status"] = WaveStatus.WAITING_WINDOW.value
    wave["waited_for_window_until"] = iso(fit.starts_at)
    wave["wait_reason"] = fit.reason
    p.timer(fit.starts_at)
    return False


def _judge(p: RolloutPass, wave: dict[str, Any]) -> None:
    """Every host of the wave ended: its verdict, then soak, the next wave or a stop."""
    r = p.rollout
    spec = p.workflow.rollout
    kids: Mapping[str, str] = wave["children"]
    not_succeeded: dict[str, str] = {}
    for host, iid in kids.items():
        rec = p.status_of(iid)
        if rec is None or rec.state.status is not InstanceStatus.SUCCEEDED:
            not_succeeded[host] = rec.state.message if rec is not None else "instance deleted"
    _, captures = with_captures(p.workflow, r["marker"])
    verdict = judge_wave(
        p.workflow,
        captures,
        r["marker"],
        wave["hosts"],
        merged_results(p, kids),
        p.params,
        not_succeeded=not_succeeded,
        failed_before=r["failed_so_far"],
        total=r["total"],
        instance_ok=_ALL not in not_succeeded,
        instance_message=not_succeeded.get(_ALL, ""),
    )
    wave["failed_hosts"] = {h: f.to_dict() for h, f in verdict.failures.items()}
    evidence: dict[str, dict[str, Any]] = {}
    for ev in verdict.evidence:
        evidence.setdefault(ev.verification, {})[ev.host] = ev.to_dict()
    wave["evidence"] = evidence
    r["failed_so_far"] += len(verdict.failures)
    if r["aborted"]:
        wave["status"] = WaveStatus.ABORTED.value
        wave["finished_at"] = iso(p.now)
        settle_rollout(p)
        return
    wave["gate"] = verdict.gate.to_dict()
    last = r["current"] == len(r["waves"]) - 1
    if verdict.gate.passed and spec is not None and spec.soak and not last:
        wave["status"] = WaveStatus.SOAKING.value
        until = p.now + dt.timedelta(seconds=spec.soak)
        wave["soak_until"] = iso(until)
        p.timer(until)
        return
    _end_wave(p, wave)


def _end_wave(p: RolloutPass, wave: dict[str, Any]) -> None:
    r = p.rollout
    wave["finished_at"] = iso(p.now)
    gate = wave.get("gate") or {}
    passed = bool(gate.get("passed"))
    wave["status"] = (WaveStatus.SUCCEEDED if passed else WaveStatus.FAILED).value
    if not passed:
        r["stopped"] = f"stopped at wave {wave['index'] + 1}: {gate.get('why', '')}"
        settle_rollout(p)
    elif r["current"] == len(r["waves"]) - 1:
        settle_rollout(p)
    else:
        r["current"] += 1


def settle_rollout(p: RolloutPass) -> None:
    """The rollout's status once its waves are over, as the engine's :func:`settle`
    decides it; with ``auto_rollback`` a stop rolls back at once."""
    r = p.rollout
    run = rollout_run(r, p.workflow, p.params, lambda _: {})
    settle(run, aborted=r["aborted"], stopped=r["stopped"], total=r["total"])
    for stored, wave in zip(r["waves"], run.waves, strict=True):
        stored["status"] = wave.status.value
    r["status"], r["message"] = run.status.value, run.message
    spec = p.workflow.rollout
    if run.status is RolloutStatus.FAILED and r["stopped"] and spec and spec.auto_rollback:
        begin_rollback(r)
    else:
        r["phase"] = "done"

"""Rolling back a server-run rollout, one pass at a time: newest wave first, each host
on its own, each step's rollback command as a one-step instance on that host.

The decisions are the in-process runner's (:mod:`muster.engine.rollout_rollback`):
which steps a host rolls back (:func:`steps_to_undo`), when an unreachable host is
tried again (:func:`retry_rollback`, after the spec's retry delays, here a timer in
the store) and when it is flagged; the state lives in the rollout document
(``rollback``: the queue of waves, each host's progress and outcome).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from muster.domain.rollout_spec import RetrySpec
from muster.domain.workflows import StepResult
from muster.domain.workflows.rollout_steps import rollback_workflow
from muster.engine.rollout_result import (
    RollbackOutcome,
    RollbackState,
    RolloutStatus,
    WaveStatus,
)
from muster.engine.rollout_rollback import (
    end_rollback_step,
    finish_rollback,
    retry_rollback,
    steps_to_undo,
)
from muster.services.rollout_state import iso, outcome_from, when
from muster.services.rollout_waves import (
    RolloutPass,
    admit,
    merged_results,
    part_ended,
    start_part,
)

__all__ = ["run_rollback"]


def run_rollback(p: RolloutPass) -> None:
    """Roll back the newest wave not rolled back yet: on each host, each step's
    rollback command as its own instance, in order; an unreachable host is tried
    again after the retry delays, then flagged."""
    r = p.rollout
    rb = r["rollback"]
    spec = p.workflow.rollout
    retry = spec.rollback_retry if spec is not None else RetrySpec(tries=1)
    while rb["queue"]:
        index = rb["queue"][0]
        wave = r["waves"][index]
        wave["status"] = WaveStatus.ROLLING_BACK.value
        results: dict[str, StepResult] | None = None
        ready: list[str] = []
        for host in wave["hosts"]:
            hs = rb["hosts"].get(host)
            if hs is None:
                results = results if results is not None else merged_results(p, wave["children"])
                steps = steps_to_undo(p.workflow, results, host)
                outcome = RollbackOutcome(host, index, RollbackState.NOTHING_TO_DO)
                outcome.started_at = p.now
                hs = {"steps": steps, "step": 0, "waits": retry.delays(), "child": None}
                hs.update(retry_at=None, failed=[], done=not steps)
                if not steps:
                    outcome.message = "no step with a rollback command ran on this host"
                    outcome.finished_at = p.now
                rb["hosts"][host] = hs
                rb["outcomes"][host] = outcome.to_dict()
            if hs["done"]:
                continue
            if hs["child"] is not None:
                if not part_ended(p, hs["child"]):
                    p.busy = True
                    continue
                _attempt_ended(p, host, hs, retry)
            if hs["done"] or hs["child"] is not None:
                continue
            at = when(hs["retry_at"])
            if at is not None and at > p.now:
                p.timer(at)
                continue
            ready.append(host)
        active = [h for h in wave["hosts"] if rb["hosts"][h]["child"]]
        for host in admit(p, ready, active):
            hs = rb["hosts"][host]
            step = p.workflow.step(hs["steps"][hs["step"]])
            hs["child"] = start_part(p, rollback_workflow(p.workflow, step), host, "rollback")
            hs["retry_at"] = None
            outcome = outcome_from(rb["outcomes"][host])
            outcome.attempts += 1
            rb["outcomes"][host] = outcome.to_dict()
            p.busy = True
        if not all(rb["hosts"][h]["done"] for h in wave["hosts"]):
            return
        flagged = any(RollbackState(rb["outcomes"][h]["state"]).flagged for h in wave["hosts"])
        wave["status"] = (WaveStatus.ROLLBACK_FAILED if flagged else WaveStatus.ROLLED_BACK).value
        rb["queue"].pop(0)
    flagged_hosts = sorted(
        h for h, o in rb["outcomes"].items() if RollbackState(o["state"]).flagged
    )
    if flagged_hosts:
        r["status"] = RolloutStatus.ROLLBACK_FAILED.value
        r["message"] += f"; rollback failed on {', '.join(flagged_hosts)} (flagged)"
    else:
        r["status"] = RolloutStatus.ROLLED_BACK.value
        r["message"] += "; rolled back"
    r["phase"] = "done"


def _attempt_ended(p: RolloutPass, host: str, hs: dict[str, Any], retry: RetrySpec) -> None:
    """A rollback attempt's instance ended: record it, then retry, next step or done."""
    rb = p.rollout["rollback"]
    outcome = outcome_from(rb["outcomes"][host])
    rec = p.status_of(hs["child"])
    result = p.results_of(hs["child"]).get("rollback")
    got = result.hosts.get(host) if result is not None else None
    why = rec.state.message if rec is not None else "its instance was deleted"
    steps: list[str] = hs["steps"]
    if got is not None:
        outcome.steps[steps[hs["step"]]] = got
    hs["child"] = None
    if retry_rollback(got, bool(hs["waits"])):
        wait = float(hs["waits"].pop(0))
        hs["retry_at"] = iso(p.now + dt.timedelta(seconds=wait))
        p.timer(p.now + dt.timedelta(seconds=wait))
    elif end_rollback_step(outcome, steps, hs["step"], got, why, hs["failed"], p.now):
        hs["done"] = True
    else:
        hs["step"] += 1
        hs["waits"] = retry.delays()
        if hs["step"] >= len(steps):
            finish_rollback(outcome, steps, hs["failed"], p.now)
            hs["done"] = True
    rb["outcomes"][host] = outcome.to_dict()

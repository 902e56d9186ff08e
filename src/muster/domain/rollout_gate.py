"""Judging a rollout wave, pure: its merged step results, its verification evidence,
and the gate that lets the next wave start.

The gate fails when a verification task or a gating verification failed on a
host of the wave (whatever the threshold), or when the failed hosts breach the
failure threshold (counted per wave, or over the rollout so far against its
whole target).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from muster.domain.rollout import HostFailure, host_failures
from muster.domain.rollout_spec import RolloutSpec, ThresholdScope
from muster.domain.verification import HostEvidence, evaluate, parse_capture
from muster.domain.workflows.model import Workflow
from muster.domain.workflows.results import StepResult
from muster.domain.workflows.rollout_steps import CaptureSteps

__all__ = [
    "Gate",
    "WaveVerdict",
    "judge_gate",
    "judge_soak",
    "judge_wave",
    "merge_results",
    "wave_evidence",
]


@dataclass(frozen=True, slots=True)
class Gate:
    """The check between a wave and the next: passed, and why not."""

    passed: bool
    why: str = ""
    failed: int = 0
    counted: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "why": self.why,
            "failed": self.failed,
            "counted": self.counted,
        }


def merge_results(
    all_results: Iterable[Mapping[str, StepResult]], *, skip: Iterable[str] = ()
) -> dict[str, StepResult]:
    """One StepResult per step with every host's outcome (later results win per host)."""
    left_out = set(skip)
    out: dict[str, StepResult] = {}
    for results in all_results:
        for sid, result in results.items():
            if sid in left_out:
                continue
            mine = out.get(sid)
            if mine is None:
                out[sid] = result
            else:
                out[sid] = StepResult(
                    sid, max(mine.attempt, result.attempt), {**mine.hosts, **result.hosts}
                )
    return out


def wave_evidence(
    workflow: Workflow,
    captures: CaptureSteps,
    marker: str,
    hosts: Sequence[str],
    results: Mapping[str, StepResult],
    params: Mapping[str, object],
) -> list[HostEvidence]:
    """Each verification's evidence for each host of the wave its steps ran on.

    A capture that did not succeed (the host failed before or was unreachable)
    is missing, and the evidence says so rather than passing."""
    out: list[HostEvidence] = []
    for v in workflow.verifications:
        before = results.get(captures.before[v.name])
        after = results.get(captures.after[v.name])
        for host in hosts:
            b = before.hosts.get(host) if before is not None else None
            a = after.hosts.get(host) if after is not None else None
            if b is None and a is None:
                continue  # the verification's steps do not run on this host
            out.append(
                evaluate(
                    v,
                    host,
                    parse_capture(b.stdout, marker) if b is not None and b.succeeded else None,
                    parse_capture(a.stdout, marker) if a is not None and a.succeeded else None,
                    params,
                )
            )
    return out


def judge_gate(
    spec: RolloutSpec | None,
    hosts: Sequence[str],
    failures: Mapping[str, HostFailure],
    *,
    failed_so_far: int,
    total: int,
    instance_ok: bool = True,
    instance_message: str = "",
) -> Gate:
    """Whether the next wave may start. Without a rollout spec (one wave of
    everything) any failure fails it, as does an instance that failed on its own."""
    if spec is None:
        ok = not failures and instance_ok
        why = ""
        if not ok:
            why = instance_message or (
                f"{len(failures)} host(s) failed: {', '.join(sorted(failures)[:5])}"
            )
        return Gate(ok, why, len(failures), len(hosts))
    if spec.threshold_scope is ThresholdScope.ROLLOUT:
        failed, counted = failed_so_far, total
    else:
        failed, counted = len(failures), len(hosts)
    gated = sorted(h for h, f in failures.items() if f.gate)
    whys: list[str] = []
    if gated:
        shown = "; ".join(f"{h}: {failures[h].detail}" for h in gated[:5])
        whys.append(f"verification failed on {len(gated)} host(s): {shown}")
    if spec.failure_threshold.breached(failed, counted):
        whys.append(
            f"{failed} of {counted} host(s) failed, over the failure threshold "
            f"({spec.failure_threshold.text()} per {spec.threshold_scope.value})"
        )
    return Gate(not whys, "; ".join(whys), failed, counted)


@dataclass(frozen=True, slots=True)
class WaveVerdict:
    """A wave judged: each failed host's first reason, each host's evidence, the gate."""

    failures: dict[str, HostFailure]
    evidence: list[HostEvidence]
    gate: Gate


def judge_wave(
    workflow: Workflow,
    captures: CaptureSteps,
    marker: str,
    hosts: Sequence[str],
    results: Mapping[str, StepResult],
    values: Mapping[str, object],
    *,
    not_succeeded: Mapping[str, str],
    failed_before: int,
    total: int,
    instance_ok: bool = True,
    instance_message: str = "",
) -> WaveVerdict:
    """Judge a wave from its hosts' merged step results, as both the in-process
    engine and the server's durable driver do (one function: the same results give
    the same gate wherever the wave ran).

    ``not_succeeded`` maps a host whose own instance did not succeed to its message:
    one that failed for no step's fault (an approval refused) still did not get its
    change. ``failed_before`` counts failed hosts of the earlier waves."""
    spec = workflow.rollout
    evidence = wave_evidence(workflow, captures, marker, hosts, results, values)
    failures = host_failures(
        hosts,
        results,
        evidence,
        verification_tasks=spec.verification_tasks if spec is not None else (),
        gating=[v.name for v in workflow.verifications if v.gate],
        labels=captures.labels(),
    )
    for host, message in not_succeeded.items():
        if host in hosts and host not in failures:
            failures[host] = HostFailure(host, "workflow_failed", message)
    gate = judge_gate(
        spec,
        hosts,
        failures,
        failed_so_far=failed_before + len(failures),
        total=total,
        instance_ok=instance_ok,
        instance_message=instance_message,
    )
    return WaveVerdict(failures, evidence, gate)


def judge_soak(
    gate: Gate,
    healthy: Sequence[str],
    results: Mapping[str, StepResult],
    verification_tasks: Sequence[str],
) -> tuple[dict[str, HostFailure], Gate]:
    """The verification tasks run again after the soak on the wave's healthy hosts:
    the hosts that fail them now (marked as failing after the soak) and the gate."""
    again = host_failures(healthy, results, verification_tasks=verification_tasks)
    failed = {
        name: HostFailure(
            name, failure.reason, f"after the soak: {failure.detail}", failure.step, True
        )
        for name, failure in again.items()
    }
    if not again:
        return failed, gate
    shown = "; ".join(f"{h}: {f.detail}" for h, f in sorted(again.items())[:5])
    return failed, Gate(
        False,
        f"verification failed after the soak on {len(again)} host(s): {shown}",
        gate.failed + len(again),
        gate.counted,
    )

"""Turn a :class:`~muster.engine.rollout_result.RolloutRun` into a publishable report.

The report (format :data:`~muster.domain.rollout_report.REPORT_FORMAT`) is
``RolloutRun.to_dict()`` plus what a reader of the rollout view needs without
recomputing it: each host's wave, state and reason, its rollback outcome,
whether it is flagged, and its evidence from every verification. Secret
parameter values are masked in every string before the document leaves the
process (the server masks again on publish).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from muster.domain.params import ParameterType
from muster.domain.rollout_report import REPORT_FORMAT, HostState, mask_document
from muster.domain.secret import Secret
from muster.domain.workflows import Workflow
from muster.engine.rollout_result import RollbackState, RolloutRun, WaveResult, WaveStatus

__all__ = ["report_document", "secret_values"]

_ROLLBACK_STATE = {
    RollbackState.ROLLED_BACK: HostState.ROLLED_BACK,
    RollbackState.FAILED: HostState.ROLLBACK_FAILED,
    RollbackState.UNREACHABLE: HostState.ROLLBACK_FAILED,
}
_RUNNING = (WaveStatus.PENDING, WaveStatus.WAITING_WINDOW, WaveStatus.RUNNING, WaveStatus.SOAKING)


def secret_values(workflow: Workflow, params: Mapping[str, object] | None) -> list[str]:
    """The clear values given for ``workflow``'s secret parameters."""
    secret_names = {p.name for p in workflow.parameters if p.type is ParameterType.SECRET}
    out: list[str] = []
    for name, value in (params or {}).items():
        if name in secret_names and value not in (None, ""):
            out.append(value.reveal() if isinstance(value, Secret) else str(value))
    return out


def _host_state(run: RolloutRun, wave: WaveResult, host: str) -> tuple[HostState, str]:
    outcome = run.rollback.get(host)
    failure = wave.failed_hosts.get(host)
    reason = ""
    if failure is not None:
        reason = f"{failure.reason}" + (f" at {failure.step}" if failure.step else "")
        if failure.detail:
            reason += f": {failure.detail}"
    if outcome is not None and outcome.state in _ROLLBACK_STATE:
        if outcome.message:
            reason = f"{reason}; {outcome.message}" if reason else outcome.message
        return _ROLLBACK_STATE[outcome.state], reason
    if failure is not None:
        return HostState.FAILED, reason
    if wave.status is WaveStatus.NOT_RUN:
        return HostState.NOT_RUN, "an earlier wave stopped the rollout"
    if wave.status in _RUNNING:
        return HostState.RUNNING, ""
    return HostState.SUCCEEDED, ""


def _hosts(run: RolloutRun) -> dict[str, dict[str, Any]]:
    flagged = set(run.flagged_hosts)
    out: dict[str, dict[str, Any]] = {}
    for wave in run.waves:
        for host in wave.hosts:
            state, reason = _host_state(run, wave, host)
            evidence = [
                by_host[host].to_dict()
                for by_host in run.verification_results.values()
                if host in by_host
            ]
            rollback = run.rollback.get(host)
            out[host] = {
                "wave": wave.index,
                "state": state.value,
                "reason": reason,
                "rollback": rollback.state.value if rollback is not None else None,
                "flagged": host in flagged,
                "passed": all(e["passed"] for e in evidence),
                "drift": sorted({k for e in evidence for k in e["drift"]}),
                "evidence": evidence,
            }
    return out


def report_document(
    run: RolloutRun,
    *,
    workflow: Workflow | None = None,
    params: Mapping[str, object] | None = None,
    secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """The rollout as one JSON-able report, secrets masked.

    Given the ``workflow`` and the ``params`` it ran with, the values of its
    secret parameters are masked (and its other parameters listed); ``secrets``
    adds any other values to mask.
    """
    doc = run.to_dict()
    hidden = list(secrets)
    if workflow is not None:
        hidden += secret_values(workflow, params)
        secret_names = [p.name for p in workflow.parameters if p.type is ParameterType.SECRET]
        doc["parameters"] = {
            k: "***" if k in secret_names else v
            for k, v in (params or {}).items()
            if isinstance(v, str | int | float | bool)
        }
        doc["secret_parameters"] = secret_names
    doc["format"] = REPORT_FORMAT
    doc["hosts"] = _hosts(run)
    return mask_document(doc, hidden)

"""A published rollout report as data: its shape, its masking, its identity.

A report is the JSON document of one finished (or stopped) rollout: waves and
their hosts' states, the gate between waves with its verification result, the
rollback lane, flagged hosts and every host's evidence (what was captured
before and after, each comparison, pass/fail, unexpected drift). The engine
builds it from a :class:`~muster.engine.rollout_result.RolloutRun`
(:func:`muster.engine.rollout_report.report_document`); the server stores it
as published, after :func:`mask_document`, and identifies the content by
:func:`document_hash` so re-publishing the same document is a no-op.

Pure: no I/O, the caller passes the secret values in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from muster.domain.output import mask_all
from muster.domain.secret import MASK
from muster.errors import ValidationError

__all__ = [
    "REPORT_FORMAT",
    "HostState",
    "ReportSummary",
    "check_document",
    "document_hash",
    "host_entries",
    "mask_document",
    "secret_parameter_values",
    "summarize",
]

#: The document's ``format``; a reader refuses one it does not know.
REPORT_FORMAT: Final = "muster.rollout-report/1"
_ID_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
_MAX_ID: Final = 128


class HostState(StrEnum):
    """One host's state in the rollout view (what colours it)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_RUN = "not_run"
    RUNNING = "running"
    ROLLED_BACK = "rolled_back"
    #: Its rollback failed or could not reach it: flagged, never hidden.
    ROLLBACK_FAILED = "rollback_failed"


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """The columns a report is listed and found by."""

    id: str
    workflow: str
    status: str
    started_at: str | None
    finished_at: str | None
    hosts: int
    flagged: int


def _mask(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        return mask_all(value, secrets)
    if isinstance(value, Mapping):
        return {mask_all(str(k), secrets): _mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, secrets) for v in value]
    return value


def secret_parameter_values(doc: Mapping[str, Any]) -> list[str]:
    """The clear values of the document's own secret parameters (``parameters`` named
    in ``secret_parameters``), which must never be stored."""
    params = doc.get("parameters")
    names = doc.get("secret_parameters")
    if not isinstance(params, Mapping) or not isinstance(names, list):
        return []
    return [
        str(params[n])
        for n in names
        if isinstance(n, str) and params.get(n) not in (None, "", MASK)
    ]


def mask_document(doc: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """``doc`` with every occurrence of every secret replaced by ``***`` in every string
    (keys included): the given ``secrets`` and the document's own secret parameters."""
    values = sorted({s for s in (*secrets, *secret_parameter_values(doc)) if s}, key=len)
    values.reverse()
    masked: dict[str, Any] = _mask(dict(doc), values)
    return masked


def document_hash(doc: Mapping[str, Any]) -> str:
    """SHA-256 of the document's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _need(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind):
        raise ValidationError(f"a rollout report needs {key!r}: {what}", field=key)
    return value


def check_document(doc: object) -> Mapping[str, Any]:
    """``doc`` if it has a rollout report's shape; else a ValidationError naming the key."""
    if not isinstance(doc, Mapping):
        raise ValidationError("a rollout report must be a JSON object", field="document")
    fmt = doc.get("format")
    if fmt is not None and fmt != REPORT_FORMAT:
        raise ValidationError(
            f"unknown rollout report format {fmt!r} (this server reads {REPORT_FORMAT})",
            field="format",
        )
    rid = _need(doc, "id", str, "the rollout's id (a string)")
    if not rid or len(rid) > _MAX_ID or not set(rid) <= _ID_CHARS:
        raise ValidationError(
            f"a rollout id is 1-{_MAX_ID} letters, digits and - _ . : (got {rid[:40]!r})",
            field="id",
        )
    _need(doc, "workflow", str, "the workflow's name (a string)")
    _need(doc, "status", str, "the rollout's status (a string)")
    waves = _need(doc, "waves", list, "a list of waves")
    for i, wave in enumerate(waves):
        if not isinstance(wave, Mapping) or not isinstance(wave.get("hosts"), list):
            raise ValidationError(
                f"waves[{i}] must be an object with a list of hosts", field="waves"
            )
    for key in ("verification_results", "rollback"):
        if key in doc and not isinstance(doc[key], Mapping):
            raise ValidationError(f"{key!r} must be an object", field=key)
    return doc


_ROLLBACK_STATE: Final = {
    "rolled_back": HostState.ROLLED_BACK,
    "failed": HostState.ROLLBACK_FAILED,
    "unreachable": HostState.ROLLBACK_FAILED,
}
_UNDERWAY: Final = frozenset({"pending", "waiting_window", "running", "soaking"})


def _failure_reason(failure: Mapping[str, Any]) -> str:
    reason = str(failure.get("reason") or "failed")
    if failure.get("step"):
        reason += f" at {failure['step']}"
    if failure.get("detail"):
        reason += f": {failure['detail']}"
    return reason


def _host_state(
    wave: Mapping[str, Any], host: str, rollback: Mapping[str, Any]
) -> tuple[HostState, str]:
    failures = wave.get("failed_hosts")
    failure = failures.get(host) if isinstance(failures, Mapping) else None
    reason = _failure_reason(failure) if isinstance(failure, Mapping) else ""
    outcome = rollback.get(host)
    if isinstance(outcome, Mapping) and outcome.get("state") in _ROLLBACK_STATE:
        said = str(outcome.get("message") or "")
        if said:
            reason = f"{reason}; {said}" if reason else said
        return _ROLLBACK_STATE[outcome["state"]], reason
    if reason:
        return HostState.FAILED, reason
    if wave.get("status") == "not_run":
        return HostState.NOT_RUN, "an earlier wave stopped the rollout"
    if wave.get("status") in _UNDERWAY:
        return HostState.RUNNING, ""
    return HostState.SUCCEEDED, ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def host_entries(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each host of a checked document (``RolloutRun.to_dict()``'s shape): its wave,
    state and reason, rollback outcome, flag, pass/fail, drift keys and evidence from
    every verification. What the rollout view and the drift report read."""
    rollback: Mapping[str, Any] = _mapping(doc.get("rollback"))
    by_verification = _mapping(doc.get("verification_results"))
    listed = doc.get("flagged_hosts")
    flagged: list[Any] = listed if isinstance(listed, list) else []
    out: dict[str, dict[str, Any]] = {}
    for wave in doc["waves"]:
        for host in wave["hosts"]:
            state, reason = _host_state(wave, host, rollback)
            evidence = [
                by_host[host]
                for by_host in by_verification.values()
                if isinstance(by_host, Mapping) and isinstance(by_host.get(host), Mapping)
            ]
            outcome = rollback.get(host)
            out[host] = {
                "wave": wave.get("index", 0),
                "state": state.value,
                "reason": reason,
                "rollback": outcome.get("state") if isinstance(outcome, Mapping) else None,
                "flagged": host in flagged,
                "passed": all(e.get("passed") is not False for e in evidence),
                "drift": sorted({str(k) for e in evidence for k in e.get("drift") or ()}),
                "evidence": evidence,
            }
    return out


def summarize(doc: Mapping[str, Any]) -> ReportSummary:
    """The listed columns of a checked document."""
    hosts = {h for w in doc["waves"] for h in w["hosts"]}
    flagged = doc.get("flagged_hosts")
    return ReportSummary(
        id=doc["id"],
        workflow=doc["workflow"],
        status=doc["status"],
        started_at=doc.get("started_at") if isinstance(doc.get("started_at"), str) else None,
        finished_at=doc.get("finished_at") if isinstance(doc.get("finished_at"), str) else None,
        hosts=len(hosts),
        flagged=len(flagged) if isinstance(flagged, list) else 0,
    )

"""Store records as API responses: the one place that shapes what clients see.

Secret parameter values arrive here already masked (``***``) by the store;
nothing in this module can reveal one.
"""

from __future__ import annotations

from muster.domain.states import HostRunState, Priority
from muster.server.schemas.executions import (
    ApprovalNeedOut,
    ExecutionOut,
    HostResultOut,
    SkippedHostOut,
    ThrottleOut,
)
from muster.server.schemas.hosts import HostOut
from muster.server.schemas.scripts import ScriptOut, VersionOut
from muster.store.base import (
    ExecutionRecord,
    HostRecord,
    HostRunRecord,
    ScriptRecord,
    VersionRecord,
)

__all__ = ["execution_out", "host_out", "host_result_out", "script_out", "version_out"]


def version_out(v: VersionRecord) -> VersionOut:
    return VersionOut(
        number=v.number,
        version=v.number,
        content_hash=v.content_hash,
        created_at=v.created_at,
        shell=v.shell.value,
        body=v.body,
        parameters=[p.to_dict() for p in v.parameters],
        timeout=v.timeout,
        requires_approval=v.requires_approval,
        idempotent=v.idempotent,
    )


def script_out(
    s: ScriptRecord, v: VersionRecord, created: bool | None = None, *, approval_required: bool
) -> ScriptOut:
    """``requires_approval`` is the script's rule (``approval_required``), not the
    latest version's flag: the rule alone decides whether its runs wait."""
    return ScriptOut(
        id=s.id,
        name=s.name,
        version=v.number,
        content_hash=v.content_hash,
        shell=v.shell.value,
        body=v.body,
        parameters=[p.to_dict() for p in v.parameters],
        timeout=v.timeout,
        requires_approval=approval_required,
        idempotent=v.idempotent,
        description=s.description,
        tags=list(s.tags),
        created_at=s.created_at,
        updated_at=s.updated_at,
        created_version=created,
    )


def host_out(h: HostRecord) -> HostOut:
    return HostOut(
        id=h.id,
        name=h.name,
        address=h.address,
        port=h.port,
        user=h.user,
        transport=h.transport.value,
        platform=h.platform,
        shells=list(h.shells),
        effective_shells=list(h.to_host().effective_shells),
        labels=dict(h.labels),
        groups=list(h.groups),
        key_file=h.key_file,
        credential_ref=h.credential_ref,
    )


def host_result_out(r: HostRunRecord) -> HostResultOut:
    waiting = (
        r.waiting_reason
        if r.state in (HostRunState.QUEUED, HostRunState.PENDING_APPROVAL)
        else None
    )
    return HostResultOut(
        id=r.id,
        host=r.host_name,
        host_id=r.host_id,
        state=r.state.value,
        attempt=r.attempt,
        exit_code=r.exit_code,
        reason=r.reason,
        message=r.message,
        waiting_reason=waiting,
        queued_at=r.queued_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        duration=r.duration,
        stdout_tail=r.stdout_tail,
        stderr_tail=r.stderr_tail,
        stdout_truncated=r.stdout_truncated,
        stderr_truncated=r.stderr_truncated,
        stdout_bytes=r.stdout_bytes,
        stderr_bytes=r.stderr_bytes,
    )


def _approval_out(e: ExecutionRecord) -> ApprovalNeedOut | None:
    """Why the execution waited (or waits) for approval, as the gate recorded it."""
    need = e.policy.get("approval")
    if not need or not need.get("required"):
        return None
    return ApprovalNeedOut(
        reasons=[str(r) for r in need.get("reasons") or ()],
        retry_needs_approval=bool(need.get("retry_needs_approval", True)),
        decided_by=dict(need.get("decided_by") or {}),
    )


def execution_out(e: ExecutionRecord) -> ExecutionOut:
    skipped = [
        SkippedHostOut(host=r.host_name, reason=r.message or r.reason or "skipped")
        for r in e.host_runs
        if r.state is HostRunState.SKIPPED
    ]
    return ExecutionOut(
        id=e.id,
        kind=e.kind.value,
        status=e.status.value,
        description=e.description,
        script_id=e.script_id,
        script_version=e.script_version,
        content_hash=e.content_hash,
        priority=Priority(e.priority).name.lower(),
        parameter_values=dict(e.parameters),
        created_at=e.created_at,
        finished_at=e.finished_at,
        hosts=[host_result_out(r) for r in e.host_runs],
        skipped_hosts=skipped,
        counts={k: v for k, v in e.counts.items() if v},
        approval=_approval_out(e),
        throttle=ThrottleOut(
            forks=e.throttle.forks, per_group=e.throttle.per_group, delay=e.throttle.delay
        ),
    )

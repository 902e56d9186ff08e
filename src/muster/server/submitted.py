"""What happens right after an execution is stored: approval request, audit record.

Every face that submits work for a user (the API's execute, commands and
jobs; the console's execute form) calls :func:`after_submit` with the
caller, so an execution the approval gate held (``pending_approval``) gets
its request at once (requester = the caller, who then cannot approve it), and the audit
log holds who asked for what, from where, with which pinned script hash and
parameters (secret values already ``***``).
"""

from __future__ import annotations

from typing import Any

from muster.errors import MusterError
from muster.security.rbac import Principal
from muster.server.approvals import open_execution_approval
from muster.server.auth import client_address, security_store
from muster.store.base import ExecutionRecord

__all__ = ["after_submit"]


def after_submit(app: Any, request: Any, who: Principal, execution_id: str) -> ExecutionRecord:
    """Open the approval request if one is needed, audit the request; return the execution."""
    store = app.state.muster.store
    execution: ExecutionRecord = store.get_execution(execution_id)
    try:
        approval = open_execution_approval(app, execution, requester=who.name)
    except MusterError as exc:
        # The policy cannot be met (e.g. nobody but the requester may approve):
        # the execution is refused visibly rather than left waiting forever.
        approval = None
        store.reject_execution(execution.id, f"approval request not possible: {exc}")
        execution = store.get_execution(execution_id)
    security_store(app).record_audit(
        actor=who.name,
        action="execution.create",
        target=f"execution:{execution.id}",
        address=client_address(request),
        details={
            "kind": execution.kind.value,
            "script_id": execution.script_id,
            "script_version": execution.script_version,
            "content_hash": execution.content_hash,
            "job_type": execution.job_type,
            "command": execution.command,
            "parameters": dict(execution.parameters),
            "hosts": [r.host_name for r in execution.host_runs],
            "status": execution.status.value,
            "approval_id": approval.id if approval is not None else None,
            "approval_reasons": list((execution.policy.get("approval") or {}).get("reasons", [])),
        },
        secret_keys=execution.secret_fields,
    )
    app.state.muster.track(execution.id)
    return execution

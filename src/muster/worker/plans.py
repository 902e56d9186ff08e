"""Turn a claimed run into the Plan its host runs (script, command or job type)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from muster.domain.hosts import Host
from muster.domain.jobtypes import render_job
from muster.domain.planbuilder import (
    RUN_ID_TOKEN,
    build_command_plan,
    build_script_plan,
    command_env,
)
from muster.domain.plans import Plan
from muster.domain.scripts import Shell
from muster.errors import ValidationError
from muster.store.base import ClaimedRun, ExecutionKind

__all__ = ["plan_for", "plan_of_step"]


def plan_of_step(policy: Mapping[str, Any], run_id: str, env: Mapping[str, Any]) -> Plan:
    """A workflow step's stored plan for one host run: the token replaced by its id."""
    data = policy.get("plan")
    if not isinstance(data, Mapping):
        raise ValidationError("a plan execution without its plan", field="plan")
    text = json.dumps(data).replace(RUN_ID_TOKEN, run_id)
    fixed = {
        k: (v.replace(RUN_ID_TOKEN, run_id) if isinstance(v, str) else v) for k, v in env.items()
    }
    return Plan.from_dict(json.loads(text), fixed)


def plan_for(claim: ClaimedRun, host: Host) -> Plan:
    """The plan for ``claim`` on ``host``; a ValidationError means it cannot run there."""
    ex = claim.execution
    if ex.kind is ExecutionKind.SCRIPT:
        if claim.version is None:
            raise ValidationError("the pinned script version no longer exists", field="script_id")
        return build_script_plan(
            claim.version, claim.values, run_id=claim.run.id, platform=host.platform
        )
    if ex.kind is ExecutionKind.COMMAND:
        if not ex.command:
            raise ValidationError("a command execution without a command", field="command")
        return build_command_plan(
            ex.command,
            timeout=ex.timeout,
            shell=Shell(ex.shell or "sh"),
            run_id=claim.run.id,
            env=command_env(claim.values),
        )
    if ex.kind is ExecutionKind.PLAN:
        # The run id the engine gave this host (as in-process), else the host run's.
        run_ids = ex.policy.get("run_ids") or {}
        run_id = str(run_ids.get(claim.run.host_name) or claim.run.id)
        return plan_of_step(ex.policy, run_id, command_env(claim.values))
    if not ex.job_type:
        raise ValidationError("a job execution without a job type", field="type")
    if host.is_windows:
        raise ValidationError(
            "built-in job types are rendered for Windows as data only; they do not run here",
            field="type",
        )
    return render_job(ex.job_type, claim.values).linux

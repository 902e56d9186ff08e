"""One library script executed in waves: the execute API's ``rollout``.

The script version becomes a one-task rollout workflow
(:func:`~muster.domain.workflows.rollout_steps.script_rollout`), saved like
any definition and started for the caller, so the durable rollout driver runs
it exactly as it runs a pushed rollout: no second way of running waves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muster.domain.params import ParameterType, coerce_values
from muster.domain.scripts import ScriptVersion
from muster.domain.workflows import WorkflowError, validate, workflow_to_dict
from muster.domain.workflows.rollout_steps import script_rollout
from muster.engine.workflow_store import InstanceRecord
from muster.errors import ValidationError
from muster.services.actor import Actor
from muster.services.submission import resolve_hosts
from muster.services.workflows import Workflows

__all__ = ["start_script_rollout"]


def start_script_rollout(
    workflows: Workflows,
    actor: Actor,
    script: str,
    version: ScriptVersion,
    number: int,
    host_refs: list[str],
    values: Mapping[str, object],
    rollout: Mapping[str, Any],
    *,
    throttle: Mapping[str, Any] | None = None,
) -> InstanceRecord:
    """One script version in waves: a generated one-task rollout workflow
    (``NAME-rollout``, saved like any definition, so it is versioned and can be
    started again), started for the caller and run by the same durable driver.

    A script with secret parameters is refused: a value in a definition would be
    stored in clear (declare them as a workflow's parameters instead)."""
    secret = [p.name for p in version.parameters if p.type is ParameterType.SECRET]
    if secret:
        raise ValidationError(
            f"script {script!r} has secret parameter(s) {', '.join(secret)}: roll it "
            "out with a workflow that declares them as its own parameters",
            field="rollout",
        )
    coerced = coerce_values(version.parameters, dict(values))
    hosts = resolve_hosts(workflows.store, host_refs)
    spec = dict(rollout)
    verify, undo, shell = spec.pop("verify", None), spec.pop("rollback", None), "sh"
    shell = str(spec.pop("shell", shell))
    try:
        workflow = script_rollout(
            script,
            number,
            [h.name for h in hosts],
            spec,
            parameters=coerced,
            verify=verify,
            rollback=undo,
            shell=shell,
            throttle=throttle,
        )
        validate(workflow)
    except WorkflowError as exc:
        raise ValidationError(exc.message, field=f"rollout.{exc.field or ''}") from None
    record, _ = workflows.push(actor, None, workflow_to_dict(workflow))
    started = workflows.start(actor, record.name, {}, version=record.version)
    assert isinstance(started, InstanceRecord)
    return started

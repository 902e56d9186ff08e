"""Turn one host step of an instance into per-host plans: targets, references, quoting.

Both drivers (in-process, server) call :func:`prepare_step`, so a step renders
byte for byte the same on every face.

How a ``{{...}}`` reference enters a step:

* in a command or an inline script body, each reference becomes a
  placeholder of a synthetic ``string`` (or ``secret``) parameter and goes
  through :func:`muster.domain.render.render_text`, the rules every script
  parameter follows: in plain code one quoted literal word, inside quotes
  text that is literal there, otherwise an environment reference. A value
  (another step's output, say) can never become code;
* in script parameters, job fields, env values and approval titles it is
  substituted as text (the script's own parameter rendering, the job
  template or the environment then keep it literal); a secret must be the
  whole value there, and then stays a :class:`~muster.domain.secret.Secret`;
* in ``targets`` only ``{{params.NAME}}`` is allowed.

Workflow parameters are also in every host step's environment as
``MUSTER_PARAM_<NAME>`` (secrets only there), plus the workflow's and the
step's ``env``. A host whose references cannot be resolved (the step it
reads did not run there) is not dispatched: it fails with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.jobtypes import render_job
from muster.domain.params import (
    ParameterSpec,
    ParameterType,
    ParamValue,
    coerce_values,
    parameter_env,
    value_text,
)
from muster.domain.planbuilder import build_command_plan, build_script_plan
from muster.domain.plans import Plan
from muster.domain.render import render_body, render_text
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.secret import Secret
from muster.domain.selectors import select
from muster.domain.throttle import Throttle
from muster.domain.workflows.model import Step, StepType, WorkflowError
from muster.domain.workflows.refs import REF_RE, Reference, find_references, resolve
from muster.domain.workflows.results import StepResult
from muster.domain.workflows.validate import Graph
from muster.errors import ValidationError

__all__ = [
    "PREVIEW",
    "HostInputs",
    "StepLaunch",
    "UnresolvedForHost",
    "approval_title",
    "prepare_step",
    "render_host_inputs",
    "render_value_text",
    "secrets_of",
    "step_hosts",
    "step_targets",
]

_DEFAULT_TIMEOUT: Final = 300.0
_RUN_ID_BAD: Final = re.compile(r"[^A-Za-z0-9_-]")


class _Preview:
    """Marker: render references as ``<step_X.stdout>`` (a dry run has no results)."""


#: Pass as ``results`` to :func:`prepare_step` for a preview.
PREVIEW: Final = _Preview()


@dataclass(frozen=True, slots=True)
class StepLaunch:
    """A host step ready to dispatch: per-host plans, or per-host reasons it cannot run."""

    step_id: str
    attempt: int
    description: str
    shell: Shell
    hosts: tuple[Host, ...]
    plans: Mapping[str, Plan]
    #: Hosts that cannot run it, with the reason (they fail without being dispatched).
    problems: Mapping[str, str]
    throttle: Throttle
    timeout: float
    #: The rendered body or command text per host (secrets are never in it).
    bodies: Mapping[str, str] = field(default_factory=dict)


def step_targets(graph: Graph, step: Step, params: Mapping[str, Any], default: str | None) -> str:
    """The selector a host step runs on: its own, the workflow's, else the instance's."""
    raw = step.targets or graph.workflow.targets or default
    if raw is None:
        raise WorkflowError(
            "has no targets (give targets on the step, the workflow or the instance)",
            step=step.id,
            field="targets",
        )
    out: list[str] = []
    pos = 0
    for m, ref in find_references(raw, step=step.id, where="targets"):
        value = params.get(ref.param or "")
        if isinstance(value, Secret):
            raise WorkflowError("targets cannot read a secret", step=step.id, field="targets")
        out.append(raw[pos : m.start()])
        out.append("" if value is None else value_text(value))
        pos = m.end()
    out.append(raw[pos:])
    return "".join(out)


def step_hosts(
    graph: Graph,
    step_id: str,
    inventory: Inventory | Sequence[Host],
    params: Mapping[str, Any],
    default_targets: str | None = None,
) -> list[Host]:
    """The hosts a host step runs on (inventory order); a plain host list is used as is."""
    step = graph.steps[step_id]
    if not isinstance(inventory, Inventory):
        hosts = list(inventory)
        if step.targets is None and graph.workflow.targets is None:
            return hosts
        inv = Inventory()
        for host in hosts:
            inv.add_host(host)
        return select(inv, step_targets(graph, step, params, default_targets))
    return select(inventory, step_targets(graph, step, params, default_targets))


def render_value_text(value: Any) -> str:
    """A resolved value as text: None is empty, booleans true/false, JSON values as JSON."""
    if value is None:
        return ""
    if isinstance(value, Secret):
        raise TypeError("a secret has no text form")
    if isinstance(value, bool | int | float | str):
        return value_text(value)
    return json.dumps(value, sort_keys=True)


def _run_id(prefix: str, step_id: str, attempt: int, host: str) -> str:
    raw = f"{prefix}_{step_id}_{attempt}_{host}"
    return _RUN_ID_BAD.sub("_", raw)[:128].lstrip("_-") or "run"


def prepare_step(
    graph: Graph,
    step_id: str,
    attempt: int,
    *,
    hosts: Sequence[Host],
    params: Mapping[str, ParamValue],
    results: Mapping[str, StepResult] | _Preview,
    run_prefix: str,
    script: ScriptVersion | None = None,
) -> StepLaunch:
    """Render ``step_id``'s attempt for each of ``hosts``.

    ``params`` are the instance's coerced values (secrets as Secret);
    ``script`` is the resolved version of a named script step (an inline body
    needs none). Errors that concern the whole step (a bad job field, a
    script that is missing) raise WorkflowError; a host whose references
    cannot be resolved lands in ``problems``.
    """
    step = graph.steps[step_id]
    if not step.type.runs_on_hosts:
        raise WorkflowError(f"a {step.type.value} step runs on no host", step=step_id, field="type")
    version = _script_version(step, script)
    shell = _shell_of(step, version)
    timeout = step.timeout or (version.timeout if version is not None else _DEFAULT_TIMEOUT)
    plans: dict[str, Plan] = {}
    problems: dict[str, str] = {}
    bodies: dict[str, str] = {}
    for host in hosts:
        try:
            inputs = render_host_inputs(
                graph, step_id, host.name, params=params, results=results, script=script
            )
            plan, body = _plan(
                step, version, inputs, host, _run_id(run_prefix, step_id, attempt, host.name)
            )
        except UnresolvedForHost as exc:
            problems[host.name] = exc.message
            continue
        except WorkflowError:
            raise
        except ValidationError as exc:
            problems[host.name] = exc.message
            continue
        plans[host.name] = plan
        bodies[host.name] = body
    label = step.name or step.id
    return StepLaunch(
        step_id=step_id,
        attempt=attempt,
        description=f"workflow {graph.workflow.name}: step {label} (attempt {attempt})",
        shell=shell,
        hosts=tuple(hosts),
        plans=plans,
        problems=problems,
        throttle=_merge_throttle(graph.workflow.throttle, step.throttle),
        timeout=timeout,
        bodies=bodies,
    )


class UnresolvedForHost(WorkflowError):
    """A reference has no value on this host (the step it reads did not run there):
    that host fails, the others run."""


def _merge_throttle(outer: Throttle, inner: Throttle) -> Throttle:
    return Throttle(
        forks=inner.forks if inner.forks is not None else outer.forks,
        per_group=inner.per_group if inner.per_group is not None else outer.per_group,
        delay=inner.delay or outer.delay,
    )


def _script_version(step: Step, script: ScriptVersion | None) -> ScriptVersion | None:
    if step.type is not StepType.SCRIPT:
        return None
    ref = step.script
    assert ref is not None
    if ref.body is not None:
        return None
    if script is None:
        raise WorkflowError(f"script {ref.name!r} was not resolved", step=step.id, field="script")
    if step.timeout is not None:
        script = dataclasses.replace(script, timeout=step.timeout)
    return script


def _shell_of(step: Step, version: ScriptVersion | None) -> Shell:
    if version is not None:
        return version.shell
    if step.type is StepType.SCRIPT:
        assert step.script is not None
        return step.script.shell
    if step.type is StepType.JOB:
        return Shell.SH
    return step.shell


def _value(
    ref: Reference,
    params: Mapping[str, Any],
    results: Mapping[str, StepResult] | _Preview,
    host: str,
    step: Step,
) -> Any:
    if isinstance(results, _Preview):
        if ref.param is not None:
            value = params.get(ref.param)
            return value if value is not None else f"<params.{ref.param}>"
        return f"<{ref.text.strip()}>"
    try:
        return resolve(ref, params=params, results=results, host=host)
    except WorkflowError as exc:
        raise UnresolvedForHost(exc.message.split(": ", 1)[-1], step=step.id) from None


def _substitute_text(
    text: str,
    params: Mapping[str, Any],
    results: Mapping[str, StepResult] | _Preview,
    host: str,
    step: Step,
    where: str,
) -> str | Secret:
    """References substituted as plain text; a secret only as the whole value."""
    matches = list(find_references(text, step=step.id, where=where))
    if not matches:
        return text
    if len(matches) == 1 and matches[0][0].group(0) == text.strip():
        value = _value(matches[0][1], params, results, host, step)
        if isinstance(value, Secret):
            return value
        return render_value_text(value)
    out: list[str] = []
    pos = 0
    for m, ref in matches:
        value = _value(ref, params, results, host, step)
        if isinstance(value, Secret):
            raise WorkflowError(
                f"{{{{{ref.text}}}}} is a secret: it can only be the whole value of {where}",
                step=step.id,
                field=where,
            )
        out.append(text[pos : m.start()])
        out.append(render_value_text(value))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _text_env(
    env: Mapping[str, str],
    params: Mapping[str, Any],
    results: Mapping[str, StepResult] | _Preview,
    host: str,
    step: Step,
) -> dict[str, str | Secret]:
    return {k: _substitute_text(v, params, results, host, step, "env") for k, v in env.items()}


def _render_code(
    text: str,
    shell: Shell,
    params: Mapping[str, Any],
    results: Mapping[str, StepResult] | _Preview,
    host: str,
    step: Step,
    where: str,
) -> tuple[str, list[ParameterSpec], dict[str, ParamValue]]:
    """References in shell code become synthetic parameters rendered by the script rules."""
    specs: list[ParameterSpec] = []
    values: dict[str, ParamValue] = {}
    names: dict[str, str] = {}
    prefix = "__wf"
    while "${" + prefix in text:
        prefix += "_"

    def swap(m: re.Match[str]) -> str:
        ref_text = m.group(1)
        if ref_text not in names:
            name = f"{prefix}{len(names)}"
            names[ref_text] = name
            refs = list(find_references(m.group(0), step=step.id, where=where))
            value = _value(refs[0][1], params, results, host, step)
            if isinstance(value, Secret):
                specs.append(ParameterSpec(name, ParameterType.SECRET))
                values[name] = value
            else:
                specs.append(ParameterSpec(name))
                values[name] = render_value_text(value)
        return "${" + names[ref_text] + "}"

    templated = REF_RE.sub(swap, text)
    try:
        rendered = render_text(templated, shell, specs, values)
    except ValidationError as exc:
        # Name the reference, not the synthetic parameter.
        message = exc.message
        for ref_text, name in names.items():
            message = message.replace(f"'{name}'", f"{{{{{ref_text}}}}}")
        raise WorkflowError(message, step=step.id, field=where) from None
    return rendered, specs, values


@dataclass(frozen=True, slots=True)
class HostInputs:
    """What one host runs for a step, rendered but not yet a plan.

    Exactly one of ``command`` (a command step), ``body`` (an inline script),
    ``script_params`` (a named script: values still to be coerced by its
    version) or ``job_fields`` (a job) is set. ``env`` holds the workflow's
    parameters (``MUSTER_PARAM_*``, secrets wrapped), the workflow's and the
    step's env, and the variables that references in ``command``/``body``
    expand to. The server groups hosts with equal inputs into one execution.
    """

    step_id: str
    host: str
    shell: Shell
    timeout: float
    env: Mapping[str, str | Secret]
    command: str | None = None
    body: str | None = None
    script_params: Mapping[str, Any] | None = None
    job_fields: Mapping[str, Any] | None = None


def render_host_inputs(
    graph: Graph,
    step_id: str,
    host: str,
    *,
    params: Mapping[str, ParamValue],
    results: Mapping[str, StepResult] | _Preview,
    script: ScriptVersion | None = None,
) -> HostInputs:
    """Render ``step_id`` for ``host``: references resolved (same-host rule), quoted by
    the shell rules. Raises WorkflowError; a reference without a value on this host
    raises :class:`UnresolvedForHost` (fail that host only)."""
    step = graph.steps[step_id]
    if not step.type.runs_on_hosts:
        raise WorkflowError(f"a {step.type.value} step runs on no host", step=step_id, field="type")
    version = _script_version(step, script)
    shell = _shell_of(step, version)
    timeout = step.timeout or (version.timeout if version is not None else _DEFAULT_TIMEOUT)
    env: dict[str, str | Secret] = dict(parameter_env(graph.workflow.parameters, params))
    env.update(_text_env(graph.workflow.env, params, results, host, step))
    env.update(_text_env(step.env, params, results, host, step))
    if step.type is StepType.COMMAND:
        assert step.command is not None
        command, specs, values = _render_code(
            step.command, shell, params, results, host, step, "command"
        )
        env.update(parameter_env(specs, values))
        return HostInputs(step_id, host, shell, timeout, env, command=command)
    if step.type is StepType.JOB:
        fields = {
            k: (
                _substitute_text(v, params, results, host, step, "fields")
                if isinstance(v, str)
                else v
            )
            for k, v in step.job_fields.items()
        }
        if step.timeout is not None and "timeout" not in fields:
            fields["timeout"] = step.timeout
        return HostInputs(step_id, host, shell, timeout, env, job_fields=fields)
    assert step.script is not None
    if version is None:
        assert step.script.body is not None
        body, specs, values = _render_code(
            step.script.body, shell, params, results, host, step, "body"
        )
        env.update(parameter_env(specs, values))
        return HostInputs(step_id, host, shell, timeout, env, body=body)
    raw = {
        k: (
            _substitute_text(v, params, results, host, step, "parameters")
            if isinstance(v, str)
            else v
        )
        for k, v in step.parameters.items()
    }
    return HostInputs(step_id, host, shell, timeout, env, script_params=raw)


def _plan(
    step: Step,
    version: ScriptVersion | None,
    inputs: HostInputs,
    host: Host,
    run_id: str,
) -> tuple[Plan, str]:
    env = dict(inputs.env)
    if inputs.command is not None:
        plan = build_command_plan(
            inputs.command, timeout=inputs.timeout, shell=inputs.shell, env=env, run_id=run_id
        )
        return plan, inputs.command
    if inputs.job_fields is not None:
        assert step.job is not None
        try:
            job = render_job(step.job, inputs.job_fields)
        except ValidationError as exc:
            raise WorkflowError(
                exc.message, step=step.id, field=f"fields.{exc.field or ''}"
            ) from None
        return dataclasses.replace(job.linux, env={**env, **job.linux.env}), job.description
    if inputs.body is not None:
        inline = ScriptVersion(
            name=_script_name(step.id), shell=inputs.shell, body=inputs.body, timeout=inputs.timeout
        )
        plan = build_script_plan(inline, {}, run_id=run_id, platform=host.platform)
        return dataclasses.replace(plan, env={**env, **plan.env}), inputs.body
    assert version is not None and inputs.script_params is not None
    raw = dict(inputs.script_params)
    try:
        plan = build_script_plan(version, raw, run_id=run_id, platform=host.platform)
    except ValidationError as exc:
        raise WorkflowError(exc.message, step=step.id, field="parameters") from None
    body = render_body(version, coerce_values(version.parameters, raw))
    return dataclasses.replace(plan, env={**env, **plan.env}), body


def _script_name(step_id: str) -> str:
    return f"step-{step_id}"[:64]


def secrets_of(plans: Iterable[Plan]) -> tuple[str, ...]:
    """Every secret value the plans carry, for masking output."""
    out: list[str] = []
    for plan in plans:
        out.extend(plan.secrets)
    return tuple(dict.fromkeys(out))


def approval_title(
    graph: Graph,
    step_id: str,
    *,
    params: Mapping[str, ParamValue],
    results: Mapping[str, StepResult],
) -> str:
    """An approval step's title with its references substituted as text (for the
    approvals inbox); a secret shows as ``***``, a value with no result as empty."""
    step = graph.steps[step_id]
    title = step.approval.title if step.approval is not None else ""
    if not title:
        return f"workflow {graph.workflow.name}: step {step.name or step.id}"
    out: list[str] = []
    pos = 0
    for m, ref in find_references(title, step=step_id, where="title"):
        try:
            value = resolve(ref, params=params, results=results)
        except WorkflowError:
            value = None
        out.append(title[pos : m.start()])
        out.append("***" if isinstance(value, Secret) else render_value_text(value))
        pos = m.end()
    out.append(title[pos:])
    return "".join(out)

"""Read a workflow definition from YAML, JSON or plain data, and write it back.

Every problem names the step and the field (``step 'deploy': on_failure: ...``),
so an editor, the API or the CLI can point at it. Unknown keys are refused
rather than ignored: a misspelt ``depend_on`` must not silently drop an edge.

Accepted shapes (seed 001's JSON and seed 003's YAML both read as written):

* ``steps`` is a list of step mappings (each with ``id``; seed 003's ``name``
  serves as the id when ``id`` is absent) or a mapping ``id -> step``;
* ``env`` is a mapping or seed 003's list of ``{name, value}``;
* ``targets`` / ``depends_on`` take a string or a list (``depends`` too);
* durations are seconds or text (``2m``, ``1m30s``);
* an approval's settings sit under ``approval`` or flat on the step (seed
  001's ``approval_type``, ``timeout_minutes``, ``title``); a conditional's
  under ``config`` or flat; a delay's as ``delay: 5m``, ``seconds`` or ``until``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from muster.domain.approvals import ApprovalPolicy
from muster.domain.durations import parse_duration
from muster.domain.jobtypes import JobType
from muster.domain.params import ParameterSpec
from muster.domain.scripts import Shell
from muster.domain.throttle import SEED_004_NAMES, Throttle
from muster.domain.workflows.model import (
    STEP_ID_RE,
    ApprovalConfig,
    ConditionalConfig,
    DelayConfig,
    ScriptRef,
    Step,
    StepType,
    Workflow,
    WorkflowError,
)
from muster.domain.workflows.rollout_parse import parse_rollout, parse_verifications, parse_windows
from muster.domain.workflows.write import workflow_hash, workflow_to_dict
from muster.errors import ValidationError

__all__ = ["load_workflow_text", "parse_workflow", "workflow_hash", "workflow_to_dict"]

_TOP_KEYS: Final = frozenset(
    {
        "name",
        "description",
        "parameters",
        "env",
        "targets",
        "throttle",
        "steps",
        "version",
        "rollout",
        "verifications",
        "windows",
    }
)
_COMMON: Final = frozenset(
    {
        "id",
        "type",
        "name",
        "description",
        "targets",
        "depends_on",
        "depends",
        "on_success",
        "on_failure",
        "timeout",
        "retries",
        "retry_delay",
        "env",
        "throttle",
        "idempotent",
        "rollback",
    }
)
_BY_TYPE: Final[Mapping[StepType, frozenset[str]]] = {
    StepType.COMMAND: frozenset({"command", "shell"}),
    StepType.SCRIPT: frozenset(
        {"script", "script_id", "version", "hash", "body", "content", "shell", "parameters"}
    ),
    StepType.JOB: frozenset({"job", "job_type", "fields"}),
    StepType.APPROVAL: frozenset(
        {"approval", "title", "approval_type", "policy", "approvers", "timeout_minutes"}
    ),
    StepType.CONDITIONAL: frozenset({"config", "condition", "on_true", "on_false"}),
    StepType.DELAY: frozenset({"delay", "seconds", "duration", "until"}),
}
_INFER: Final = (
    ("command", StepType.COMMAND),
    ("script", StepType.SCRIPT),
    ("body", StepType.SCRIPT),
    ("job", StepType.JOB),
    ("approval", StepType.APPROVAL),
    ("approvers", StepType.APPROVAL),
    ("condition", StepType.CONDITIONAL),
    ("config", StepType.CONDITIONAL),
    ("delay", StepType.DELAY),
    ("until", StepType.DELAY),
)


def load_workflow_text(text: str, *, source: str = "workflow") -> Workflow:
    """Parse YAML or JSON text (JSON is YAML) into a checked definition.

    Only ``yaml.safe_load`` is used: a definition can never build objects.
    """
    import yaml  # a small pure library; imported here to keep `import muster` fast

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise WorkflowError(
            f"{source}: not valid YAML/JSON{where}{detail}", field="document"
        ) from None
    if not isinstance(data, Mapping):
        raise WorkflowError(
            f"{source}: a workflow is a mapping with name and steps", field="document"
        )
    return parse_workflow(data)


def parse_workflow(data: Mapping[str, Any]) -> Workflow:
    """Build a :class:`Workflow` from plain data, refusing anything unclear."""
    if not isinstance(data, Mapping):
        raise WorkflowError("a workflow is a mapping with name and steps", field="document")
    unknown = sorted(str(k) for k in set(data) - _TOP_KEYS)
    if unknown:
        raise WorkflowError(f"unknown key(s): {', '.join(unknown)}", field=unknown[0])
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise WorkflowError("a workflow needs a name", field="name")
    raw_steps = data.get("steps")
    if isinstance(raw_steps, Mapping):
        items: list[tuple[str | None, Any]] = [(str(k), v) for k, v in raw_steps.items()]
    elif isinstance(raw_steps, list):
        items = [(None, v) for v in raw_steps]
    else:
        raise WorkflowError("steps must be a list (or a mapping of id to step)", field="steps")
    if not items:
        raise WorkflowError("a workflow needs at least one step", field="steps")
    steps: list[Step] = []
    seen: set[str] = set()
    for index, (key, raw) in enumerate(items):
        step = _step(raw, key, index)
        if step.id in seen:
            raise WorkflowError("step id is used twice", step=step.id, field="id")
        seen.add(step.id)
        steps.append(step)
    return Workflow(
        name=name.strip(),
        description=_text(data.get("description", ""), "description"),
        parameters=_parameters(data.get("parameters")),
        env=_env(data.get("env"), None),
        targets=_targets(data.get("targets"), None),
        throttle=_throttle(data.get("throttle"), None),
        steps=tuple(steps),
        rollout=parse_rollout(data.get("rollout")),
        verifications=parse_verifications(data.get("verifications")),
        windows=parse_windows(data.get("windows")),
    )


# -- steps ---------------------------------------------------------------------


def _step(raw: Any, key: str | None, index: int) -> Step:
    if not isinstance(raw, Mapping):
        raise WorkflowError(f"step #{index + 1} must be a mapping", field=f"steps[{index}]")
    sid = raw.get("id", key if key is not None else raw.get("name"))
    if key is not None and "id" in raw and raw["id"] != key:
        raise WorkflowError(f"id {raw['id']!r} differs from its key", step=key, field="id")
    if not isinstance(sid, str) or not STEP_ID_RE.fullmatch(sid):
        raise WorkflowError(
            f"step #{index + 1}: id {sid!r} must start with a letter and hold only letters, "
            "digits and '_' (at most 64)",
            field=f"steps[{index}].id",
        )
    stype = _step_type(raw, sid)
    allowed = _COMMON | _BY_TYPE[stype]
    unknown = sorted(str(k) for k in set(raw) - allowed)
    if unknown:
        raise WorkflowError(
            f"unknown key(s) for a {stype.value} step: {', '.join(unknown)}",
            step=sid,
            field=unknown[0],
        )
    name = raw.get("name") if "id" in raw or key is not None else raw.get("description")
    kwargs: dict[str, Any] = {
        "id": sid,
        "type": stype,
        "name": _text(name or "", "name", sid),
        "targets": _targets(raw.get("targets"), sid),
        "depends_on": _ids(raw.get("depends_on", raw.get("depends")), sid, "depends_on"),
        "on_success": _route(raw.get("on_success"), sid, "on_success"),
        "on_failure": _route(raw.get("on_failure"), sid, "on_failure"),
        "timeout": _duration(raw.get("timeout"), sid, "timeout"),
        "retries": _count(raw.get("retries", 0), sid, "retries", 100),
        "retry_delay": _duration(raw.get("retry_delay"), sid, "retry_delay", zero=True) or 0.0,
        "env": _env(raw.get("env"), sid),
        "throttle": _throttle(raw.get("throttle"), sid),
        "idempotent": _bool(raw.get("idempotent", False), sid, "idempotent"),
    }
    if raw.get("rollback") is not None:
        if not stype.runs_on_hosts:
            raise WorkflowError(
                f"a {stype.value} step has nothing to roll back", step=sid, field="rollback"
            )
        kwargs["rollback"] = _required_text(raw.get("rollback"), sid, "rollback")
    if stype is StepType.COMMAND:
        kwargs["command"] = _required_text(raw.get("command"), sid, "command")
        kwargs["shell"] = _shell(raw.get("shell", "sh"), sid)
    elif stype is StepType.SCRIPT:
        kwargs["script"] = _script(raw, sid)
        kwargs["parameters"] = _mapping(raw.get("parameters"), sid, "parameters")
    elif stype is StepType.JOB:
        kwargs["job"], kwargs["job_fields"] = _job(raw, sid)
    elif stype is StepType.APPROVAL:
        kwargs["approval"] = _approval(raw, sid)
    elif stype is StepType.CONDITIONAL:
        kwargs["conditional"] = _conditional(raw, sid)
    else:
        kwargs["delay"] = _delay(raw, sid)
    return Step(**kwargs)


def _step_type(raw: Mapping[str, Any], sid: str) -> StepType:
    given = raw.get("type")
    if given is None:
        for key, stype in _INFER:
            if key in raw:
                return stype
        raise WorkflowError("type is missing and cannot be inferred", step=sid, field="type")
    if given == "sh" or given == "bash":  # seed 003 names the shell as the type
        return StepType.COMMAND
    try:
        return StepType(given)
    except ValueError:
        allowed = ", ".join(t.value for t in StepType)
        raise WorkflowError(
            f"unknown type {given!r} (one of {allowed})", step=sid, field="type"
        ) from None


def _script(raw: Mapping[str, Any], sid: str) -> ScriptRef:
    spec = raw.get("script", raw.get("script_id"))
    body = raw.get("body", raw.get("content"))
    version, digest = raw.get("version"), raw.get("hash")
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"name", "version", "hash", "body", "shell"})
        if unknown:
            raise WorkflowError(
                f"script: unknown key(s) {', '.join(unknown)}", step=sid, field="script"
            )
        body = spec.get("body", body)
        version, digest = spec.get("version", version), spec.get("hash", digest)
        shell_raw = spec.get("shell", raw.get("shell", "bash"))
        spec = spec.get("name")
    else:
        shell_raw = raw.get("shell", "bash")
    if spec is not None and not isinstance(spec, str | int):
        raise WorkflowError("script must name a script", step=sid, field="script")
    if (spec is None) == (body is None):
        raise WorkflowError(
            "give either a script name (script: NAME) or an inline body", step=sid, field="script"
        )
    if body is not None:
        if version is not None or digest is not None:
            raise WorkflowError("an inline body takes no version or hash", step=sid, field="body")
        return ScriptRef(body=_required_text(body, sid, "body"), shell=_shell(shell_raw, sid))
    if version is not None and digest is not None:
        raise WorkflowError("pin by version or by hash, not both", step=sid, field="version")
    return ScriptRef(
        name=str(spec),
        version=None if version is None else _count(version, sid, "version", 10**9, low=1),
        hash=None if digest is None else _required_text(digest, sid, "hash").lower(),
        shell=_shell(shell_raw, sid),
    )


def _job(raw: Mapping[str, Any], sid: str) -> tuple[JobType, dict[str, Any]]:
    spec = raw.get("job", raw.get("job_type"))
    fields = dict(_mapping(raw.get("fields"), sid, "fields"))
    if isinstance(spec, Mapping):
        fields = {k: v for k, v in spec.items() if k != "type"} | fields
        spec = spec.get("type")
    try:
        job = JobType(spec)
    except ValueError:
        allowed = ", ".join(t.value for t in JobType)
        raise WorkflowError(
            f"unknown job type {spec!r} (one of {allowed})", step=sid, field="job"
        ) from None
    if job in (JobType.SCRIPT, JobType.COMMAND):
        raise WorkflowError(
            f"use a {job.value} step rather than a {job.value} job", step=sid, field="job"
        )
    return job, fields


def _approval(raw: Mapping[str, Any], sid: str) -> ApprovalConfig:
    spec = _mapping(raw.get("approval"), sid, "approval")
    unknown = sorted(set(spec) - {"policy", "approvers", "timeout", "title", "approval_type"})
    if unknown:
        raise WorkflowError(
            f"approval: unknown key(s) {', '.join(unknown)}", step=sid, field="approval"
        )
    merged = {
        **{k: raw[k] for k in ("title", "approval_type", "policy", "approvers") if k in raw},
        **spec,
    }
    policy_raw = merged.get("policy", merged.get("approval_type", "one_of_many"))
    try:
        policy = ApprovalPolicy(policy_raw)
    except ValueError:
        allowed = ", ".join(p.value for p in ApprovalPolicy)
        raise WorkflowError(
            f"unknown approval policy {policy_raw!r} (one of {allowed})", step=sid, field="policy"
        ) from None
    approvers = merged.get("approvers", ())
    if isinstance(approvers, str):
        approvers = [approvers]
    if not isinstance(approvers, list | tuple) or not approvers:
        raise WorkflowError(
            "an approval needs approvers (role:NAME or user:NAME)", step=sid, field="approvers"
        )
    from muster.domain.approvals import parse_approvers

    try:
        parse_approvers([str(a) for a in approvers])
    except ValidationError as exc:
        raise WorkflowError(exc.message, step=sid, field="approvers") from None
    timeout = _duration(spec.get("timeout"), sid, "timeout")
    if "timeout_minutes" in raw:
        minutes = raw["timeout_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
            raise WorkflowError(
                "timeout_minutes must be a positive number", step=sid, field="timeout_minutes"
            )
        timeout = float(minutes) * 60
    if timeout is None and "timeout" in raw:
        timeout = _duration(raw.get("timeout"), sid, "timeout")
    return ApprovalConfig(
        policy=policy,
        approvers=tuple(str(a) for a in approvers),
        timeout=timeout,
        title=_text(merged.get("title", ""), "title", sid),
    )


def _conditional(raw: Mapping[str, Any], sid: str) -> ConditionalConfig:
    spec = _mapping(raw.get("config"), sid, "config")
    unknown = sorted(set(spec) - {"condition", "on_true", "on_false"})
    if unknown:
        raise WorkflowError(
            f"config: unknown key(s) {', '.join(unknown)}", step=sid, field="config"
        )
    merged = {**{k: raw[k] for k in ("condition", "on_true", "on_false") if k in raw}, **spec}
    condition = _required_text(merged.get("condition"), sid, "condition")
    from muster.domain.workflows.expr import parse_expression

    parse_expression(condition, step=sid)
    return ConditionalConfig(
        condition=condition,
        on_true=_route(merged.get("on_true"), sid, "on_true"),
        on_false=_route(merged.get("on_false"), sid, "on_false"),
    )


def _delay(raw: Mapping[str, Any], sid: str) -> DelayConfig:
    given = [k for k in ("delay", "seconds", "duration", "until") if k in raw]
    if len(given) != 1:
        raise WorkflowError(
            "a delay takes exactly one of delay, seconds, duration or until",
            step=sid,
            field="delay",
        )
    key = given[0]
    if key == "until":
        value = raw["until"]
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise WorkflowError(
                    f"until: {value!r} is not an ISO time", step=sid, field="until"
                ) from None
        if not isinstance(value, datetime):
            raise WorkflowError("until must be an ISO time", step=sid, field="until")
        if value.tzinfo is None:
            raise WorkflowError(
                "until needs a time zone (e.g. 2026-01-01T02:00:00Z)", step=sid, field="until"
            )
        return DelayConfig(until=value.astimezone(UTC))
    seconds = _duration(raw[key], sid, key, zero=True)
    assert seconds is not None
    return DelayConfig(seconds=seconds)


# -- fields --------------------------------------------------------------------


def _text(value: Any, name: str, sid: str | None = None) -> str:
    if not isinstance(value, str):
        raise WorkflowError(f"{name} must be text", step=sid, field=name)
    return value


def _required_text(value: Any, sid: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WorkflowError(f"{name} is required and must be text", step=sid, field=name)
    if "\x00" in value:
        raise WorkflowError(f"{name} cannot contain a NUL character", step=sid, field=name)
    return value


def _route(value: Any, sid: str, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise WorkflowError(f"{name} must name a step, 'end' or 'fail'", step=sid, field=name)
    return value.strip()


def _ids(value: Any, sid: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise WorkflowError(f"{name} must be a step id or a list of them", step=sid, field=name)
    return tuple(dict.fromkeys(v.strip() for v in value))


def _targets(value: Any, sid: str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str) or not value.strip():
        raise WorkflowError(
            "targets must be a selector or a list of them", step=sid, field="targets"
        )
    from muster.domain.selectors import split_pattern

    try:
        split_pattern(value.strip())
    except ValidationError as exc:
        raise WorkflowError(exc.message, step=sid, field="targets") from None
    return value.strip()


def _duration(value: Any, sid: str, name: str, *, zero: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise WorkflowError(f"{name} must be a duration", step=sid, field=name)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value, field=name)
        except ValidationError as exc:
            raise WorkflowError(exc.message, step=sid, field=name) from None
    else:
        raise WorkflowError(f"{name} must be a duration (seconds or e.g. 5m)", step=sid, field=name)
    if seconds != seconds or seconds < 0 or (seconds == 0 and not zero) or seconds > 366 * 86400:
        raise WorkflowError(
            f"{name} must be a positive duration of at most a year", step=sid, field=name
        )
    return seconds


def _count(value: Any, sid: str, name: str, high: int, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise WorkflowError(
            f"{name} must be a whole number from {low} to {high}", step=sid, field=name
        )
    return value


def _bool(value: Any, sid: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise WorkflowError(f"{name} must be true or false", step=sid, field=name)
    return value


def _mapping(value: Any, sid: str, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise WorkflowError(f"{name} must be a mapping", step=sid, field=name)
    return dict(value)


def _shell(value: Any, sid: str) -> Shell:
    try:
        return Shell(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Shell)
        raise WorkflowError(
            f"unknown shell {value!r} (one of {allowed})", step=sid, field="shell"
        ) from None


def _env(value: Any, sid: str | None) -> dict[str, str]:
    if value is None:
        return {}
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        pairs = [(v.get("name"), v.get("value")) for v in value]
    else:
        raise WorkflowError("env must be a mapping of NAME to text", step=sid, field="env")
    out: dict[str, str] = {}
    for key, val in pairs:
        if (
            not isinstance(key, str)
            or not key
            or not (key[0].isalpha() or key[0] == "_")
            or not all(c.isascii() and (c.isalnum() or c == "_") for c in key)
        ):
            raise WorkflowError(f"env: {key!r} is not a variable name", step=sid, field="env")
        if key.startswith("MUSTER_"):
            raise WorkflowError(f"env: {key} is reserved (MUSTER_*)", step=sid, field="env")
        if isinstance(val, bool):
            val = "true" if val else "false"
        if isinstance(val, int | float):
            val = str(val)
        if not isinstance(val, str) or "\x00" in val:
            raise WorkflowError(f"env: {key} must be text", step=sid, field="env")
        out[key] = val
    return out


_NO_THROTTLE: Final = Throttle()


def _throttle(value: Any, sid: str | None) -> Throttle:
    if value is None:
        return _NO_THROTTLE
    if not isinstance(value, Mapping):
        raise WorkflowError(
            "throttle must be a mapping (forks, per_group, delay)", step=sid, field="throttle"
        )
    data = {SEED_004_NAMES.get(k, k): v for k, v in value.items()}
    unknown = sorted(set(data) - {"forks", "per_group", "delay"})
    if unknown:
        raise WorkflowError(
            f"throttle: unknown key(s) {', '.join(unknown)}", step=sid, field="throttle"
        )
    delay = data.get("delay", 0.0)
    if isinstance(delay, str):
        try:
            delay = parse_duration(delay, field="delay")
        except ValidationError as exc:
            raise WorkflowError(exc.message, step=sid, field="throttle") from None
    try:
        return Throttle(
            forks=data.get("forks"), per_group=data.get("per_group"), delay=float(delay)
        )
    except (ValidationError, TypeError, ValueError) as exc:
        raise WorkflowError(f"throttle: {exc}", step=sid, field="throttle") from None


def _parameters(value: Any) -> tuple[ParameterSpec, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        value = [
            {"name": k, **(v if isinstance(v, Mapping) else {"type": v})} for k, v in value.items()
        ]
    if not isinstance(value, list):
        raise WorkflowError("parameters must be a list of declarations", field="parameters")
    specs: list[ParameterSpec] = []
    for item in value:
        if not isinstance(item, Mapping):
            raise WorkflowError("each parameter is a mapping with a name", field="parameters")
        try:
            specs.append(ParameterSpec.from_dict(item))
        except ValidationError as exc:
            raise WorkflowError(exc.message, field=f"parameters.{exc.field or ''}") from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise WorkflowError("a parameter is declared twice", field="parameters")
    return tuple(specs)

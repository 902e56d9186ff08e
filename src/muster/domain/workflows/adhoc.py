"""An ad-hoc command or script in waves, as a one-task rollout workflow.

``muster run --waves 1,10%,100% ...`` does not get a wave loop of its own: the
options are read into the same :class:`~muster.domain.rollout_spec.RolloutSpec`
a workflow's ``rollout:`` key gives (through
:func:`~muster.domain.workflows.rollout_parse.parse_rollout`, so both accept and
refuse exactly the same waves and thresholds), and the command becomes the
``run`` step of a generated workflow (plus a ``verify`` step gating each wave
when asked). The rollout engine then runs it like any rollout.

Errors name the command-line option, not the YAML key the option maps to: an
operator who typed ``--waves 0%`` should not read about ``rollout.waves[0]``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from muster.domain.rollout_spec import RolloutSpec
from muster.domain.workflows.model import Workflow, WorkflowError
from muster.domain.workflows.parse import parse_workflow
from muster.domain.workflows.rollout_parse import parse_rollout
from muster.errors import ValidationError

__all__ = [
    "RUN_STEP",
    "VERIFY_STEP",
    "AdhocRollout",
    "AdhocTask",
    "adhoc_workflow",
    "wave_items",
]

#: The generated workflow's step ids (they show in host run ids and JSON results).
RUN_STEP: Final = "run"
VERIFY_STEP: Final = "verify"

_INT: Final = re.compile(r"[+-]?\d+")
_NUMBERISH: Final = re.compile(r"[+-]?[\d.]+")
#: Where each rollout key came from on the command line.
_OPTION: Final = {
    "rollout.waves": "--waves",
    "rollout.failure_threshold": "--max-failures",
    "rollout.threshold_scope": "--threshold-scope",
    "rollout.soak": "--soak",
}


def wave_items(text: str) -> list[Any]:
    """``--waves`` text as the list a ``rollout: waves:`` key holds.

    Comma-separated items, each a cumulative host count (``1``), a cumulative
    percent (``10%``) or a selector (a host, a group, a glob): ``1,10%,100%``,
    ``canary,web,100%``. A wave of several selectors, or any wave list a
    definition can hold, is written as that YAML flow list:
    ``[[web01, web02], db, "100%"]``.
    """
    raw = text.strip()
    if not raw:
        raise ValidationError("--waves: give at least one wave, e.g. 1,10%,100%", field="waves")
    if raw.startswith("["):
        try:
            items = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "unreadable"
            raise ValidationError(
                f"--waves {raw!r}: not a YAML list ({problem})", field="waves"
            ) from None
        if not isinstance(items, list):
            raise ValidationError(f"--waves {raw!r}: not a YAML list", field="waves")
        return items
    out: list[Any] = []
    for i, part in enumerate(raw.split(","), 1):
        item = part.strip()
        if not item:
            raise ValidationError(
                f"--waves {raw!r}: wave {i} is empty (two commas in a row?)", field="waves"
            )
        if _INT.fullmatch(item):
            out.append(int(item))
        elif item.endswith("%"):
            out.append(item)
        elif _NUMBERISH.fullmatch(item):
            raise ValidationError(
                f"--waves {raw!r}: wave {i} ({item!r}) is not a whole host count",
                field="waves",
            )
        else:
            out.append(item)
    return out


@dataclass(frozen=True, slots=True)
class AdhocRollout:
    """The rollout options of ``muster run``, as typed (text, checked here)."""

    waves: str
    max_failures: str | None = None
    threshold_scope: str = "wave"
    soak: str | None = None
    verify: str | None = None
    rollback: str | None = None
    #: None: on when a rollback command is given.
    auto_rollback: bool | None = None
    #: selector -> window spec (as a workflow's ``windows:`` holds them).
    windows: Mapping[str, str] = field(default_factory=dict)

    def spec(self) -> RolloutSpec:
        """The rollout these options mean; a bad value raises naming its option."""
        if self.auto_rollback and self.rollback is None:
            raise ValidationError(
                "--auto-rollback: nothing to roll back with; give --rollback 'COMMAND'",
                field="auto_rollback",
            )
        doc: dict[str, Any] = {
            "waves": wave_items(self.waves),
            "auto_rollback": self.rollback is not None and self.auto_rollback is not False,
            "threshold_scope": self.threshold_scope,
        }
        if self.max_failures is not None:
            doc["failure_threshold"] = _threshold_item(self.max_failures)
        if self.soak is not None:
            doc["soak"] = self.soak
        if self.verify is not None:
            doc["verification_tasks"] = [VERIFY_STEP]
        try:
            spec = parse_rollout(doc)
        except WorkflowError as exc:
            raise _for_option(exc, self) from None
        assert spec is not None
        return spec


def _threshold_item(text: str) -> int | str:
    raw = text.strip()
    if _INT.fullmatch(raw):
        return int(raw)
    if raw.endswith("%"):
        return raw
    raise ValidationError(
        f"--max-failures {text!r}: not a count (e.g. 2) or a percent of the hosts (e.g. 10%)",
        field="max_failures",
    )


def _for_option(exc: WorkflowError, options: AdhocRollout) -> ValidationError:
    """Re-word a ``rollout.*`` error for the option it came from."""
    where = exc.field or ""
    message = exc.message
    key, _, index = where.partition("[")
    option = _OPTION.get(key, where)
    message = message.replace(f"{key}: ", "").replace(f"{where}: ", "")
    if key == "rollout.waves" and index:
        n = int(index.rstrip("]"))
        item = wave_items(options.waves)[n]
        return ValidationError(f"--waves: wave {n + 1} ({item!r}): {message}", field="waves")
    value = {
        "--waves": options.waves,
        "--max-failures": options.max_failures,
        "--threshold-scope": options.threshold_scope,
        "--soak": options.soak,
    }.get(option)
    shown = f" {value!r}" if value is not None else ""
    return ValidationError(f"{option}{shown}: {message}", field=option.lstrip("-"))


@dataclass(frozen=True, slots=True)
class AdhocTask:
    """What runs on each host: a command, or a script by name (resolved by the
    caller to the version read from its file) with its parameter values."""

    command: str | None = None
    script: str | None = None
    shell: str = "sh"
    timeout: float = 300.0
    parameters: Mapping[str, str] = field(default_factory=dict)


def adhoc_workflow(
    task: AdhocTask,
    options: AdhocRollout,
    *,
    name: str = "run",
) -> Workflow:
    """The one-task rollout workflow that runs ``task`` over every target host.

    ``run`` carries the rollback command; ``verify`` (when asked) depends on it
    and is the wave's verification task, so a host where it exits non-zero fails
    the gate. Targets are every host the caller passes the engine (``*``).
    """
    spec = options.spec()
    step: dict[str, Any] = {"id": RUN_STEP, "timeout": task.timeout}
    if task.command is not None:
        step.update(type="command", command=task.command, shell=task.shell)
    else:
        step.update(
            type="script",
            script={"name": task.script, "shell": task.shell},
            parameters=dict(task.parameters),
        )
    if options.rollback is not None:
        step["rollback"] = options.rollback
    steps = [step]
    if options.verify is not None:
        steps.append(
            {
                "id": VERIFY_STEP,
                "type": "command",
                "command": options.verify,
                "depends_on": [RUN_STEP],
                "timeout": task.timeout,
            }
        )
    doc: dict[str, Any] = {
        "name": name,
        "targets": "*",
        "steps": steps,
        "windows": dict(options.windows),
    }
    try:
        workflow = parse_workflow(doc)
    except WorkflowError as exc:
        raise ValidationError(_step_option(exc), field=exc.field) from None
    # The parsed rollout is the one checked above (parse_workflow has no rollout key
    # here, so option errors keep their option names).
    return _with_rollout(workflow, spec)


def _step_option(exc: WorkflowError) -> str:
    field_name = exc.field or ""
    if field_name.startswith(f"steps.{VERIFY_STEP}."):
        return f"--verify: {exc.message}"
    if field_name == f"steps.{RUN_STEP}.rollback":
        return f"--rollback: {exc.message}"
    if field_name.startswith("windows"):
        return f"maintenance window: {exc.message}"
    return exc.message


def _with_rollout(workflow: Workflow, spec: RolloutSpec) -> Workflow:
    return dataclasses.replace(workflow, rollout=spec)

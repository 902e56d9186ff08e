"""Workflows a rollout derives from its definition: the one with verification captures
woven in, the one re-running the verification tasks after a soak, one per rollback
command, and a one-step rollout around a single script or command.

Pure: they are ordinary definitions, so the one workflow engine runs all of
them and the audit sees every command they send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from muster.domain.scripts import Shell
from muster.domain.verification import capture_script
from muster.domain.workflows.model import Step, StepType, Workflow
from muster.domain.workflows.parse import parse_workflow

__all__ = [
    "CaptureSteps",
    "command_rollout",
    "rollback_workflow",
    "script_rollout",
    "verification_task_workflow",
    "with_captures",
]


@dataclass(frozen=True, slots=True)
class CaptureSteps:
    """The synthetic step ids of each verification (by name): before and after."""

    before: Mapping[str, str]
    after: Mapping[str, str]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self.before.values()) | frozenset(self.after.values())

    def labels(self) -> dict[str, str]:
        """Step id -> how a message names it."""
        out = {sid: f"verification {name} (capture before)" for name, sid in self.before.items()}
        out.update(
            {sid: f"verification {name} (capture after)" for name, sid in self.after.items()}
        )
        return out


def _union_targets(steps: Sequence[Step]) -> str | None:
    """One selector covering every step's targets (None when one takes the default)."""
    if any(s.targets is None for s in steps):
        return None
    return ",".join(dict.fromkeys(s.targets or "" for s in steps))


def _descendants(workflow: Workflow, roots: set[str]) -> set[str]:
    """Steps that depend (directly or not) on one of ``roots``, roots included."""
    out = set(roots)
    changed = True
    while changed:
        changed = False
        for step in workflow.steps:
            if step.id not in out and any(d in out for d in step.depends_on):
                out.add(step.id)
                changed = True
    return out


def _ancestors(workflow: Workflow, roots: set[str]) -> set[str]:
    """``roots`` and every step they depend on (directly or not)."""
    steps = {s.id: s for s in workflow.steps}
    out: set[str] = set()
    todo = list(roots)
    while todo:
        sid = todo.pop()
        if sid in out or sid not in steps:
            continue
        out.add(sid)
        todo.extend(steps[sid].depends_on)
    return out


def _free_id(base: str, taken: set[str]) -> str:
    sid, n = base, 1
    while sid in taken:
        n += 1
        sid = f"{base}_{n}"
    taken.add(sid)
    return sid


def with_captures(workflow: Workflow, marker: str) -> tuple[Workflow, CaptureSteps]:
    """``workflow`` with a capture step before the ``before_tasks`` and after the
    ``after_tasks`` of every verification.

    The before-capture runs on the before-tasks' targets, after what they wait
    for, and they (and the after-tasks) wait for it in turn; the after-capture
    waits for every after-task. Its output holds each command's output between lines carrying
    ``marker`` (see :func:`muster.domain.verification.parse_capture`).
    """
    if not workflow.verifications:
        return workflow, CaptureSteps({}, {})
    steps = {s.id: s for s in workflow.steps}
    taken = set(steps)
    extra: list[Step] = []
    before_ids: dict[str, str] = {}
    after_ids: dict[str, str] = {}
    waits: dict[str, list[str]] = {}
    for index, v in enumerate(workflow.verifications):
        script = capture_script(v.commands, marker)
        befores = [steps[s] for s in v.before_tasks]
        below = _descendants(workflow, set(v.before_tasks))
        deps = [d for s in befores for d in s.depends_on if d not in below]
        bid = _free_id(f"verify{index + 1}_before", taken)
        extra.append(
            Step(
                id=bid,
                type=StepType.COMMAND,
                name=f"capture before ({v.name})",
                targets=_union_targets(befores),
                depends_on=tuple(dict.fromkeys(deps)),
                command=script,
                shell=Shell.SH,
            )
        )
        # What is compared must be captured before it changes: the after-tasks wait
        # for the before-capture too (unless the capture itself waits for them).
        above = _ancestors(workflow, set(deps))
        for s in dict.fromkeys((*v.before_tasks, *v.after_tasks)):
            if s not in above:
                waits.setdefault(s, []).append(bid)
        aid = _free_id(f"verify{index + 1}_after", taken)
        extra.append(
            Step(
                id=aid,
                type=StepType.COMMAND,
                name=f"capture after ({v.name})",
                targets=_union_targets([steps[s] for s in v.after_tasks]),
                depends_on=tuple(v.after_tasks),
                command=script,
                shell=Shell.SH,
            )
        )
        before_ids[v.name], after_ids[v.name] = bid, aid
    woven = tuple(
        replace(s, depends_on=(*s.depends_on, *waits[s.id])) if s.id in waits else s
        for s in workflow.steps
    )
    return replace(workflow, steps=(*extra, *woven)), CaptureSteps(before_ids, after_ids)


def verification_task_workflow(workflow: Workflow, tasks: Sequence[str]) -> Workflow:
    """The verification tasks alone (their order among themselves kept), to run again
    on a wave after its soak."""
    wanted = set(tasks)
    steps = tuple(
        replace(
            s,
            depends_on=tuple(d for d in s.depends_on if d in wanted),
            on_success=None,
            on_failure=None,
            rollback=None,
        )
        for s in workflow.steps
        if s.id in wanted
    )
    return replace(
        workflow,
        name=f"{workflow.name} (verification)",
        steps=steps,
        rollout=None,
        verifications=(),
    )


def rollback_workflow(workflow: Workflow, step: Step) -> Workflow:
    """One step running ``step``'s rollback command with its shell, env and timeout."""
    assert step.rollback is not None
    shell = step.script.shell if step.script is not None else step.shell
    undo = Step(
        id="rollback",
        type=StepType.COMMAND,
        name=f"roll back {step.id}",
        command=step.rollback,
        shell=shell,
        env=step.env,
        timeout=step.timeout,
    )
    return replace(
        workflow,
        name=f"{workflow.name} (rollback {step.id})",
        steps=(undo,),
        targets=None,
        rollout=None,
        verifications=(),
        windows={},
    )


def command_rollout(
    command: str,
    targets: str | Sequence[str],
    rollout: Mapping[str, Any],
    *,
    name: str = "command",
    shell: str = "sh",
    rollback: str | None = None,
    verifications: Mapping[str, Any] | None = None,
    windows: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> Workflow:
    """A single script or command rolled out in waves: a one-step workflow (step id
    ``run``) that verifications name as ``before_tasks`` / ``after_tasks``."""
    step: dict[str, Any] = {
        "id": "run",
        "type": "command",
        "command": command,
        "shell": shell,
        "targets": [targets] if isinstance(targets, str) else list(targets),
    }
    if rollback is not None:
        step["rollback"] = rollback
    if timeout is not None:
        step["timeout"] = timeout
    doc: dict[str, Any] = {"name": name, "steps": [step], "rollout": dict(rollout)}
    if verifications:
        doc["verifications"] = dict(verifications)
    if windows:
        doc["windows"] = dict(windows)
    return parse_workflow(doc)


def script_rollout(
    script: str,
    version: int,
    targets: Sequence[str],
    rollout: Mapping[str, Any],
    *,
    parameters: Mapping[str, Any],
    verify: str | None = None,
    rollback: str | None = None,
    shell: str = "sh",
    throttle: Mapping[str, Any] | None = None,
) -> Workflow:
    """One library script version rolled out in waves (the execute API's ``rollout``):
    step ``run`` runs it with ``parameters`` on ``targets`` (``rollback`` undoes it),
    and step ``verify``, when given, is the verification task gating each wave.
    ``rollout`` holds the rollout's own keys (waves, threshold, soak, auto_rollback)."""
    names = list(targets)
    step: dict[str, Any] = {
        "id": "run",
        "script": {"name": script, "version": version},
        "targets": names,
        "parameters": dict(parameters),
    }
    if rollback is not None:
        step["rollback"] = rollback
    steps = [step]
    spec = {k: v for k, v in rollout.items() if v is not None}
    if verify is not None:
        steps.append(
            {
                "id": "verify",
                "depends_on": ["run"],
                "command": verify,
                "shell": shell,
                "targets": names,
            }
        )
        spec["verification_tasks"] = ["verify"]
    doc: dict[str, Any] = {"name": f"{script}-rollout", "steps": steps, "rollout": spec}
    if throttle:
        doc["throttle"] = {k: v for k, v in throttle.items() if v is not None}
    return parse_workflow(doc)

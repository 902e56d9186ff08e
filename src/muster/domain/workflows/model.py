"""The workflow definition: steps, their types, targets, dependencies and routing.

One model serves every face (library, CLI, server) and all three seeds: a
workflow is a set of steps; ``depends_on`` makes a DAG of parallel branches
(seeds 003, 004) and ``on_success`` / ``on_failure`` (and a conditional's
``on_true`` / ``on_false``) route to the next step (seed 001).

How a step comes to run (the state machine in :mod:`.machine` keeps it):

* A step that no route names is *active* from the start. A step named by a
  route becomes active only when that route is taken (``fail`` and ``end``
  are the two route words that name no step: abort the instance, or end the
  branch).
* An active step starts once every step in its ``depends_on`` has
  succeeded; if one of them ends otherwise, it is skipped.

Definitions are immutable values; :func:`.parse.parse_workflow` builds them
from YAML/JSON/dicts and :func:`.validate.validate` checks the graph.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from muster.domain.approvals import ApprovalPolicy
from muster.domain.jobtypes import JobType
from muster.domain.params import ParameterSpec
from muster.domain.rollout_spec import RolloutSpec
from muster.domain.scripts import Shell
from muster.domain.throttle import Throttle
from muster.domain.verification import Verification
from muster.errors import ValidationError

__all__ = [
    "END",
    "FAIL",
    "ROUTE_WORDS",
    "STEP_ID_RE",
    "ApprovalConfig",
    "ConditionalConfig",
    "DelayConfig",
    "ScriptRef",
    "Step",
    "StepType",
    "Workflow",
    "WorkflowError",
]

#: Route word: this branch ends here (nothing more is started by this route).
END: Final = "end"
#: Route word: abort the instance (it ends ``failed``).
FAIL: Final = "fail"
ROUTE_WORDS: Final = frozenset({END, FAIL})

#: Step ids are referenced as ``{{step_ID.stdout}}``: letters, digits, '_'.
STEP_ID_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class WorkflowError(ValidationError):
    """A definition or an instance request is invalid; the message names the step
    and the field (``field`` is ``steps.<id>.<field>`` or a top-level key)."""

    def __init__(self, message: str, *, step: str | None = None, field: str | None = None) -> None:
        where = f"steps.{step}.{field}" if step and field else (f"steps.{step}" if step else field)
        text = f"step '{step}': {message}" if step else message
        super().__init__(text, field=where)
        self.step = step


class StepType(enum.StrEnum):
    SCRIPT = "script"
    COMMAND = "command"
    JOB = "job"
    APPROVAL = "approval"
    CONDITIONAL = "conditional"
    DELAY = "delay"

    @property
    def runs_on_hosts(self) -> bool:
        """Script, command and job steps run on hosts; the others are decided in place."""
        return self in (StepType.SCRIPT, StepType.COMMAND, StepType.JOB)


@dataclass(frozen=True, slots=True)
class ScriptRef:
    """A script step's script: a library entry by name (pinned to ``version`` or
    ``hash``; neither means latest, pinned when the instance starts), or an inline
    ``body`` with its ``shell`` (in-process runs need no library)."""

    name: str | None = None
    version: int | None = None
    hash: str | None = None
    body: str | None = None
    shell: Shell = Shell.BASH


@dataclass(frozen=True, slots=True)
class ApprovalConfig:
    """Who must approve, how many, and until when (``timeout`` seconds after the
    step starts; when it passes the request is rejected and the step fails)."""

    policy: ApprovalPolicy = ApprovalPolicy.ONE_OF_MANY
    approvers: tuple[str, ...] = ()
    timeout: float | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class ConditionalConfig:
    """An expression (see :mod:`.expr`) and the step each outcome routes to."""

    condition: str
    on_true: str | None = None
    on_false: str | None = None


@dataclass(frozen=True, slots=True)
class DelayConfig:
    """Wait ``seconds`` after the step starts, or ``until`` an instant (aware)."""

    seconds: float | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One step. Only the fields of its ``type`` are set (the parser checks it)."""

    id: str
    type: StepType
    name: str = ""
    #: Selector of the hosts it runs on; ``None`` takes the workflow's (or the
    #: instance's) targets.
    targets: str | None = None
    depends_on: tuple[str, ...] = ()
    on_success: str | None = None
    on_failure: str | None = None
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    env: Mapping[str, str] = field(default_factory=dict)
    throttle: Throttle = field(default_factory=Throttle)
    #: Safe to run again after its worker died mid-run (recovery re-queues it).
    idempotent: bool = False
    # -- command / script / job --
    command: str | None = None
    shell: Shell = Shell.SH
    script: ScriptRef | None = None
    #: Script parameters (values may hold ``{{...}}`` references).
    parameters: Mapping[str, Any] = field(default_factory=dict)
    job: JobType | None = None
    job_fields: Mapping[str, Any] = field(default_factory=dict)
    # -- the others --
    approval: ApprovalConfig | None = None
    conditional: ConditionalConfig | None = None
    delay: DelayConfig | None = None
    #: A command undoing this step, run with the step's shell on the hosts where
    #: the step ran, when a rollout rolls back (command/script/job steps only).
    rollback: str | None = None

    def routes(self) -> tuple[tuple[str, str], ...]:
        """(field, target) of every route this step names, route words included."""
        out: list[tuple[str, str]] = []
        for name, target in (("on_success", self.on_success), ("on_failure", self.on_failure)):
            if target is not None:
                out.append((name, target))
        if self.conditional is not None:
            for name, target in (
                ("on_true", self.conditional.on_true),
                ("on_false", self.conditional.on_false),
            ):
                if target is not None:
                    out.append((name, target))
        return tuple(out)


@dataclass(frozen=True, slots=True, eq=False)
class Workflow:
    """A named definition: typed parameters, workflow-wide env and targets, steps.

    Steps keep their written order (previews and listings show it); the graph
    in :mod:`.graph` indexes them.
    """

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    parameters: tuple[ParameterSpec, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    targets: str | None = None
    throttle: Throttle = field(default_factory=Throttle)
    #: Progressive execution (waves, gates, rollback); None runs everything at once.
    rollout: RolloutSpec | None = None
    #: Before/after captures around chosen steps, compared per host.
    verifications: tuple[Verification, ...] = ()
    #: Maintenance windows: selector -> a recurring spec (``"Sun 01:00-03:00"``) or a
    #: one-off period (``"2026-01-04T01:00Z/2026-01-04T03:00Z"``); several are
    #: separated by ``;``.
    windows: Mapping[str, str] = field(default_factory=dict)

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

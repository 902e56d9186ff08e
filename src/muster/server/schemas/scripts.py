"""Scripts and their versions (seed 000's shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from muster.domain.durations import MAX_TIMEOUT
from muster.domain.params import ParameterSpec
from muster.domain.scripts import ScriptVersion, Shell
from muster.errors import ParameterError, ValidationError
from muster.server.schemas.common import MAX_VERSION, Request, Response, VersionNumber
from muster.server.schemas.executions import ThrottleFields

__all__ = [
    "ExecuteIn",
    "ParameterIn",
    "ScriptIn",
    "ScriptList",
    "ScriptOut",
    "ScriptSummaryOut",
    "VersionList",
    "VersionOut",
    "VersionSummaryOut",
]

ParamType = Literal["string", "integer", "float", "boolean", "secret", "choice"]
ShellName = Literal["bash", "sh", "zsh", "ksh", "python", "powershell", "cmd"]


class ParameterIn(Request):
    name: str
    type: ParamType = "string"
    required: bool = False
    default: int | float | bool | str | None = None
    description: str = ""
    choices: list[str] = Field(default_factory=list)


class ScriptIn(Request):
    name: str = Field(min_length=1, max_length=128)
    shell: ShellName = "bash"
    body: str
    parameters: list[ParameterIn] = Field(default_factory=list)
    timeout: float = Field(default=300, gt=0, le=MAX_TIMEOUT)
    #: Part of the content; on the server only a request to turn the script's
    #: approval rule on, granted to ``approvals.manage`` holders; never turns it off.
    requires_approval: bool = False
    idempotent: bool = False
    #: Omitted on an update: the script keeps its description and tags.
    description: str | None = None
    tags: list[str] | None = None

    def to_version(self) -> ScriptVersion:
        """The one way a request (API body or console form) becomes a ScriptVersion.

        Every bad parameter declaration is named (``parameters.N``), not only
        the first; placeholders are checked by the caller, which words them
        for its own page.
        """
        specs: list[ParameterSpec] = []
        problems: dict[str, str] = {}
        for i, p in enumerate(self.parameters):
            try:
                specs.append(ParameterSpec.from_dict(p.model_dump()))
            except ParameterError as exc:
                problems[f"parameters.{i}"] = exc.message
        if problems:
            field, message = next(iter(problems.items()))
            raise ValidationError(message, field=field, problems=problems)
        return ScriptVersion(
            name=self.name,
            shell=Shell(self.shell),
            body=self.body,
            parameters=tuple(specs),
            timeout=self.timeout,
            requires_approval=self.requires_approval,
            idempotent=self.idempotent,
            description=self.description or "",
        )


class VersionOut(Response):
    number: int
    version: int
    content_hash: str
    created_at: datetime | None = None
    shell: str
    body: str
    parameters: list[dict[str, Any]]
    timeout: float
    #: What this content asked for when saved; the script's rule decides.
    requires_approval: bool
    idempotent: bool


class VersionSummaryOut(Response):
    """A version in a list: all of :class:`VersionOut` but the body, which only
    ``GET .../versions/{number}`` returns (a page of bodies could be megabytes)."""

    number: int
    version: int
    content_hash: str
    created_at: datetime | None = None
    shell: str
    parameters: list[dict[str, Any]]
    timeout: float
    requires_approval: bool
    idempotent: bool


class VersionList(Response):
    items: list[VersionSummaryOut]
    total: int


class ScriptOut(Response):
    id: str
    name: str
    version: int
    content_hash: str
    shell: str
    body: str
    parameters: list[dict[str, Any]]
    timeout: float
    #: The script's approval rule (``.../approval-policy``), whatever any version says.
    requires_approval: bool
    idempotent: bool
    description: str
    tags: list[str]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: Only on save: whether this request created a new version.
    created_version: bool | None = None


class ScriptSummaryOut(Response):
    """A script in a list: all of :class:`ScriptOut` but the body, which only
    ``GET .../scripts/{id}`` returns."""

    id: str
    name: str
    version: int
    content_hash: str
    shell: str
    parameters: list[dict[str, Any]]
    timeout: float
    requires_approval: bool
    idempotent: bool
    description: str
    tags: list[str]
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ScriptList(Response):
    items: list[ScriptSummaryOut]
    total: int


class RolloutIn(Request):
    """The script rolled out in waves (a one-step rollout workflow the server runs)."""

    #: Cumulative counts, percents of the hosts, or lists of host/group selectors.
    waves: list[int | str | list[str]] = Field(min_length=1, max_length=100)
    #: A command run on each host after the script: where it fails, the gate fails.
    verify: str | None = Field(default=None, min_length=1, max_length=65536)
    #: The command that undoes the script on a host (rollback, newest wave first).
    rollback: str | None = Field(default=None, min_length=1, max_length=65536)
    auto_rollback: bool = True
    failure_threshold: int | str = 0
    threshold_scope: Literal["wave", "rollout"] = "wave"
    #: Seconds (or a duration such as ``5m``) between waves; verify runs again after.
    soak: float | str | None = None
    #: Shell of ``verify`` and ``rollback``.
    shell: ShellName = "sh"


class ExecuteIn(Request, ThrottleFields):
    host_ids: list[str] = Field(min_length=1)
    parameter_values: dict[str, Any] = Field(default_factory=dict)
    version: VersionNumber | Literal["latest"] = "latest"
    #: Answer with the plan (hosts, rendered body, shell, throttling, approval it
    #: would wait for); nothing is queued or sent.
    dry_run: bool = False
    #: Run in waves instead of all at once (answered with the rollout's instance).
    rollout: RolloutIn | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        """One clear problem on ``version`` (not one per union member)."""
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
            value = int(value)
        if value == "latest" or (
            isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_VERSION
        ):
            return value
        raise ValueError(f"must be 'latest' or a version number from 1 to {MAX_VERSION}")

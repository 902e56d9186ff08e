"""Executions and their host results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, field_validator

from muster.domain.durations import parse_duration
from muster.domain.throttle import MAX_FORKS, Throttle
from muster.server.schemas.common import Response

__all__ = [
    "ApprovalNeedOut",
    "ExecutionList",
    "ExecutionOut",
    "ExecutionSummaryOut",
    "HostResultOut",
    "SkippedHostOut",
    "ThrottleFields",
    "ThrottleOut",
]


class ThrottleFields(BaseModel):
    """``forks``, ``per_group`` and ``delay`` on every request that starts an execution.

    Seed 004's ``max_parallel_servers``, ``max_parallel_per_group`` and
    ``delay_between_servers`` are accepted as the same fields. ``delay`` is
    seconds, or a duration such as ``"2s"`` or ``"1m30s"``.
    """

    forks: int | None = Field(
        default=None,
        ge=1,
        le=MAX_FORKS,
        validation_alias=AliasChoices("forks", "max_parallel_servers"),
    )
    per_group: int | None = Field(
        default=None,
        ge=1,
        le=MAX_FORKS,
        validation_alias=AliasChoices("per_group", "max_parallel_per_group"),
    )
    delay: float = Field(
        default=0.0,
        ge=0,
        le=86400,
        validation_alias=AliasChoices("delay", "delay_between_servers"),
    )

    @field_validator("delay", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value, field="delay") if isinstance(value, str) else value

    def throttle(self) -> Throttle:
        return Throttle(self.forks, self.per_group, self.delay)


class ThrottleOut(Response):
    forks: int | None
    per_group: int | None
    delay: float


class ApprovalNeedOut(Response):
    """Why approval was required: every requiring rule, and whose approvers decide."""

    reasons: list[str]
    retry_needs_approval: bool
    #: ``{"scope": "script"|"group"|"command"|"job", "name": ...}``
    decided_by: dict[str, str]


class HostResultOut(Response):
    id: str
    host: str
    host_id: str | None
    state: str
    attempt: int
    exit_code: int | None
    reason: str | None
    message: str | None
    waiting_reason: str | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    stdout_tail: str
    stderr_tail: str
    stdout_truncated: bool
    stderr_truncated: bool
    stdout_bytes: int
    stderr_bytes: int


class SkippedHostOut(Response):
    host: str
    reason: str


class ExecutionOut(Response):
    id: str
    kind: str
    status: str
    description: str
    script_id: str | None
    script_version: int | None
    content_hash: str | None
    priority: str
    parameter_values: dict[str, Any]
    created_at: datetime | None
    finished_at: datetime | None
    hosts: list[HostResultOut]
    skipped_hosts: list[SkippedHostOut]
    counts: dict[str, int]
    throttle: ThrottleOut
    #: Set when the execution's rules required approval (its newest request's, after a retry).
    approval: ApprovalNeedOut | None = None


class ExecutionSummaryOut(Response):
    """An execution in a list: status and counts; parameter values and every host's
    result (with output tails) only come with ``GET .../executions/{id}``."""

    id: str
    kind: str
    status: str
    description: str
    script_id: str | None
    script_version: int | None
    content_hash: str | None
    priority: str
    created_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int]


class ExecutionList(Response):
    items: list[ExecutionSummaryOut]
    total: int
    limit: int
    offset: int

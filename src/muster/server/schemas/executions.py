"""Executions and their host results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from muster.server.schemas.common import Response

__all__ = [
    "ApprovalNeedOut",
    "ExecutionList",
    "ExecutionOut",
    "ExecutionSummaryOut",
    "HostResultOut",
    "SkippedHostOut",
]


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

"""Schedules (seed 000's scheduled executions, seed 001's recurring jobs)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator

from muster.domain.durations import MAX_TIMEOUT
from muster.domain.schedules import MAX_RECORDED_TICKS
from muster.server.schemas.common import MAX_VERSION, Request, Response
from muster.server.schemas.executions import ThrottleFields

__all__ = ["FiringOut", "ScheduleIn", "ScheduleOut"]


class ScheduleIn(Request, ThrottleFields):
    """A schedule: cron in a time zone, what it runs, on which hosts.

    ``target``: ``script`` (``script`` id or name; ``version`` a number, or
    omitted/``"latest"`` for the latest version at fire time), ``command``
    (``command``, ``shell``, ``timeout``) or ``job`` (``job_type`` and
    ``job_fields``).
    """

    name: str = Field(min_length=1, max_length=200)
    cron_expression: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    target: Literal["script", "command", "job", "workflow"] = "script"
    script: str | None = Field(default=None, max_length=200)
    #: A version number, or ``"latest"`` / omitted: the latest at fire time.
    version: int | str | None = None
    command: str | None = None
    shell: str = "sh"
    timeout: float = Field(default=300, gt=0, le=MAX_TIMEOUT)
    job_type: str | None = None
    job_fields: dict[str, Any] = Field(default_factory=dict)
    workflow: str | None = None
    host_ids: list[str] = Field(min_length=1)
    parameter_values: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    max_runs: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    end_at: dt.datetime | None = None
    misfire_policy: Literal["skip", "run_once", "catch_up"] = "run_once"
    catch_up_limit: int = Field(default=1, ge=1, le=MAX_RECORDED_TICKS)
    #: Seconds; a tick later than this is recorded missed, never run.
    max_lateness: float | None = Field(default=None, gt=0, le=366 * 86400)

    @field_validator("version")
    @classmethod
    def _version(cls, value: int | str | None) -> int | None:
        if value is None or value == "latest":
            return None
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_VERSION:
            raise ValueError(f"a version number (1 to {MAX_VERSION}) or 'latest'")
        return value


class ScheduleOut(Response):
    id: str
    name: str
    cron_expression: str
    timezone: str
    target: str
    target_label: str
    script_id: str | None
    version: int | Literal["latest"] | None
    command: str | None
    shell: str
    timeout: float
    job_type: str | None
    job_fields: dict[str, Any]
    host_ids: list[str]
    parameter_values: dict[str, Any]
    forks: int | None
    per_group: int | None
    delay: float
    enabled: bool
    max_runs: int | None
    runs: int
    end_at: dt.datetime | None
    misfire_policy: str
    catch_up_limit: int
    max_lateness: float | None
    #: When it last started an execution.
    last_run: dt.datetime | None
    #: The last firing: the status of the execution it started, else missed/skipped/failed.
    last_status: str | None
    last_execution_id: str | None
    next_run: dt.datetime | None
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class FiringOut(Response):
    id: str
    due_at: dt.datetime
    fired_at: dt.datetime
    status: str
    execution_id: str | None
    execution_status: str | None
    script_version: int | None
    content_hash: str | None
    reason: str | None
    manual: bool

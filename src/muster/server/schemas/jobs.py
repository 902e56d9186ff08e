"""Ad-hoc commands and built-in job types (seed 001)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from muster.domain.durations import MAX_TIMEOUT
from muster.server.schemas.common import Request
from muster.server.schemas.executions import ThrottleFields

__all__ = ["CommandIn", "JobIn"]


class CommandIn(Request, ThrottleFields):
    command: str = Field(min_length=1)
    host_ids: list[str] = Field(min_length=1)
    timeout: float = Field(default=300, gt=0, le=MAX_TIMEOUT)
    shell: str = "sh"


class JobIn(Request, ThrottleFields):
    """``type`` and targets; the type's own fields are checked by the job renderer,
    which rejects unknown ones by name."""

    model_config = ConfigDict(extra="allow")

    type: str
    host_ids: list[str] = Field(min_length=1)

"""Schedules and their firings: the :class:`ScheduleStore` protocol and its records.

A schedule row keeps the schedule (see :mod:`muster.domain.schedules`) and its
state: the *cursor* (every tick at or before it is decided), the runs fired,
and ``next_run`` (indexed: the scheduler asks for schedules due by now). A
firing row records one tick: due time, when it was recorded, its status
(fired / missed / skipped / failed), the script version chosen and the
execution it started. ``(schedule_id, due_at)`` is unique, so a tick is
recorded once whoever records it; firing a tick writes its execution and its
firing row in one transaction, so a tick that fired has exactly one
execution, and one whose firing lost the race has none.

SQLAlchemy-free: the in-memory store and the services import it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from muster.domain.schedules import FiringStatus, Schedule, ScheduleState
from muster.store.base import ExecutionRecord, NewExecution

__all__ = [
    "FiringClaim",
    "FiringRecord",
    "LeaderLock",
    "ScheduleRecord",
    "ScheduleStore",
    "TickRecord",
]


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A stored schedule and where it stands."""

    schedule: Schedule
    cursor: dt.datetime
    runs: int
    next_run: dt.datetime | None
    #: When the last execution was started (a fired tick or "run now").
    last_run: dt.datetime | None
    #: The latest recorded firing's status.
    last_firing_status: FiringStatus | None
    last_execution_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def id(self) -> str:
        return self.schedule.id

    @property
    def name(self) -> str:
        return self.schedule.name

    @property
    def state(self) -> ScheduleState:
        return ScheduleState(self.cursor, self.runs)


@dataclass(frozen=True, slots=True)
class FiringRecord:
    id: str
    schedule_id: str
    due_at: dt.datetime
    #: When it was recorded (the fire time for a fired tick).
    fired_at: dt.datetime
    status: FiringStatus
    execution_id: str | None
    script_version: int | None
    content_hash: str | None
    reason: str | None
    #: Started by "run now", outside the cron.
    manual: bool


@dataclass(frozen=True, slots=True)
class TickRecord:
    """A tick that did not start anything (missed, skipped or failed) and why."""

    due_at: dt.datetime
    status: FiringStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FiringClaim:
    """The firing row written with an execution: which tick, which version was chosen."""

    schedule_id: str
    due_at: dt.datetime
    manual: bool = False
    script_version: int | None = None
    content_hash: str | None = None
    reason: str | None = None


class LeaderLock(Protocol):
    """Who leads the schedulers on one database (a PostgreSQL advisory lock)."""

    def try_acquire(self) -> bool:
        """Take the lead if no one holds it; True if this process now leads."""
        ...

    def held(self) -> bool:
        """Whether the lead is still ours (False once the lock's connection is gone)."""
        ...

    def release(self) -> None: ...


@runtime_checkable
class ScheduleStore(Protocol):
    """Schedules, their firings, and the scheduler's lead."""

    def create_schedule(
        self, schedule: Schedule, *, cursor: dt.datetime, next_run: dt.datetime | None
    ) -> ScheduleRecord:
        """Store a new schedule (its id is made here); a taken name is a ConflictError."""
        ...

    def get_schedule(self, id_or_name: str) -> ScheduleRecord: ...
    def list_schedules(self, *, enabled: bool | None = None) -> list[ScheduleRecord]: ...

    def replace_schedule(
        self,
        schedule_id: str,
        schedule: Schedule,
        *,
        cursor: dt.datetime,
        next_run: dt.datetime | None,
    ) -> ScheduleRecord:
        """Change what a schedule is (its runs and firings are kept)."""
        ...

    def delete_schedule(self, schedule_id: str) -> None:
        """Forget the schedule and its firings (executions it started are kept)."""
        ...

    def due_schedules(self, now: dt.datetime, *, limit: int = 500) -> list[ScheduleRecord]:
        """Enabled schedules whose ``next_run`` is at or before ``now``, soonest first."""
        ...

    def fire_schedule(self, claim: FiringClaim, new: NewExecution) -> ExecutionRecord | None:
        """Create ``new`` and its firing row in one transaction and count the run; if the
        tick is already recorded, create nothing and return None."""
        ...

    def record_ticks(self, schedule_id: str, ticks: Sequence[TickRecord]) -> int:
        """Record ticks that started nothing; ones already recorded are left as they are.
        Returns how many were added."""
        ...

    def advance_schedule(
        self,
        schedule_id: str,
        *,
        expected_cursor: dt.datetime,
        cursor: dt.datetime,
        next_run: dt.datetime | None,
    ) -> bool:
        """Move the cursor and next run if the cursor is still ``expected_cursor``."""
        ...

    def list_firings(
        self, schedule_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[FiringRecord]:
        """Newest due time first."""
        ...

    def scheduler_lock(self) -> LeaderLock: ...

"""Schedules and their firings in memory, with the SQL store's rules
(``store/schedule_store.py``): one firing per (schedule, due time), a fired
tick's execution and firing written in one step under the store's lock, the
cursor moved by compare-and-set, and one lead per store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Sequence

from muster.domain.schedules import FiringStatus, Schedule
from muster.errors import ConflictError, NotFoundError
from muster.store.base import ExecutionRecord, NewExecution
from muster.store.schedule_records import (
    FiringClaim,
    FiringRecord,
    LeaderLock,
    ScheduleRecord,
    TickRecord,
)
from muster.testing._memory_core import MemoryCore, new_id

__all__ = ["ScheduleOps"]

_SCHEDULES_KEY = "schedules"  # muster.store.schedule_store.SCHEDULES_KEY, without SQLAlchemy


class _Lead:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._held = False

    def try_acquire(self) -> bool:
        if not self._held:
            self._held = self._lock.acquire(blocking=False)
        return self._held

    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()


class ScheduleOps(MemoryCore):
    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._schedules: dict[str, ScheduleRecord] = {}
            self._firings: dict[tuple[str, dt.datetime], FiringRecord] = {}
            self._lead = threading.Lock()

    def _find(self, id_or_name: str) -> ScheduleRecord:
        found = self._schedules.get(id_or_name) or next(
            (s for s in self._schedules.values() if s.name == id_or_name), None
        )
        if found is None:
            raise NotFoundError(f"no schedule {id_or_name}")
        return found

    def _name_taken(self, name: str, but: str | None = None) -> None:
        if any(s.name == name and s.id != but for s in self._schedules.values()):
            raise ConflictError(f"a schedule named {name!r} exists")

    def create_schedule(
        self, schedule: Schedule, *, cursor: dt.datetime, next_run: dt.datetime | None
    ) -> ScheduleRecord:
        with self._tx(_SCHEDULES_KEY):
            self._name_taken(schedule.name)
            now = self.clock()
            record = ScheduleRecord(
                schedule=dataclasses.replace(schedule, id=new_id()),
                cursor=cursor,
                runs=0,
                next_run=next_run,
                last_run=None,
                last_firing_status=None,
                last_execution_id=None,
                created_at=now,
                updated_at=now,
            )
            self._schedules[record.id] = record
            return record

    def get_schedule(self, id_or_name: str) -> ScheduleRecord:
        with self._lock:
            return self._find(id_or_name)

    def list_schedules(self, *, enabled: bool | None = None) -> list[ScheduleRecord]:
        with self._lock:
            return sorted(
                (
                    s
                    for s in self._schedules.values()
                    if enabled is None or s.schedule.enabled == enabled
                ),
                key=lambda s: s.name,
            )

    def replace_schedule(
        self,
        schedule_id: str,
        schedule: Schedule,
        *,
        cursor: dt.datetime,
        next_run: dt.datetime | None,
    ) -> ScheduleRecord:
        with self._tx(_SCHEDULES_KEY):
            old = self._schedules.get(schedule_id)
            if old is None:
                raise NotFoundError(f"no schedule {schedule_id}")
            self._name_taken(schedule.name, but=schedule_id)
            new = dataclasses.replace(
                old,
                schedule=dataclasses.replace(
                    schedule, id=schedule_id, created_by=old.schedule.created_by
                ),
                cursor=cursor,
                next_run=next_run,
                updated_at=self.clock(),
            )
            self._schedules[schedule_id] = new
            return new

    def delete_schedule(self, schedule_id: str) -> None:
        with self._tx(_SCHEDULES_KEY):
            if self._schedules.pop(schedule_id, None) is None:
                raise NotFoundError(f"no schedule {schedule_id}")
            for key in [k for k in self._firings if k[0] == schedule_id]:
                del self._firings[key]

    def due_schedules(self, now: dt.datetime, *, limit: int = 500) -> list[ScheduleRecord]:
        with self._lock:
            due = [
                s
                for s in self._schedules.values()
                if s.schedule.enabled and s.next_run is not None and s.next_run <= now
            ]
        due.sort(key=lambda s: (s.next_run or now, s.id))
        return due[:limit]

    def fire_schedule(self, claim: FiringClaim, new: NewExecution) -> ExecutionRecord | None:
        with self._lock:
            key = (claim.schedule_id, claim.due_at)
            record = self._schedules.get(claim.schedule_id)
            if key in self._firings or record is None:
                return None
            execution = self.create_execution(new)  # type: ignore[attr-defined]
            now = self.clock()
            self._firings[key] = FiringRecord(
                id=new_id(),
                schedule_id=claim.schedule_id,
                due_at=claim.due_at,
                fired_at=now,
                status=FiringStatus.FIRED,
                execution_id=execution.id,
                script_version=claim.script_version,
                content_hash=claim.content_hash,
                reason=claim.reason,
                manual=claim.manual,
            )
            self._schedules[claim.schedule_id] = dataclasses.replace(
                record,
                runs=record.runs + (0 if claim.manual else 1),
                last_run=now,
                last_firing_status=FiringStatus.FIRED,
                last_execution_id=execution.id,
            )
            result: ExecutionRecord = execution
            return result

    def record_ticks(self, schedule_id: str, ticks: Sequence[TickRecord]) -> int:
        with self._lock:
            now = self.clock()
            added = []
            for t in ticks:
                key = (schedule_id, t.due_at)
                if key in self._firings:
                    continue
                self._firings[key] = FiringRecord(
                    new_id(),
                    schedule_id,
                    t.due_at,
                    now,
                    t.status,
                    None,
                    None,
                    None,
                    t.reason,
                    False,
                )
                added.append(t)
            record = self._schedules.get(schedule_id)
            if added and record is not None:
                latest = max(added, key=lambda t: t.due_at)
                self._schedules[schedule_id] = dataclasses.replace(
                    record, last_firing_status=latest.status
                )
            return len(added)

    def advance_schedule(
        self,
        schedule_id: str,
        *,
        expected_cursor: dt.datetime,
        cursor: dt.datetime,
        next_run: dt.datetime | None,
    ) -> bool:
        with self._lock:
            record = self._schedules.get(schedule_id)
            if record is None or record.cursor != expected_cursor:
                return False
            self._schedules[schedule_id] = dataclasses.replace(
                record, cursor=cursor, next_run=next_run
            )
            return True

    def list_firings(
        self, schedule_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[FiringRecord]:
        with self._lock:
            mine = [f for (sid, _), f in self._firings.items() if sid == schedule_id]
        mine.sort(key=lambda f: f.due_at, reverse=True)
        return mine[offset : offset + limit]

    def scheduler_lock(self) -> LeaderLock:
        return _Lead(self._lead)

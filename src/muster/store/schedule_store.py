"""Schedules and their firings on the store's database (see :mod:`.schedule_records`).

Firing a tick is one transaction: ``INSERT INTO schedule_firings ... ON
CONFLICT (schedule_id, due_at) DO NOTHING`` and, only if that added the row,
the execution (the execution part's own ``insert_execution``); a concurrent
firer of the same tick waits on the key and then adds nothing, so the loser of
a race leaves nothing behind.
The lead among schedulers is a PostgreSQL session-level advisory lock held
on one connection of its own: it goes when that session ends (a killed
process's socket closes), so a follower's next try takes over. SQLite has one
lead per process and database file; the unique firing key still guards it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, RowMapping, delete, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from muster.domain.schedules import (
    Cron,
    FiringStatus,
    MisfirePolicy,
    Schedule,
    ScheduleTarget,
    TargetKind,
)
from muster.domain.throttle import Throttle
from muster.errors import ConflictError, NotFoundError
from muster.store._core import StoreCore, new_id
from muster.store._executions import insert_execution
from muster.store.base import ExecutionRecord, NewExecution
from muster.store.notify import QUEUE_KEY, execution_key
from muster.store.schedule_records import (
    FiringClaim,
    FiringRecord,
    LeaderLock,
    ScheduleRecord,
    TickRecord,
)
from muster.store.schedule_tables import schedule_firings, schedules

__all__ = ["SCHEDULES_KEY", "ScheduleOps"]

#: Wake-up key sent when a schedule is created or changed (the scheduler re-reads).
SCHEDULES_KEY: Final = "schedules"
#: pg_advisory_lock's first key for the scheduler lead ("must"); the second is the
#: schema's hash, so deployments in different schemas of one database lead apart.
_LEAD_KEY: Final = 0x6D757374
_LEAD_ARGS: Final = ":k, hashtext(current_schema())"
_s = schedules
_f = schedule_firings


def _schedule(r: RowMapping) -> ScheduleRecord:
    lateness = r["max_lateness_seconds"]
    schedule = Schedule(
        id=r["id"],
        name=r["name"],
        cron=Cron(r["cron_expression"], r["timezone"]),
        target=ScheduleTarget(
            kind=TargetKind(r["target_kind"]),
            script=r["script_id"],
            version=r["script_version"],
            command=r["command"],
            shell=r["shell"],
            timeout=r["timeout"],
            job_type=r["job_type"],
            job_fields=dict(r["job_fields"] or {}),
            workflow=r["workflow"],
        ),
        selector=tuple(r["selector"]),
        parameters=dict(r["parameters"] or {}),
        throttle=Throttle(r["forks"], r["per_group"], r["delay_seconds"]),
        enabled=r["enabled"],
        max_runs=r["max_runs"],
        end_at=r["end_at"],
        misfire_policy=MisfirePolicy(r["misfire_policy"]),
        catch_up_limit=r["catch_up_limit"],
        max_lateness=None if lateness is None else dt.timedelta(seconds=lateness),
        created_by=r["created_by"],
    )
    status = r["last_firing_status"]
    return ScheduleRecord(
        schedule=schedule,
        cursor=r["cursor"],
        runs=r["runs"],
        next_run=r["next_run"],
        last_run=r["last_run"],
        last_firing_status=FiringStatus(status) if status else None,
        last_execution_id=r["last_execution_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def _firing(r: RowMapping) -> FiringRecord:
    return FiringRecord(
        id=r["id"],
        schedule_id=r["schedule_id"],
        due_at=r["due_at"],
        fired_at=r["fired_at"],
        status=FiringStatus(r["status"]),
        execution_id=r["execution_id"],
        script_version=r["script_version"],
        content_hash=r["content_hash"],
        reason=r["reason"],
        manual=r["manual"],
    )


def _definition(schedule: Schedule) -> dict[str, Any]:
    """The columns that say what a schedule is (not its state)."""
    t = schedule.target
    return {
        "name": schedule.name,
        "cron_expression": schedule.cron.expression,
        "timezone": schedule.cron.timezone,
        "target_kind": t.kind.value,
        "script_id": t.script,
        "script_version": t.version,
        "command": t.command,
        "shell": t.shell,
        "timeout": t.timeout,
        "job_type": t.job_type,
        "job_fields": dict(t.job_fields),
        "workflow": t.workflow,
        "selector": list(schedule.selector),
        "parameters": dict(schedule.parameters),
        "forks": schedule.throttle.forks,
        "per_group": schedule.throttle.per_group,
        "delay_seconds": schedule.throttle.delay,
        "enabled": schedule.enabled,
        "max_runs": schedule.max_runs,
        "end_at": schedule.end_at,
        "misfire_policy": schedule.misfire_policy.value,
        "catch_up_limit": schedule.catch_up_limit,
        "max_lateness_seconds": (
            None if schedule.max_lateness is None else schedule.max_lateness.total_seconds()
        ),
    }


class ScheduleOps(StoreCore):
    """:class:`~muster.store.schedule_records.ScheduleStore` over SQLAlchemy."""

    if TYPE_CHECKING:

        def _execution(
            self, conn: Connection, execution_id: str, *, with_runs: bool, history: bool = False
        ) -> ExecutionRecord: ...

    def _insert_ignoring(self, conn: Connection, rows: list[dict[str, Any]]) -> list[str]:
        dialect = postgresql if self.is_postgres else sqlite
        stmt = (
            dialect.insert(_f)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["schedule_id", "due_at"])
            .returning(_f.c.id)
        )
        return [r[0] for r in conn.execute(stmt).all()]

    def create_schedule(
        self, schedule: Schedule, *, cursor: dt.datetime, next_run: dt.datetime | None
    ) -> ScheduleRecord:
        sid = new_id()
        now = self.clock()
        with self._tx(notify=(SCHEDULES_KEY,)) as tx:
            if tx.conn.execute(select(_s.c.id).where(_s.c.name == schedule.name)).first():
                raise ConflictError(f"a schedule named {schedule.name!r} exists")
            tx.conn.execute(
                insert(_s).values(
                    id=sid,
                    created_by=schedule.created_by,
                    created_at=now,
                    updated_at=now,
                    cursor=cursor,
                    runs=0,
                    next_run=next_run,
                    **_definition(schedule),
                )
            )
            return self._get(tx.conn, sid)

    def _get(self, conn: Connection, id_or_name: str) -> ScheduleRecord:
        row = (
            conn.execute(select(_s).where(or_(_s.c.id == id_or_name, _s.c.name == id_or_name)))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"no schedule {id_or_name}")
        return _schedule(row)

    def get_schedule(self, id_or_name: str) -> ScheduleRecord:
        with self._read() as conn:
            return self._get(conn, id_or_name)

    def list_schedules(self, *, enabled: bool | None = None) -> list[ScheduleRecord]:
        query = select(_s).order_by(_s.c.name)
        if enabled is not None:
            query = query.where(_s.c.enabled == enabled)
        with self._read() as conn:
            return [_schedule(r) for r in conn.execute(query).mappings()]

    def replace_schedule(
        self,
        schedule_id: str,
        schedule: Schedule,
        *,
        cursor: dt.datetime,
        next_run: dt.datetime | None,
    ) -> ScheduleRecord:
        with self._tx(notify=(SCHEDULES_KEY,)) as tx:
            taken = tx.conn.execute(
                select(_s.c.id).where(_s.c.name == schedule.name, _s.c.id != schedule_id)
            ).first()
            if taken:
                raise ConflictError(f"a schedule named {schedule.name!r} exists")
            changed = tx.conn.execute(
                update(_s)
                .where(_s.c.id == schedule_id)
                .values(
                    updated_at=self.clock(),
                    cursor=cursor,
                    next_run=next_run,
                    **_definition(schedule),
                )
            ).rowcount
            if not changed:
                raise NotFoundError(f"no schedule {schedule_id}")
            return self._get(tx.conn, schedule_id)

    def delete_schedule(self, schedule_id: str) -> None:
        with self._tx(notify=(SCHEDULES_KEY,)) as tx:
            tx.conn.execute(delete(_f).where(_f.c.schedule_id == schedule_id))
            if not tx.conn.execute(delete(_s).where(_s.c.id == schedule_id)).rowcount:
                raise NotFoundError(f"no schedule {schedule_id}")

    def due_schedules(self, now: dt.datetime, *, limit: int = 500) -> list[ScheduleRecord]:
        query = (
            select(_s)
            .where(_s.c.enabled.is_(True), _s.c.next_run.is_not(None), _s.c.next_run <= now)
            .order_by(_s.c.next_run, _s.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [_schedule(r) for r in conn.execute(query).mappings()]

    def fire_schedule(self, claim: FiringClaim, new: NewExecution) -> ExecutionRecord | None:
        now = self.clock()
        with self._tx(notify=(QUEUE_KEY,)) as tx:
            # The firing row first: the loser of a race learns it before writing anything.
            fid = new_id()
            added = self._insert_ignoring(
                tx.conn,
                [
                    {
                        "id": fid,
                        "schedule_id": claim.schedule_id,
                        "due_at": claim.due_at,
                        "fired_at": now,
                        "status": FiringStatus.FIRED.value,
                        "execution_id": None,
                        "script_version": claim.script_version,
                        "content_hash": claim.content_hash,
                        "reason": claim.reason,
                        "manual": claim.manual,
                    }
                ],
            )
            if not added:
                tx.keys.clear()
                return None
            execution_id = insert_execution(tx.conn, new, now, self.vault)
            tx.notify(execution_key(execution_id))
            tx.conn.execute(update(_f).where(_f.c.id == fid).values(execution_id=execution_id))
            tx.conn.execute(
                update(_s)
                .where(_s.c.id == claim.schedule_id)
                .values(
                    runs=_s.c.runs + (0 if claim.manual else 1),
                    last_run=now,
                    last_firing_status=FiringStatus.FIRED.value,
                    last_execution_id=execution_id,
                )
            )
            return self._execution(tx.conn, execution_id, with_runs=True)

    def record_ticks(self, schedule_id: str, ticks: Sequence[TickRecord]) -> int:
        if not ticks:
            return 0
        now = self.clock()
        rows = [
            {
                "id": new_id(),
                "schedule_id": schedule_id,
                "due_at": t.due_at,
                "fired_at": now,
                "status": t.status.value,
                "execution_id": None,
                "script_version": None,
                "content_hash": None,
                "reason": t.reason,
                "manual": False,
            }
            for t in ticks
        ]
        added = 0
        with self._tx() as tx:
            for start in range(0, len(rows), 200):
                added += len(self._insert_ignoring(tx.conn, rows[start : start + 200]))
            if added:
                latest = max(ticks, key=lambda t: t.due_at)
                tx.conn.execute(
                    update(_s)
                    .where(_s.c.id == schedule_id)
                    .values(last_firing_status=latest.status.value)
                )
        return added

    def advance_schedule(
        self,
        schedule_id: str,
        *,
        expected_cursor: dt.datetime,
        cursor: dt.datetime,
        next_run: dt.datetime | None,
    ) -> bool:
        with self._single() as conn:
            won = conn.execute(
                update(_s)
                .where(_s.c.id == schedule_id, _s.c.cursor == expected_cursor)
                .values(cursor=cursor, next_run=next_run)
            ).rowcount
        return bool(won)

    def list_firings(
        self, schedule_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[FiringRecord]:
        query = (
            select(_f)
            .where(_f.c.schedule_id == schedule_id)
            .order_by(_f.c.due_at.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._read() as conn:
            return [_firing(r) for r in conn.execute(query).mappings()]

    def scheduler_lock(self) -> LeaderLock:
        if self.is_postgres:
            return _PgLeaderLock(self)
        return _LocalLeaderLock(str(self.engine.url))


class _PgLeaderLock:
    """A session-level advisory lock on a connection kept for it alone."""

    def __init__(self, store: StoreCore) -> None:
        self._engine = store.engine
        self._conn: Connection | None = None
        self._held = False

    def _drop(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # the connection is already gone: nothing to hand back
                pass

    def try_acquire(self) -> bool:
        if self._held:
            return self.held()
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = self._conn.execute(
                text(f"SELECT pg_try_advisory_lock({_LEAD_ARGS})"), {"k": _LEAD_KEY}
            ).scalar()
        except DBAPIError:
            self._drop()
            return False
        self._held = bool(got)
        return self._held

    def held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except DBAPIError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None and self._held:
            with contextlib.suppress(DBAPIError):
                self._conn.execute(
                    text(f"SELECT pg_advisory_unlock({_LEAD_ARGS})"), {"k": _LEAD_KEY}
                )
        self._drop()


_LOCAL_LEADS: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


class _LocalLeaderLock:
    """SQLite: one lead per process and database; other processes are guarded only by
    the unique firing key (SQLite deployments run one server)."""

    def __init__(self, key: str) -> None:
        with _LOCAL_GUARD:
            self._lock = _LOCAL_LEADS.setdefault(key, threading.Lock())
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

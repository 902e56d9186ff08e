"""The scheduler: one loop that turns due ticks into executions, led by one process.

Several schedulers may run against one database (``muster serve`` runs one,
``muster scheduler`` runs one on its own); exactly one leads, by holding the
store's :meth:`~muster.store.schedule_records.ScheduleStore.scheduler_lock`
(a PostgreSQL advisory lock). The others try to take the lead every
``poll`` seconds, so when the leader dies (its lock goes with its session)
a follower leads within about one poll.

Leading, a pass reads the schedules due by now and, for each, carries out
:func:`~muster.domain.schedules.decide`: ticks that start nothing are
recorded (missed, skipped), ticks to fire go through
:meth:`ScheduleService.fire` (the submission service, as a manual run), and
then the cursor moves by compare-and-set. Should a leader die half-way,
the next one decides the same ticks again: whatever was recorded stays
(the firing key is unique), the rest is decided afresh, so nothing fires
twice and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from muster.domain.schedules import FiringStatus, decide
from muster.services.actor import Actor
from muster.services.approvals import Approvals
from muster.services.schedules import ActorLookup, ScheduleService, owners_from
from muster.services.submission import Submission
from muster.store.protocols import ServerStore
from muster.store.schedule_records import LeaderLock, ScheduleRecord, TickRecord

__all__ = ["PassReport", "Scheduler", "schedule_service"]

_log = logging.getLogger(__name__)
#: The wake-up key the store sends when a schedule is created or changed.
SCHEDULES_KEY = "schedules"


_COUNT_LOCK = threading.Lock()


class _Owners:
    """Owner lookups memoised for one pass (1,000 schedules of one owner: one lookup)."""

    def __init__(self, lookup: ActorLookup) -> None:
        self._lookup = lookup
        self._seen: dict[str, Actor | None] = {}

    def __call__(self, name: str) -> Actor | None:
        if name not in self._seen:
            self._seen[name] = self._lookup(name)
        return self._seen[name]


@dataclass(slots=True)
class PassReport:
    """What one pass did (zeros for a follower)."""

    leading: bool = False
    schedules: int = 0
    counts: dict[FiringStatus, int] = field(default_factory=dict)

    def add(self, status: FiringStatus, n: int = 1) -> None:
        with _COUNT_LOCK:
            self.counts[status] = self.counts.get(status, 0) + n

    @property
    def fired(self) -> int:
        return self.counts.get(FiringStatus.FIRED, 0)


def schedule_service(
    store: ServerStore,
    *,
    submission: Submission | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> ScheduleService:
    """The schedule service over a server's store (the server passes its own
    submission, whose watch feeds the webhook watcher; ``muster scheduler`` has none:
    the webhook sweep reports its executions when they finish)."""
    if submission is None:
        approvals = Approvals(
            store, book=store, rules=store, users=store, audit=store, clock=store.clock
        )
        submission = Submission(store, approvals, store)
    return ScheduleService(
        store, submission, store, actors=owners_from(store), clock=clock or store.clock
    )


class Scheduler:
    """Runs passes from :meth:`run` until :meth:`stop`; :meth:`step` is one pass."""

    def __init__(
        self,
        service: ScheduleService,
        *,
        poll: float = 1.0,
        batch: int = 500,
        concurrency: int = 8,
        clock: Callable[[], dt.datetime] | None = None,
        name: str = "muster-scheduler",
    ) -> None:
        if poll <= 0:
            raise ValueError("the scheduler's poll must be positive")
        self.service = service
        self.store = service.store
        self.poll = poll
        self.batch = batch
        self.concurrency = concurrency
        self.clock = clock or service.clock
        self.name = name
        self.lock: LeaderLock = self.store.scheduler_lock()
        self.passes = 0
        self._leading = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return self.lock.held()

    def step(self) -> PassReport:
        """One pass (blocking: run it in a thread). Takes the lead if it is free.

        Due schedules are carried out by up to ``concurrency`` threads: a firing
        spends its time waiting on the database, and schedules are independent
        (each tick's firing is still one transaction, its key unique).
        """
        report = PassReport()
        if not self.lock.try_acquire():
            if self._leading:
                _log.warning("%s (pid %d): lost the lead", self.name, os.getpid())
            self._leading = False
            return report
        if not self._leading:
            _log.info("%s (pid %d): leading", self.name, os.getpid())
            self._leading = True
        report.leading = True
        owners = _Owners(self.service.actors)
        while True:
            now = self.clock()
            due = self.store.due_schedules(now, limit=self.batch)
            if not due:
                break
            if not self.lock.held():
                report.leading = self._leading = False
                return report
            if self.concurrency > 1 and len(due) > 1:
                with ThreadPoolExecutor(
                    min(self.concurrency, len(due)), thread_name_prefix=self.name
                ) as pool:
                    for _ in pool.map(
                        self._advance,
                        due,
                        [now] * len(due),
                        [report] * len(due),
                        [owners] * len(due),
                    ):
                        pass
            else:
                for record in due:
                    self._advance(record, now, report, owners)
            report.schedules += len(due)
            if len(due) < self.batch:
                break
        self.passes += 1
        return report

    def _advance(
        self, record: ScheduleRecord, now: dt.datetime, report: PassReport, owners: _Owners
    ) -> None:
        try:
            self.advance(record, now, report, owners=owners)
        except Exception:
            # One schedule's trouble (a database error) must not stop the others; its
            # cursor did not move, so the next pass decides its ticks again.
            _log.exception("%s: schedule %s failed", self.name, record.name)

    def advance(
        self,
        record: ScheduleRecord,
        now: dt.datetime,
        report: PassReport,
        *,
        owners: ActorLookup | None = None,
    ) -> None:
        """Carry out the decision for one schedule's ticks due by ``now``."""
        decision = decide(record.schedule, record.state, now)
        quiet = [
            TickRecord(t.due_at, t.status, t.reason)
            for t in decision.ticks
            if t.status is not FiringStatus.FIRED
        ]
        if quiet:
            self.store.record_ticks(record.id, quiet)
            for t in quiet:
                report.add(t.status)
        for tick in decision.ticks:
            if tick.status is FiringStatus.FIRED:
                result = self.service.fire(record, tick.due_at, tick.reason, owners=owners)
                report.add(result.status)
        if not self.store.advance_schedule(
            record.id,
            expected_cursor=record.cursor,
            cursor=decision.cursor,
            next_run=decision.next_run,
        ):
            _log.info("%s: %s changed while it was decided", self.name, record.name)

    async def run(self) -> None:
        """Pass, then wait for a change or ``poll`` seconds, until stopped."""
        loop = asyncio.get_running_loop()
        try:
            with self.store.notifier.subscribe(SCHEDULES_KEY) as changed:
                while not self._stop.is_set():
                    try:
                        report = await loop.run_in_executor(None, self.step)
                        if report.counts:
                            _log.info("%s: %s", self.name, dict(report.counts))
                    except Exception:
                        _log.exception("%s: pass failed", self.name)
                    waits = {
                        asyncio.ensure_future(self._stop.wait()),
                        asyncio.ensure_future(changed.wait(self.poll)),
                    }
                    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    for task in pending:
                        task.cancel()
        finally:
            await loop.run_in_executor(None, self.lock.release)

    def start(self) -> asyncio.Task[None]:
        self._stop.clear()
        self._task = asyncio.create_task(self.run(), name=self.name)
        return self._task

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

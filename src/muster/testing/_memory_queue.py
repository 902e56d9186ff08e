"""The queue in memory: claims by priority then time within throttles, leases,
finish, release, the reaper, and output with its cap; as ``store/_queue.py`` and
``store/_output.py`` do them, each change a compare-and-set on (state, owner, epoch).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final

from muster.domain.scripts import ScriptVersion
from muster.domain.states import FailureReason, HostRunState, check_transition, host_answered
from muster.domain.throttle import pick_within
from muster.errors import ValidationError
from muster.store.base import (
    OUTPUT_STREAMS,
    WAITING_FOR_WORKER,
    ClaimedRun,
    LeaseStatus,
    OutputChunk,
    ReapReport,
    RunResult,
    output_cap_marker,
)
from muster.store.notify import QUEUE_KEY, execution_key
from muster.testing._memory_core import ANY_OWNER, Changes, MemoryCore
from muster.testing._memory_rows import ExecutionRow, RunRow
from muster.testing._memory_windows import gate_picked

__all__ = ["QueueOps"]

S = HostRunState

#: Runs the reaper settles per call and per kind (as the SQL store).
_REAP_BATCH: Final = 500
#: Claim rounds when the maintenance-window gate deferred runs (as the SQL store).
_GATE_ROUNDS: Final = 4
_GATE_SCAN: Final = 2000
#: Throttled executions looked at per claim (as the SQL store).
_THROTTLED_BATCH: Final = 50
_PAGE: Final = 500


def _claim_order(run: RunRow) -> tuple[int, dt.datetime, str]:
    return (-run.priority, run.queued_at, run.id)


class QueueOps(MemoryCore):
    """Claims, leases, the reaper and output of ``InMemoryStore``."""

    def claim_host_runs(self, worker_id: str, limit: int, lease_seconds: float) -> list[ClaimedRun]:
        """Claim up to ``limit`` queued runs, by priority then time, within each
        throttled execution's limits; the runs, their secrets opened."""
        if limit <= 0:
            return []
        with self._tx() as changes:
            now = self.clock()
            picked: list[RunRow] = []
            throttled: list[ExecutionRow] = []
            # As the SQL store: runs outside their maintenance window are deferred in
            # place; later rounds look further to fill the batch.
            scan = limit
            for _ in range(_GATE_ROUNDS):
                taken = {r.id for r in picked}
                got, touched = self._pick_throttled(now, scan, skip=taken)
                throttled += touched
                if len(got) < scan:
                    free = sorted(
                        (
                            r
                            for r in self._queued()
                            if not r.throttled and r.available_at <= now and r.id not in taken
                        ),
                        key=_claim_order,
                    )
                    got += free[: scan - len(got)]
                got.sort(key=_claim_order)
                kept, deferred = gate_picked(self, now, got)
                room = limit - len(picked)
                for run in kept[room:]:
                    self._holds.pop(run.id, None)
                picked += kept[:room]
                if not deferred or len(picked) >= limit or len(got) < scan:
                    break
                scan = min(max(2 * scan, 64), _GATE_SCAN)
            if not picked:
                return []
            # Everything a claim needs is checked before anything changes.
            versions = self._pinned_versions({r.execution_id for r in picked})
            lease = now + dt.timedelta(seconds=lease_seconds)
            for run in picked:
                claimed = {
                    "owner": worker_id,
                    "epoch": run.epoch + 1,
                    "claimed_at": now,
                    "lease_expires_at": lease,
                    "waiting_reason": None,
                }
                self._move(changes, run, S.QUEUED, S.RUNNING, epoch=run.epoch, values=claimed)
            for ex in throttled:
                ex.last_claim_at = now
                delay = ex.throttle.delay
                ex.next_start_at = now + dt.timedelta(seconds=delay) if delay else None
            picked.sort(key=_claim_order)
            return [self._claim(run, versions) for run in picked]

    def _pick_throttled(
        self, now: dt.datetime, limit: int, *, skip: set[str] | frozenset[str] = frozenset()
    ) -> tuple[list[RunRow], list[ExecutionRow]]:
        """Runs of executions with limits that may start now, never exceeding them.

        The whole claim holds the lock, so no other claimer can see a free slot
        that this one is taking (the SQL store locks the execution's row).
        """
        due = {r.execution_id for r in self._queued() if r.throttled and r.available_at <= now}
        limited = sorted(
            (
                ex
                for ex in (self._executions[i] for i in due)
                if ex.next_start_at is None or ex.next_start_at <= now
            ),
            key=lambda ex: (-ex.priority, ex.created_at, ex.id),
        )[:_THROTTLED_BATCH]
        picked: list[RunRow] = []
        touched: list[ExecutionRow] = []
        for ex in limited:
            room = limit - len(picked)
            if room <= 0:
                break
            runs = [self._runs[i] for i in ex.run_ids]
            running = [r.group_key for r in runs if r.state is S.RUNNING or r.id in skip]
            forks = ex.throttle.forks
            want = room if forks is None else min(room, forks - len(running))
            if want <= 0:
                continue
            candidates = sorted(
                (
                    r
                    for r in runs
                    if r.state is S.QUEUED and r.available_at <= now and r.id not in skip
                ),
                key=_claim_order,
            )
            if ex.throttle.per_group is None:
                candidates = candidates[:want]
            else:  # as the SQL store: look past blocked runs, but not without bound
                candidates = candidates[: max(want * 20, 200)]
            chosen = set(
                pick_within(ex.throttle, running, [(r.id, r.group_key) for r in candidates])[:want]
            )
            if not chosen:
                continue
            picked += [r for r in candidates if r.id in chosen]
            touched.append(ex)
        return picked, touched

    def _pinned_versions(self, execution_ids: Iterable[str]) -> dict[str, ScriptVersion]:
        """The pinned version of each script execution; raises if one no longer
        matches the hash the execution was approved for."""
        out: dict[str, ScriptVersion] = {}
        for execution_id in execution_ids:
            ex = self._executions[execution_id]
            if ex.script_id is None or ex.script_version is None:
                continue
            script = self._scripts.get(ex.script_id)
            record = script.versions.get(ex.script_version) if script is not None else None
            if record is None:
                continue
            if ex.content_hash and record.content_hash != ex.content_hash:
                raise ValidationError(
                    f"script version {ex.script_version} no longer matches its pinned hash",
                    field="content_hash",
                )
            out[execution_id] = record.domain()
        return out

    def _claim(self, run: RunRow, versions: Mapping[str, ScriptVersion]) -> ClaimedRun:
        ex = self._executions[run.execution_id].record()
        values: dict[str, object] = dict(ex.parameters)
        values.update(self._executions[run.execution_id].secrets)
        host = self._hosts.get(run.host_id) if run.host_id else None
        return ClaimedRun(
            run=run.record(),
            execution=ex,
            host=host.to_host() if host is not None else None,
            version=versions.get(ex.id),
            values=values,
        )

    def mark_started(self, run_id: str, owner: str, epoch: int) -> bool:
        """Record that the command is about to be sent; False means do not send it."""
        return run_id in self.mark_started_many(owner, [(run_id, epoch)])

    def mark_started_many(self, owner: str, runs: Sequence[tuple[str, int]]) -> set[str]:
        won: set[str] = set()
        with self._tx():
            now = self.clock()
            for run_id, epoch in runs:
                run = self._runs.get(run_id)
                if (
                    run is not None
                    and run.state is S.RUNNING
                    and run.owner == owner
                    and run.epoch == epoch
                    and run.started_at is None
                    and not run.cancel_requested
                ):
                    run.started_at = now
                    won.add(run_id)
        return won

    def heartbeat(
        self, worker_id: str, runs: Sequence[tuple[str, int]], lease_seconds: float
    ) -> dict[str, LeaseStatus]:
        found: dict[str, LeaseStatus] = {}
        with self._tx():
            lease = self.clock() + dt.timedelta(seconds=lease_seconds)
            for run_id, epoch in runs:
                run = self._runs.get(run_id)
                if (
                    run is not None
                    and run.owner == worker_id
                    and run.state is S.RUNNING
                    and run.epoch == epoch
                ):
                    run.lease_expires_at = lease
                    found[run_id] = (
                        LeaseStatus.CANCEL_REQUESTED
                        if run.cancel_requested
                        else LeaseStatus.RENEWED
                    )
        return {run_id: found.get(run_id, LeaseStatus.LOST) for run_id, _ in runs}

    def finish_host_run(
        self,
        run_id: str,
        owner: str,
        epoch: int,
        state: HostRunState,
        *,
        exit_code: int | None = None,
        reason: FailureReason | str | None = None,
        message: str = "",
        events: int = 0,
    ) -> bool:
        result = RunResult(run_id, epoch, S(state), exit_code, reason, message, events)
        return run_id in self.finish_host_runs(owner, [result])

    def finish_host_runs(self, owner: str, results: Sequence[RunResult]) -> set[str]:
        """Finish held runs, each a CAS on (owner, epoch); the ids that won."""
        for r in results:
            check_transition(S.RUNNING, S(r.state))
        won: set[str] = set()
        with self._tx() as changes:
            now = self.clock()
            for r in results:
                run = self._runs.get(r.run_id)
                if run is not None and self._move(
                    changes,
                    run,
                    S.RUNNING,
                    S(r.state),
                    owner=owner,
                    epoch=r.epoch,
                    values={
                        "finished_at": now,
                        "exit_code": r.exit_code,
                        "reason": None if r.reason is None else str(r.reason),
                        "message": r.message or None,
                        "lease_expires_at": None,
                        "events": run.events + r.events,
                    },
                ):
                    won.add(r.run_id)
                    host = self._hosts.get(run.host_id or "")
                    if host is not None and host_answered(r.exit_code, r.reason):
                        self._hosts[host.id] = dataclasses.replace(host, last_contact=now)
        return won

    def release_host_run(self, run_id: str, owner: str, epoch: int, why: str) -> bool:
        """Hand an unstarted run back to the queue (graceful stop)."""
        with self._tx(QUEUE_KEY) as changes:
            run = self._runs.get(run_id)
            return run is not None and self._requeue(changes, run, epoch, why, owner=owner)

    def _requeue(
        self,
        changes: Changes,
        run: RunRow,
        epoch: int,
        why: str,
        *,
        owner: object = ANY_OWNER,
        when: bool = True,
    ) -> bool:
        return self._move(
            changes,
            run,
            S.RUNNING,
            S.QUEUED,
            owner=owner,
            epoch=epoch,
            when=when and run.started_at is None,
            values={
                "owner": None,
                "epoch": run.epoch + 1,
                "claimed_at": None,
                "lease_expires_at": None,
                "available_at": self.clock(),
                "waiting_reason": why,
            },
        )

    def reap(self, now: dt.datetime | None = None) -> ReapReport:
        """Settle runs whose worker vanished, ran too long, or were never picked up."""
        out: dict[str, list[str]] = {k: [] for k in ReapReport.__dataclass_fields__}
        with self._tx(QUEUE_KEY) as changes:
            now = now or self.clock()
            expired = [
                r
                for r in self._running()
                if r.lease_expires_at is not None and r.lease_expires_at < now
            ][:_REAP_BATCH]
            for run in expired:
                self._reap_expired(changes, run, now, out)
            self._reap_overdue(changes, now, out)
            self._reap_stale(changes, now, out)
        return ReapReport(**{k: tuple(v) for k, v in out.items()})

    def _reap_expired(
        self, changes: Changes, run: RunRow, now: dt.datetime, out: dict[str, list[str]]
    ) -> None:
        who = run.owner
        end = {"finished_at": now, "lease_expires_at": None}
        if run.cancel_requested:
            if self._move(
                changes,
                run,
                S.RUNNING,
                S.CANCELLED,
                epoch=run.epoch,
                values={
                    **end,
                    "reason": FailureReason.CANCELLED.value,
                    "message": f"cancelled; worker {who} stopped before confirming",
                },
            ):
                out["cancelled"].append(run.id)
            return
        if run.started_at is None:
            why = (
                f"worker {who} stopped renewing its lease before sending the command; "
                f"{WAITING_FOR_WORKER}"
            )
            if self._requeue(changes, run, run.epoch, why):
                out["requeued"].append(run.id)
            return
        lost = self._move(
            changes,
            run,
            S.RUNNING,
            S.LOST,
            epoch=run.epoch,
            values={
                **end,
                "reason": FailureReason.WORKER_LOST.value,
                "message": f"worker {who} stopped renewing its lease after the command was "
                "sent; the outcome on the host is unknown",
            },
        )
        if not lost:
            return
        out["lost"].append(run.id)
        if self._executions[run.execution_id].idempotent:
            self._supersede(run)
            why = f"attempt {run.attempt} was lost with its worker; {WAITING_FOR_WORKER}"
            out["retried"].append(self._next_attempt(changes, run, now, why, S.QUEUED).id)

    def _reap_overdue(self, changes: Changes, now: dt.datetime, out: dict[str, list[str]]) -> None:
        """A started run past twice its timeout is timed out, whatever its lease says."""
        for run in self._running():
            if run.started_at is None:
                continue
            limit = 2 * run.timeout
            if (now - run.started_at).total_seconds() <= limit:
                continue
            if self._move(
                changes,
                run,
                S.RUNNING,
                S.TIMED_OUT,
                epoch=run.epoch,
                values={
                    "finished_at": now,
                    "lease_expires_at": None,
                    "reason": FailureReason.TIMED_OUT.value,
                    "message": f"still running after twice its timeout ({limit:g}s); "
                    "stopped waiting for it",
                },
            ):
                out["timed_out"].append(run.id)

    def _reap_stale(self, changes: Changes, now: dt.datetime, out: dict[str, list[str]]) -> None:
        """A queued run nobody picked up within ``queued_timeout`` fails.

        A throttled run waiting for a slot of its own execution is not "not
        picked up": only if its execution has nothing running and has not
        started a host within the period either.
        """
        stale = now - dt.timedelta(seconds=self.queued_timeout)

        def progressing(ex: ExecutionRow) -> bool:
            if ex.last_claim_at is not None and ex.last_claim_at >= stale:
                return True
            return any(self._runs[i].state is S.RUNNING for i in ex.run_ids)

        queued = [
            r
            for r in self._queued()
            if r.available_at < stale
            and (not r.throttled or not progressing(self._executions[r.execution_id]))
        ][:_REAP_BATCH]
        minutes = self.queued_timeout / 60
        for run in queued:
            if self._move(
                changes,
                run,
                S.QUEUED,
                S.FAILED,
                values={
                    "finished_at": now,
                    "waiting_reason": None,
                    "reason": FailureReason.NOT_PICKED_UP.value,
                    "message": f"no worker picked up this run within {minutes:g} minutes",
                },
            ):
                out["not_picked_up"].append(run.id)

    def append_output(
        self,
        run_id: str,
        owner: str,
        epoch: int,
        stream: str,
        text: str,
        *,
        dropped_bytes: int = 0,
    ) -> bool:
        """Store ``text`` for a run we hold, within the cap; False if it is not ours.

        As the SQL store: the cap counts both streams; the part that fits is
        stored, then one marker chunk per stream states the truncation; later
        output (and ``text`` after a gap of ``dropped_bytes``) moves the
        counters and the tail but is not stored.
        """
        if stream not in OUTPUT_STREAMS:
            raise ValidationError(f"unknown stream {stream!r}", field="stream")
        if not text and not dropped_bytes:
            return True
        with self._tx() as changes:
            run = self._runs.get(run_id)
            if run is None or run.state is not S.RUNNING or run.owner != owner:
                return False
            if run.epoch != epoch:
                return False
            cap = self.output_cap_bytes
            data = text.encode("utf-8")
            room = cap - run.stored_bytes
            truncated_flag = f"{stream}_truncated"
            already = getattr(run, truncated_flag)
            if already or dropped_bytes:
                piece, overflow = "", True
            elif len(data) <= room:
                piece, overflow = text, False
            else:
                piece, overflow = data[: max(room, 0)].decode("utf-8", errors="ignore"), True
            pieces = [piece] if piece else []
            if overflow and not already:
                pieces.append(output_cap_marker(stream, cap))
                setattr(run, truncated_flag, True)
            counted = f"{stream}_bytes"
            setattr(run, counted, getattr(run, counted) + len(data) + dropped_bytes)
            run.stored_bytes += len(piece.encode("utf-8"))
            tail = f"{stream}_tail"
            setattr(run, tail, (getattr(run, tail) + text)[-self.tail_chars :])
            if pieces:
                now = self.clock()
                for p in pieces:
                    run.chunks += 1
                    chunk = OutputChunk(
                        next(self._chunk_ids), run.execution_id, run_id, stream, run.chunks, p, now
                    )
                    self._chunks_by_run.setdefault(run_id, []).append(chunk)
                    self._chunks_by_execution.setdefault(run.execution_id, []).append(chunk)
                changes.notify(execution_key(run.execution_id))
            return True

    def read_output(
        self,
        *,
        execution_id: str | None = None,
        run_id: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[OutputChunk]:
        """Chunks with id > ``after_id``, oldest first, of one execution or host run."""
        if (execution_id is None) == (run_id is None):
            raise ValidationError("give exactly one of execution_id and run_id", field="run_id")
        with self._lock:
            if execution_id is not None:
                chunks = self._chunks_by_execution.get(execution_id, [])
            else:
                assert run_id is not None
                chunks = self._chunks_by_run.get(run_id, [])
            start = bisect.bisect_right(chunks, after_id, key=lambda c: c.id)
            return chunks[start : start + max(limit, 0)]

    def iter_output(self, run_id: str, stream: str | None = None) -> Iterator[OutputChunk]:
        """Every stored chunk of a host run, a page at a time (the lock is not held
        while the caller consumes them)."""
        after = 0
        while True:
            page = self.read_output(run_id=run_id, after_id=after, limit=_PAGE)
            yield from (c for c in page if stream is None or c.stream == stream)
            if len(page) < _PAGE:
                return
            after = page[-1].id

    def last_output_id(self, execution_id: str) -> int:
        with self._lock:
            chunks = self._chunks_by_execution.get(execution_id)
            return chunks[-1].id if chunks else 0

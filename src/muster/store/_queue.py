"""The work queue: claim by priority then time, leases, finish, and the reaper.

A claim is one statement::

    UPDATE host_runs SET state='running', owner=:w, epoch=epoch+1, ...
    WHERE id IN (SELECT id FROM host_runs WHERE state='queued' AND available_at <= :now
                 ORDER BY priority DESC, queued_at, id LIMIT :n FOR UPDATE SKIP LOCKED)
    RETURNING *

On PostgreSQL, SKIP LOCKED lets concurrent claimers take disjoint rows; on
SQLite the surrounding ``BEGIN IMMEDIATE`` serialises claimers. Every later
change is a compare-and-set on (state, owner, epoch): a worker whose lease
was reaped loses its heartbeat, output and finish, and the reaper loses to a
worker that renewed in time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, not_, or_, select, tuple_, update

from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState, check_transition, host_answered
from muster.domain.throttle import Throttle, pick_within
from muster.errors import ValidationError
from muster.security.vault import VaultError
from muster.store._core import StoreCore
from muster.store._executions import insert_attempt, secret_aad
from muster.store._ledger import Deltas, counter_params, transition
from muster.store._rows import execution_record, host_record, host_run_record, version_record
from muster.store._statements import claim_stmt, finish_pg_stmt, finish_stmt, touch_hosts_stmt
from muster.store.base import WAITING_FOR_WORKER, ClaimedRun, LeaseStatus, ReapReport, RunResult
from muster.store.notify import QUEUE_KEY, execution_key
from muster.store.tables import (
    execution_secrets,
    executions,
    host_runs,
    hosts,
    script_versions,
    scripts,
)
from muster.store.window_ops import gate_claimed, unclaim

__all__ = ["QueueOps"]

S = HostRunState
_REAP_BATCH = 500
#: Claim rounds when the maintenance-window gate put runs back.
_GATE_ROUNDS = 4
#: The most runs one gate round looks at.
_GATE_SCAN = 2000
#: Throttled executions looked at per claim.
_THROTTLED_BATCH = 50


class QueueOps(StoreCore):
    def claim_host_runs(self, worker_id: str, limit: int, lease_seconds: float) -> list[ClaimedRun]:
        if limit <= 0:
            return []
        now = self.clock()
        lease = now + dt.timedelta(seconds=lease_seconds)
        params = {"p_now": now, "p_limit": limit, "p_owner": worker_id, "p_lease": lease}
        with self._tx() as tx:
            rows: list[Any] = []
            # Runs outside their maintenance window go straight back (deferred, with
            # the reason); later rounds look further to fill the batch, and what
            # they take beyond it goes back untouched.
            scan = limit
            for _ in range(_GATE_ROUNDS):
                got = self._claim_throttled(tx.conn, now, scan, worker_id, lease)
                if len(got) < scan:
                    params["p_limit"] = scan - len(got)
                    got += tx.conn.execute(claim_stmt(), params).mappings()
                got.sort(key=lambda r: (-r["priority"], r["queued_at"], r["id"]))
                kept, deferred = gate_claimed(tx.conn, now, got)
                room = limit - len(rows)
                unclaim(tx.conn, kept[room:])
                rows += kept[:room]
                if not deferred or len(rows) >= limit or len(got) < scan:
                    break
                scan = min(max(2 * scan, 64), _GATE_SCAN)
            if not rows:
                return []
            deltas = Deltas()
            for r in rows:
                deltas.move(r["execution_id"], S.QUEUED, S.RUNNING)
                tx.notify(execution_key(r["execution_id"]))
            deltas.apply(tx.conn, now)
            rows.sort(key=lambda r: (-r["priority"], r["queued_at"], r["id"]))
            return self._load_claims(tx.conn, rows)

    def _claim_throttled(
        self, conn: Connection, now: dt.datetime, limit: int, owner: str, lease: dt.datetime
    ) -> list[Any]:
        """Claim runs of executions with limits, never exceeding them across workers.

        Each throttled execution's row is locked while its running runs are
        counted (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: a second worker
        skips it and tries again on its next poll; SQLite's ``BEGIN
        IMMEDIATE`` already serialises claimers), so two workers can never
        both see a free slot that only one of them may take. With a delay,
        one run starts per execution and claim, and ``next_start_at`` holds
        the next one back.
        """
        due = (
            select(host_runs.c.execution_id)
            .where(
                host_runs.c.state == S.QUEUED.value,
                host_runs.c.throttled.is_(True),
                host_runs.c.available_at <= now,
            )
            .distinct()
        )
        limited = conn.execute(
            select(
                executions.c.id,
                executions.c.forks,
                executions.c.per_group,
                executions.c.delay_seconds,
            )
            .where(
                executions.c.id.in_(due),
                or_(executions.c.next_start_at.is_(None), executions.c.next_start_at <= now),
            )
            .order_by(executions.c.priority.desc(), executions.c.created_at, executions.c.id)
            .limit(_THROTTLED_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        claimed: list[Any] = []
        for execution_id, forks, per_group, delay in limited:
            room = limit - len(claimed)
            if room <= 0:
                break
            throttle = Throttle(forks, per_group, delay or 0.0)
            running = (
                conn.execute(
                    select(host_runs.c.group_key).where(
                        host_runs.c.execution_id == execution_id,
                        host_runs.c.state == S.RUNNING.value,
                    )
                )
                .scalars()
                .all()
            )
            want = room if forks is None else min(room, forks - len(running))
            if want <= 0:
                continue
            # Per-group limits may pass over blocked runs: look further than ``want``.
            scan = want if per_group is None else max(want * 20, 200)
            candidates = conn.execute(
                select(host_runs.c.id, host_runs.c.group_key)
                .where(
                    host_runs.c.execution_id == execution_id,
                    host_runs.c.state == S.QUEUED.value,
                    host_runs.c.available_at <= now,
                )
                .order_by(host_runs.c.priority.desc(), host_runs.c.queued_at, host_runs.c.id)
                .limit(scan)
            ).all()
            picked = pick_within(throttle, running, [(i, k) for i, k in candidates])[:want]
            if not picked:
                continue
            claimed += conn.execute(
                update(host_runs)
                .where(host_runs.c.id.in_(picked), host_runs.c.state == S.QUEUED.value)
                .values(
                    state=S.RUNNING.value,
                    owner=owner,
                    epoch=host_runs.c.epoch + 1,
                    claimed_at=now,
                    lease_expires_at=lease,
                    waiting_reason=None,
                )
                .returning(host_runs)
            ).mappings()
            conn.execute(
                update(executions)
                .where(executions.c.id == execution_id)
                .values(
                    last_claim_at=now,
                    next_start_at=now + dt.timedelta(seconds=delay) if delay else None,
                )
            )
        return claimed

    def _load_claims(self, conn: Connection, rows: list[Any]) -> list[ClaimedRun]:
        exec_ids = sorted({r["execution_id"] for r in rows})
        ex_rows = {
            r["id"]: r
            for r in conn.execute(
                select(executions).where(executions.c.id.in_(exec_ids))
            ).mappings()
        }
        host_ids = sorted({r["host_id"] for r in rows if r["host_id"]})
        host_map = {
            r["id"]: host_record(r).to_host()
            for r in conn.execute(select(hosts).where(hosts.c.id.in_(host_ids))).mappings()
        }
        pinned = {(e["script_id"], e["script_version"]) for e in ex_rows.values() if e["script_id"]}
        versions = {}
        if pinned:
            vrows = conn.execute(
                select(script_versions, scripts.c.name.label("script_name"))
                .join(scripts, scripts.c.id == script_versions.c.script_id)
                .where(
                    tuple_(script_versions.c.script_id, script_versions.c.number).in_(
                        sorted(pinned)
                    )
                )
            ).mappings()
            for v in vrows:
                versions[(v["script_id"], v["number"])] = version_record(
                    v, v["script_name"]
                ).domain()
        sealed: dict[str, dict[str, Any]] = {}
        secret_execs = [e for e in exec_ids if ex_rows[e]["secret_fields"]]
        if secret_execs:
            for s in conn.execute(
                select(execution_secrets).where(execution_secrets.c.execution_id.in_(secret_execs))
            ).mappings():
                sealed.setdefault(s["execution_id"], {})[s["field"]] = s["token"]
        claims = []
        for r in rows:
            ex = ex_rows[r["execution_id"]]
            values: dict[str, object] = dict(ex["parameters"])
            for name, token in sealed.get(ex["id"], {}).items():
                if self.vault is None:
                    raise VaultError(
                        "a claimed run needs its secrets, but no secret key is configured"
                    )
                values[name] = Secret(self.vault.open(token, secret_aad(ex["id"], name)))
            version = versions.get((ex["script_id"], ex["script_version"]))
            if (
                version is not None
                and ex["content_hash"]
                and version.content_hash != ex["content_hash"]
            ):
                raise ValidationError(
                    f"script version {ex['script_version']} no longer matches its pinned hash",
                    field="content_hash",
                )
            claims.append(
                ClaimedRun(
                    run=host_run_record(r),
                    execution=execution_record(ex),
                    host=host_map.get(r["host_id"]) if r["host_id"] else None,
                    version=version,
                    values=values,
                )
            )
        return claims

    def mark_started(self, run_id: str, owner: str, epoch: int) -> bool:
        """Record that the command is about to be sent; False means do not send it."""
        return run_id in self.mark_started_many(owner, [(run_id, epoch)])

    def mark_started_many(self, owner: str, runs: Sequence[tuple[str, int]]) -> set[str]:
        """:meth:`mark_started` for several runs in one statement; the ids that won."""
        if not runs:
            return set()
        stmt = (
            update(host_runs)
            .where(
                _in_id_order(
                    tuple_(host_runs.c.id, host_runs.c.epoch).in_([tuple(r) for r in runs]),
                    host_runs.c.state == S.RUNNING.value,
                    host_runs.c.owner == owner,
                    host_runs.c.started_at.is_(None),
                    host_runs.c.cancel_requested.is_(False),
                )
            )
            .values(started_at=self.clock())
            .returning(host_runs.c.id)
        )
        with self._single() as conn:
            return set(conn.execute(stmt).scalars())

    def heartbeat(
        self, worker_id: str, runs: Sequence[tuple[str, int]], lease_seconds: float
    ) -> dict[str, LeaseStatus]:
        if not runs:
            return {}
        now = self.clock()
        with self._single() as conn:
            renewed = conn.execute(
                update(host_runs)
                .where(
                    _in_id_order(
                        host_runs.c.owner == worker_id,
                        host_runs.c.state == S.RUNNING.value,
                        tuple_(host_runs.c.id, host_runs.c.epoch).in_([tuple(r) for r in runs]),
                    )
                )
                .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
                .returning(host_runs.c.id, host_runs.c.cancel_requested)
            ).all()
        found = {
            run_id: LeaseStatus.CANCEL_REQUESTED if cancel else LeaseStatus.RENEWED
            for run_id, cancel in renewed
        }
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
        """Finish held runs (CAS each on owner and epoch) in one transaction; the ids that won.

        One commit for many runs: workers batch finishes that complete together.
        A run whose outcome shows its host answered (:func:`host_answered`) records
        the host's ``last_contact`` in the same transaction.
        """
        if not results:
            return set()
        # Rows are locked in id order, as every multi-row write here does, so two
        # writers (a heartbeat and a batch of finishes) cannot deadlock on PostgreSQL.
        results = sorted(results, key=lambda r: r.run_id)
        for r in results:
            check_transition(S.RUNNING, S(r.state))
        now = self.clock()
        params = [
            {
                "p_id": r.run_id,
                "p_owner": owner,
                "p_epoch": r.epoch,
                "p_now": now,
                "p_exit": r.exit_code,
                "p_reason": None if r.reason is None else str(r.reason),
                "p_message": r.message or None,
                "p_events": r.events,
                "p_contact": host_answered(r.exit_code, r.reason),
            }
            for r in results
        ]
        if self.is_postgres and len(results) == 1:
            # One autocommitted statement: CAS, counters, status and NOTIFY together.
            new = S(results[0].state)
            moves = {S.RUNNING.value: -1, new.value: 1}
            with self._single() as conn:
                row = conn.execute(
                    finish_pg_stmt(new), {**params[0], **counter_params(moves, now)}
                ).first()
            if row is None:
                return set()
            self.notifier.publish(execution_key(row[0]))
            return {results[0].run_id}
        won: set[str] = set()
        with self._tx() as tx:
            deltas = Deltas()
            answered: set[str] = set()
            for r, p in zip(results, params, strict=True):
                new = S(r.state)
                row = tx.conn.execute(finish_stmt(new), p).first()
                if row is None:
                    continue
                execution_id, host_id = row
                won.add(r.run_id)
                deltas.move(execution_id, S.RUNNING, new)
                tx.notify(execution_key(execution_id))
                if p["p_contact"] and host_id is not None:
                    answered.add(host_id)
            deltas.apply(tx.conn, now)
            if answered:
                tx.conn.execute(touch_hosts_stmt(), {"p_ids": sorted(answered), "p_now": now})
        return won

    def release_host_run(self, run_id: str, owner: str, epoch: int, why: str) -> bool:
        """Hand an unstarted run back to the queue (graceful stop)."""
        with self._tx(notify=(QUEUE_KEY,)) as tx:
            return self._requeue(tx.conn, run_id, epoch, why, owner=owner)

    def _requeue(
        self,
        conn: Connection,
        run_id: str,
        epoch: int,
        why: str,
        *,
        owner: object = None,
        where: Sequence[Any] = (),
    ) -> bool:
        now = self.clock()
        kwargs: dict[str, Any] = {} if owner is None else {"owner": owner}
        row = transition(
            conn,
            run_id,
            S.RUNNING,
            S.QUEUED,
            epoch=epoch,
            where=[host_runs.c.started_at.is_(None), *where],
            values={
                "owner": None,
                "epoch": host_runs.c.epoch + 1,
                "claimed_at": None,
                "lease_expires_at": None,
                "available_at": now,
                "waiting_reason": why,
            },
            **kwargs,
        )
        if row is None:
            return False
        deltas = Deltas()
        deltas.move(row["execution_id"], S.RUNNING, S.QUEUED)
        deltas.apply(conn, now)
        return True

    def reap(self, now: dt.datetime | None = None) -> ReapReport:
        """Settle runs whose worker vanished, ran too long, or were never picked up."""
        now = now or self.clock()
        out: dict[str, list[str]] = {k: [] for k in ReapReport.__dataclass_fields__}
        with self._tx(notify=(QUEUE_KEY,)) as tx:
            conn = tx.conn
            deltas = Deltas()
            expired = (
                conn.execute(
                    select(host_runs)
                    .where(host_runs.c.state == S.RUNNING.value, host_runs.c.lease_expires_at < now)
                    .limit(_REAP_BATCH)
                )
                .mappings()
                .all()
            )
            lapsed = [host_runs.c.lease_expires_at < now]
            idempotent = self._idempotent(conn, {r["execution_id"] for r in expired})
            for r in expired:
                who = r["owner"]
                end = {"finished_at": now, "lease_expires_at": None}
                if r["cancel_requested"]:
                    row = transition(
                        conn,
                        r["id"],
                        S.RUNNING,
                        S.CANCELLED,
                        epoch=r["epoch"],
                        where=lapsed,
                        values={
                            **end,
                            "reason": FailureReason.CANCELLED.value,
                            "message": f"cancelled; worker {who} stopped before confirming",
                        },
                    )
                    key, new = "cancelled", S.CANCELLED
                elif r["started_at"] is None:
                    why = (
                        f"worker {who} stopped renewing its lease before sending the command; "
                        f"{WAITING_FOR_WORKER}"
                    )
                    if self._requeue(conn, r["id"], r["epoch"], why, where=lapsed):
                        out["requeued"].append(r["id"])
                    tx.notify(execution_key(r["execution_id"]))
                    continue
                else:
                    row = transition(
                        conn,
                        r["id"],
                        S.RUNNING,
                        S.LOST,
                        epoch=r["epoch"],
                        where=lapsed,
                        values={
                            **end,
                            "reason": FailureReason.WORKER_LOST.value,
                            "message": f"worker {who} stopped renewing its lease after the "
                            "command was sent; the outcome on the host is unknown",
                        },
                    )
                    key, new = "lost", S.LOST
                if row is None:
                    continue
                out[key].append(r["id"])
                deltas.move(r["execution_id"], S.RUNNING, new)
                tx.notify(execution_key(r["execution_id"]))
                if new is S.LOST and idempotent.get(r["execution_id"]):
                    conn.execute(
                        update(host_runs).where(host_runs.c.id == r["id"]).values(superseded=True)
                    )
                    out["retried"].append(
                        insert_attempt(
                            conn,
                            r,
                            now,
                            f"attempt {r['attempt']} was lost with its worker; "
                            + WAITING_FOR_WORKER,
                        )
                    )
                    deltas.remove(r["execution_id"], S.LOST)
                    deltas.add(r["execution_id"], S.QUEUED)
            self._reap_overdue(conn, now, deltas, out, tx.notify)
            deltas.apply(conn, now)
        return ReapReport(**{k: tuple(v) for k, v in out.items()})

    def _reap_overdue(
        self,
        conn: Connection,
        now: dt.datetime,
        deltas: Deltas,
        out: dict[str, list[str]],
        notify: Any,
    ) -> None:
        running = conn.execute(
            select(
                host_runs.c.id,
                host_runs.c.epoch,
                host_runs.c.execution_id,
                host_runs.c.started_at,
                host_runs.c.timeout,
            ).where(host_runs.c.state == S.RUNNING.value, host_runs.c.started_at.is_not(None))
        ).all()
        for run_id, epoch, execution_id, started_at, timeout in running:
            limit = 2 * timeout
            if (now - started_at).total_seconds() <= limit:
                continue
            row = transition(
                conn,
                run_id,
                S.RUNNING,
                S.TIMED_OUT,
                epoch=epoch,
                values={
                    "finished_at": now,
                    "lease_expires_at": None,
                    "reason": FailureReason.TIMED_OUT.value,
                    "message": f"still running after twice its timeout ({limit:g}s); "
                    "stopped waiting for it",
                },
            )
            if row is not None:
                out["timed_out"].append(run_id)
                deltas.move(execution_id, S.RUNNING, S.TIMED_OUT)
                notify(execution_key(execution_id))
        stale = now - dt.timedelta(seconds=self.queued_timeout)
        # A throttled run waiting for a slot of its own execution is not "not
        # picked up": it is only if its execution has nothing running and has
        # not started a host within the period either.
        other = host_runs.alias("other")
        progressing = or_(
            exists().where(
                other.c.execution_id == host_runs.c.execution_id,
                other.c.state == S.RUNNING.value,
            ),
            exists().where(
                executions.c.id == host_runs.c.execution_id,
                executions.c.last_claim_at >= stale,
            ),
        )
        queued = conn.execute(
            select(host_runs.c.id, host_runs.c.execution_id)
            .where(
                host_runs.c.state == S.QUEUED.value,
                host_runs.c.available_at < stale,
                or_(host_runs.c.throttled.is_(False), not_(progressing)),
            )
            .limit(_REAP_BATCH)
        ).all()
        minutes = self.queued_timeout / 60
        for run_id, execution_id in queued:
            row = transition(
                conn,
                run_id,
                S.QUEUED,
                S.FAILED,
                where=[host_runs.c.available_at < stale],
                values={
                    "finished_at": now,
                    "waiting_reason": None,
                    "reason": FailureReason.NOT_PICKED_UP.value,
                    "message": f"no worker picked up this run within {minutes:g} minutes",
                },
            )
            if row is not None:
                out["not_picked_up"].append(run_id)
                deltas.move(execution_id, S.QUEUED, S.FAILED)
                notify(execution_key(execution_id))

    @staticmethod
    def _idempotent(conn: Connection, execution_ids: set[str]) -> dict[str, bool]:
        if not execution_ids:
            return {}
        return dict(
            conn.execute(
                select(executions.c.id, executions.c.idempotent).where(
                    executions.c.id.in_(sorted(execution_ids))
                )
            ).all()
        )


def _in_id_order(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """``host_runs.id IN`` the rows matching ``conditions``, locked in id order.

    An UPDATE of many rows locks them in whatever order the plan reads them;
    two such writers touching overlapping runs (a heartbeat, a batch of starts
    or finishes) could each hold a row the other waits for. Locking through an
    ordered ``SELECT ... FOR UPDATE`` gives every writer the same order
    (SQLite has no row locks and ignores it).
    """
    ordered = (
        select(host_runs.c.id)
        .where(*conditions)
        .order_by(host_runs.c.id)
        .with_for_update()
        .correlate(None)  # its own FROM host_runs, not the UPDATE's row
        .scalar_subquery()
    )
    return host_runs.c.id.in_(ordered)

"""Approval requests and their votes, persisted.

The rules live in :mod:`muster.domain.approvals`; this module only loads a
request, lets the domain decide, and writes the result in the same
transaction under a row lock (``FOR UPDATE`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite), so two approvers voting at once are applied one
after the other and the vote table's primary key keeps one vote per user.

Promoting or rejecting the bound execution is the caller's next step
(``Store.approve_execution`` / ``reject_execution``) once the request's
``resolution`` says so; it must run the ``content_hash`` recorded here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, delete, func, insert, select, update

from muster.domain.approvals import (
    ApprovalExpiredError,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    Decision,
    Vote,
    decide,
    expire_if_due,
    parse_approvers,
)
from muster.errors import NotFoundError
from muster.store._core import StoreCore
from muster.store.base import Page
from muster.store.security_tables import approval_requests, approval_votes
from muster.store.tables import executions

__all__ = ["ApprovalOps", "ApprovalRecord", "insert_approval"]

_PENDING: Final = ApprovalStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    request: ApprovalRequest
    execution_id: str | None
    content_hash: str | None

    @property
    def id(self) -> str:
        return self.request.id


def insert_approval(
    conn: Connection,
    request: ApprovalRequest,
    *,
    execution_id: str | None = None,
    content_hash: str | None = None,
) -> None:
    """Store a new request inside the caller's transaction (with its execution).

    A request bound to an execution gets the next round number for it, so
    :meth:`ApprovalOps.approval_for_execution` finds the newest without
    trusting timestamps (two can be equal).
    """
    round_no = None
    if execution_id is not None:
        last = conn.execute(
            select(func.max(func.coalesce(approval_requests.c.round_no, 1))).where(
                approval_requests.c.execution_id == execution_id
            )
        ).scalar()
        round_no = int(last or 0) + 1
    conn.execute(
        insert(approval_requests).values(
            id=request.id,
            round_no=round_no,
            subject=request.subject,
            execution_id=execution_id,
            content_hash=content_hash,
            policy=request.policy.value,
            approvers=[str(a) for a in request.approvers],
            electorate=sorted(request.electorate) if request.electorate is not None else None,
            requester=request.requester,
            status=request.status.value,
            created_at=request.created_at,
            deadline=request.deadline,
            decided_at=request.decided_at,
            reason=request.reason,
        )
    )
    _write_votes(conn, request.id, request.votes)


def _write_votes(conn: Connection, request_id: str, votes: Iterable[Vote]) -> None:
    rows = [
        {
            "request_id": request_id,
            "user": v.user,
            "decision": v.decision.value,
            "reason": v.reason,
            "at": v.at,
        }
        for v in votes
    ]
    if rows:
        conn.execute(insert(approval_votes), rows)


def _load(conn: Connection, request_id: str, *, lock: bool = False) -> ApprovalRecord:
    stmt = select(approval_requests).where(approval_requests.c.id == request_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    r = conn.execute(stmt).mappings().first()
    if r is None:
        raise NotFoundError(f"no approval request {request_id!r}")
    votes = tuple(
        Vote(v["user"], Decision(v["decision"]), v["reason"], v["at"])
        for v in conn.execute(
            select(approval_votes)
            .where(approval_votes.c.request_id == request_id)
            .order_by(approval_votes.c.at, approval_votes.c.user)
        ).mappings()
    )
    request = ApprovalRequest(
        id=r["id"],
        subject=r["subject"],
        policy=ApprovalPolicy(r["policy"]),
        approvers=parse_approvers(r["approvers"]),
        requester=r["requester"],
        created_at=r["created_at"],
        deadline=r["deadline"],
        electorate=frozenset(r["electorate"]) if r["electorate"] is not None else None,
        status=ApprovalStatus(r["status"]),
        votes=votes,
        decided_at=r["decided_at"],
        reason=r["reason"],
    )
    return ApprovalRecord(request, r["execution_id"], r["content_hash"])


def _save(conn: Connection, old: ApprovalRequest, new: ApprovalRequest) -> None:
    """Write ``new`` over ``old``: its added votes and, if settled, its status."""
    _write_votes(conn, new.id, new.votes[len(old.votes) :])
    if new.status is not old.status:
        conn.execute(
            update(approval_requests)
            .where(approval_requests.c.id == new.id, approval_requests.c.status == _PENDING)
            .values(status=new.status.value, decided_at=new.decided_at, reason=new.reason)
        )


class ApprovalOps(StoreCore):
    def create_approval(
        self,
        request: ApprovalRequest,
        *,
        execution_id: str | None = None,
        content_hash: str | None = None,
        first_only: bool = False,
    ) -> ApprovalRecord:
        """Store ``request``. ``first_only``: only if the execution has no request yet,
        else return the one it has (two openers racing, e.g. the submission and the
        reaper's sync, end with one request, not a stale pending duplicate)."""
        with self._tx() as tx:
            if first_only and execution_id is not None:
                # Serialise openers of one execution (SQLite's writers already are).
                tx.conn.execute(
                    select(executions.c.id).where(executions.c.id == execution_id).with_for_update()
                ).all()
                found = tx.conn.execute(
                    select(approval_requests.c.id)
                    .where(approval_requests.c.execution_id == execution_id)
                    .order_by(func.coalesce(approval_requests.c.round_no, 1).desc())
                    .limit(1)
                ).scalar()
                if found is not None:
                    return _load(tx.conn, found)
            insert_approval(tx.conn, request, execution_id=execution_id, content_hash=content_hash)
            return _load(tx.conn, request.id)

    def get_approval(self, request_id: str) -> ApprovalRecord:
        with self._read() as conn:
            return _load(conn, request_id)

    def approval_for_execution(self, execution_id: str) -> ApprovalRecord | None:
        with self._read() as conn:
            rid = conn.execute(
                select(approval_requests.c.id)
                .where(approval_requests.c.execution_id == execution_id)
                .order_by(
                    func.coalesce(approval_requests.c.round_no, 1).desc(),
                    approval_requests.c.created_at.desc(),
                )
                .limit(1)
            ).scalar()
            return _load(conn, rid) if rid is not None else None

    def list_approvals(
        self, *, status: ApprovalStatus | str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[ApprovalRecord]:
        conds = (
            [] if status is None else [approval_requests.c.status == ApprovalStatus(status).value]
        )
        limit = max(1, min(limit, 1000))
        with self._read() as conn:
            total = conn.execute(
                select(func.count()).select_from(approval_requests).where(*conds)
            ).scalar_one()
            ids = conn.execute(
                select(approval_requests.c.id)
                .where(*conds)
                .order_by(approval_requests.c.created_at.desc(), approval_requests.c.id)
                .limit(limit)
                .offset(max(0, offset))
            ).scalars()
            items = tuple(_load(conn, i) for i in list(ids))
        return Page(items, int(total), limit, max(0, offset))

    def decide_approval(
        self,
        request_id: str,
        user: str,
        roles: Iterable[str],
        decision: Decision | str,
        reason: str | None = None,
    ) -> ApprovalRecord:
        """Apply one vote; errors are the domain's (see :func:`decide`).

        Past the deadline the request is stored as expired and then
        :class:`ApprovalExpiredError` is raised, so the refusal is durable.
        """
        expired: ApprovalExpiredError | None = None
        with self._tx() as tx:
            current = _load(tx.conn, request_id, lock=True)
            try:
                new = decide(current.request, user, roles, decision, reason, self.clock())
            except ApprovalExpiredError as exc:
                _save(tx.conn, current.request, exc.request)
                expired = exc
            else:
                _save(tx.conn, current.request, new)
                return _load(tx.conn, request_id)
        assert expired is not None
        raise expired

    def expire_due_approvals(self, now: dt.datetime | None = None) -> list[ApprovalRecord]:
        """Expire every pending request whose deadline has passed; returns them."""
        now = now or self.clock()
        out: list[ApprovalRecord] = []
        with self._tx() as tx:
            due = tx.conn.execute(
                select(approval_requests.c.id).where(
                    approval_requests.c.status == _PENDING,
                    approval_requests.c.deadline.is_not(None),
                    approval_requests.c.deadline <= now,
                )
            ).scalars()
            for rid in list(due):
                current = _load(tx.conn, rid, lock=True)
                new = expire_if_due(current.request, now)
                if new is not current.request:
                    _save(tx.conn, current.request, new)
                    out.append(_load(tx.conn, rid))
        return out

    def delete_approval(self, request_id: str) -> None:
        with self._tx() as tx:
            tx.conn.execute(delete(approval_requests).where(approval_requests.c.id == request_id))

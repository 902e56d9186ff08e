"""The audit log table: append (hash-chained), query, and verify.

Appends are serialised: on SQLite by the ``BEGIN IMMEDIATE`` every write
transaction takes, on PostgreSQL by a transaction-level advisory lock; the
primary key on ``seq`` (assigned as head + 1) is the last line of defence,
so two records can never claim the same predecessor.

:func:`append_audit` takes a connection so that a change and its audit
record commit together (call it inside the store transaction that makes the
change); ``AuditOps.record_audit`` is the stand-alone form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from sqlalchemy import Connection, RowMapping, func, insert, select, text

from muster.domain.secret import Secret
from muster.security.audit import AuditRecord, VerifyResult, next_record, verify_chain
from muster.store._core import StoreCore, utcnow
from muster.store.base import Page
from muster.store.security_tables import audit_log

__all__ = ["AuditOps", "append_audit", "audit_record"]

_AUDIT_LOCK: Final = 0x6D75737465720A0D


def audit_record(r: RowMapping) -> AuditRecord:
    return AuditRecord(
        seq=int(r["seq"]),
        at=r["at"],
        actor=r["actor"],
        action=r["action"],
        target=r["target"],
        address=r["address"],
        details=r["details"],
        prev_hash=r["prev_hash"],
        hash=r["hash"],
    )


def append_audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    address: str | None = None,
    details: Mapping[str, Any] | None = None,
    secret_keys: Iterable[str] = (),
    secrets: Iterable[str | Secret] = (),
    at: dt.datetime | None = None,
) -> AuditRecord:
    """Append one record inside the caller's transaction; details are masked first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK})
    head = (
        conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).mappings().first()
    )
    rec = next_record(
        audit_record(head) if head is not None else None,
        at=at or utcnow(),
        # Cut to the columns' widths before hashing, so what is stored is what was hashed.
        actor=actor[:128],
        action=action[:64],
        target=target[:256],
        address=address[:64] if address else address,
        details=details,
        secret_keys=secret_keys,
        secrets=secrets,
    )
    conn.execute(
        insert(audit_log).values(
            seq=rec.seq,
            at=rec.at,
            actor=rec.actor,
            action=rec.action,
            target=rec.target,
            address=rec.address,
            details=dict(rec.details),
            prev_hash=rec.prev_hash,
            hash=rec.hash,
        )
    )
    return rec


class AuditOps(StoreCore):
    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
        secret_keys: Iterable[str] = (),
        secrets: Iterable[str | Secret] = (),
    ) -> AuditRecord:
        with self._tx() as tx:
            return append_audit(
                tx.conn,
                actor=actor,
                action=action,
                target=target,
                address=address,
                details=details,
                secret_keys=secret_keys,
                secrets=secrets,
                at=self.clock(),
            )

    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[AuditRecord]:
        """Newest first. ``action`` ending in ``.`` or ``*`` matches a prefix (``script.*``)."""
        conds = []
        if actor is not None:
            conds.append(audit_log.c.actor == actor)
        if action is not None:
            if action.endswith(("*", ".")):
                prefix = action.rstrip("*")
                conds.append(func.substr(audit_log.c.action, 1, len(prefix)) == prefix)
            else:
                conds.append(audit_log.c.action == action)
        if since is not None:
            conds.append(audit_log.c.at >= since)
        if until is not None:
            conds.append(audit_log.c.at < until)
        limit = max(1, min(limit, 1000))
        with self._read() as conn:
            total = conn.execute(
                select(func.count()).select_from(audit_log).where(*conds)
            ).scalar_one()
            rows = conn.execute(
                select(audit_log)
                .where(*conds)
                .order_by(audit_log.c.seq.desc())
                .limit(limit)
                .offset(max(0, offset))
            ).mappings()
            items = tuple(audit_record(r) for r in rows)
        return Page(items, int(total), limit, max(0, offset))

    def iter_audit(self, *, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record in seq order, read in batches (memory stays flat)."""
        last = after_seq
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    select(audit_log)
                    .where(audit_log.c.seq > last)
                    .order_by(audit_log.c.seq)
                    .limit(batch)
                ).mappings()
                chunk = [audit_record(r) for r in rows]
            yield from chunk
            if len(chunk) < batch:
                return
            last = chunk[-1].seq

    def verify_audit(self, *, expect_head: tuple[int, str] | None = None) -> VerifyResult:
        return verify_chain(self.iter_audit(), expect_head=expect_head)

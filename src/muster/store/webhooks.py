"""Webhooks and their outbox on the store's database (see :mod:`muster.store.outbox`).

The secret is sealed with the vault when the store has one, bound to its
row, because it signs every delivery. Writing events is an ``INSERT ... ON
CONFLICT DO NOTHING`` on ``(webhook_id, event_key)``: the same change
written twice (by two servers, or by a watcher that re-read it after a
restart) is one row. A claim is one statement::

    UPDATE webhook_outbox SET owner=:o, attempts=attempts+1, due_at=:lease_end
    WHERE id IN (SELECT id FROM webhook_outbox WHERE state='pending' AND due_at <= :now
                 ORDER BY due_at, created_at, id LIMIT :n FOR UPDATE SKIP LOCKED)
    RETURNING ...

so concurrent claimers on PostgreSQL take disjoint rows, and SQLite's
``BEGIN IMMEDIATE`` serialises them; a claim whose holder died is due again
when its lease ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Connection, RowMapping, and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from muster.domain.webhooks import WebhookTarget
from muster.errors import NotFoundError
from muster.store._core import StoreCore, new_id
from muster.store.outbox import (
    ClaimedDelivery,
    DeliveryRecord,
    DeliveryState,
    WebhookEvent,
    WebhookRecord,
)
from muster.store.tables import executions, webhook_outbox, webhook_watermark, webhooks

__all__ = ["WEBHOOKS_KEY", "WebhookOps"]

#: The wake-up key sent when outbox rows are added.
WEBHOOKS_KEY: Final = "webhooks"
_WATERMARK: Final = "finished"
#: Rows per INSERT: keeps one statement's bind parameters well under every limit.
_BATCH: Final = 200

_o = webhook_outbox


def _webhook(r: RowMapping) -> WebhookRecord:
    return WebhookRecord(r["id"], r["url"], tuple(r["events"]), r["created_at"])


def _delivery(r: RowMapping) -> DeliveryRecord:
    state = DeliveryState(r["state"])
    return DeliveryRecord(
        id=r["id"],
        webhook_id=r["webhook_id"],
        event=r["event"],
        event_key=r["event_key"],
        state=state,
        attempts=r["attempts"],
        status_code=r["status_code"],
        last_error=r["last_error"],
        created_at=r["created_at"],
        next_attempt_at=r["due_at"] if state is DeliveryState.PENDING else None,
        finished_at=r["finished_at"],
    )


class WebhookOps(StoreCore):
    """:class:`~muster.store.outbox.WebhookStore` over SQLAlchemy."""

    def _seal_secret(self, webhook_id: str, secret: str) -> str:
        if self.vault is None:
            return secret
        return "v:" + str(self.vault.seal(secret, f"webhooks:{webhook_id}:secret"))

    def _open_secret(self, webhook_id: str, stored: str) -> str:
        if stored.startswith("v:") and self.vault is not None:
            return str(self.vault.open(stored[2:], f"webhooks:{webhook_id}:secret"))
        return stored

    # webhooks

    def create_webhook(self, url: str, secret: str, events: Sequence[str]) -> WebhookRecord:
        wid = new_id()
        record = WebhookRecord(wid, url, tuple(events), self.clock())
        with self._tx() as tx:
            tx.conn.execute(
                insert(webhooks).values(
                    id=wid,
                    url=url,
                    secret=self._seal_secret(wid, secret),
                    events=list(record.events),
                    created_at=record.created_at,
                )
            )
        return record

    def list_webhooks(self) -> list[WebhookRecord]:
        with self._read() as conn:
            rows = conn.execute(select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id))
            return [_webhook(r) for r in rows.mappings()]

    def get_webhook(self, webhook_id: str) -> WebhookRecord:
        with self._read() as conn:
            row = conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).mappings()
            found = row.first()
        if found is None:
            raise NotFoundError(f"no webhook {webhook_id}")
        return _webhook(found)

    def delete_webhook(self, webhook_id: str) -> None:
        with self._tx() as tx:
            tx.conn.execute(delete(_o).where(_o.c.webhook_id == webhook_id))
            if not tx.conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount:
                raise NotFoundError(f"no webhook {webhook_id}")

    # the outbox

    def _insert_ignoring_written(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        dialect = postgresql if self.is_postgres else sqlite
        added = 0
        for start in range(0, len(rows), _BATCH):
            stmt = (
                dialect.insert(_o)
                .values(rows[start : start + _BATCH])
                .on_conflict_do_nothing(index_elements=["webhook_id", "event_key"])
                .returning(_o.c.id)  # rowcount is -1 here on psycopg: count what came back
            )
            added += len(conn.execute(stmt).all())
        return added

    def enqueue_webhook_events(
        self, events: Sequence[WebhookEvent], *, webhook_id: str | None = None
    ) -> int:
        if not events:
            return 0
        now = self.clock()
        with self._tx() as tx:
            query = select(webhooks.c.id, webhooks.c.events)
            if webhook_id is not None:
                query = query.where(webhooks.c.id == webhook_id)
            hooks = tx.conn.execute(query).all()
            rows = [
                {
                    "id": new_id(),
                    "webhook_id": wid,
                    "event_key": event.key,
                    "event": event.name,
                    "body": event.body,
                    "state": DeliveryState.PENDING.value,
                    "attempts": 0,
                    "owner": None,
                    "due_at": now,
                    "created_at": now,
                }
                for event in events
                for wid, wanted in hooks
                if webhook_id is not None
                or WebhookTarget(wid, "", "", tuple(wanted)).wants(event.name)
            ]
            if not rows:
                return 0
            added = self._insert_ignoring_written(tx.conn, rows)
            if added:
                tx.notify(WEBHOOKS_KEY)
            return added

    def claim_webhook_deliveries(
        self, owner: str, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        if limit <= 0:
            return []
        now = self.clock()
        pick = (
            select(_o.c.id)
            .where(_o.c.state == DeliveryState.PENDING.value, _o.c.due_at <= now)
            .order_by(_o.c.due_at, _o.c.created_at, _o.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(_o)
            .where(_o.c.id.in_(pick.scalar_subquery()))
            .values(
                owner=owner,
                attempts=_o.c.attempts + 1,
                due_at=now + dt.timedelta(seconds=lease_seconds),
            )
            .returning(_o.c.id, _o.c.webhook_id, _o.c.event, _o.c.body, _o.c.attempts)
        )
        with self._tx() as tx:
            rows = tx.conn.execute(claim).all()
            if not rows:
                return []
            wanted = {r.webhook_id for r in rows}
            hooks = {
                h.id: h
                for h in tx.conn.execute(
                    select(
                        webhooks.c.id, webhooks.c.url, webhooks.c.secret, webhooks.c.events
                    ).where(webhooks.c.id.in_(wanted))
                )
            }
        claimed = []
        for r in sorted(rows, key=lambda r: r.id):
            h = hooks[r.webhook_id]
            target = WebhookTarget(h.id, h.url, self._open_secret(h.id, h.secret), tuple(h.events))
            claimed.append(ClaimedDelivery(r.id, target, r.event, r.body, r.attempts))
        return claimed

    def finish_webhook_delivery(
        self,
        delivery_id: str,
        owner: str,
        attempt: int,
        *,
        delivered: bool,
        status_code: int | None = None,
        error: str | None = None,
        retry_at: dt.datetime | None = None,
    ) -> bool:
        now = self.clock()
        values: dict[str, Any] = {"owner": None, "status_code": status_code, "last_error": error}
        if delivered:
            values.update(state=DeliveryState.DELIVERED.value, finished_at=now, last_error=None)
        elif retry_at is None:
            values.update(state=DeliveryState.FAILED.value, finished_at=now)
        else:
            values.update(due_at=retry_at)
        with self._tx() as tx:
            won = tx.conn.execute(
                update(_o)
                .where(
                    _o.c.id == delivery_id,
                    _o.c.state == DeliveryState.PENDING.value,
                    _o.c.owner == owner,
                    _o.c.attempts == attempt,
                )
                .values(**values)
            ).rowcount
            if won and retry_at is not None and not delivered:
                tx.notify(WEBHOOKS_KEY)
        return bool(won)

    def list_webhook_deliveries(self, webhook_id: str, *, limit: int = 100) -> list[DeliveryRecord]:
        with self._read() as conn:
            rows = conn.execute(
                select(_o)
                .where(_o.c.webhook_id == webhook_id)
                .order_by(_o.c.created_at.desc(), _o.c.id)
                .limit(limit)
            ).mappings()
            return [_delivery(r) for r in rows]

    def prune_webhook_deliveries(self, before: dt.datetime) -> int:
        with self._tx() as tx:
            return int(
                tx.conn.execute(
                    delete(_o).where(
                        _o.c.state != DeliveryState.PENDING.value, _o.c.finished_at < before
                    )
                ).rowcount
            )

    # what the watcher has reported

    def executions_finished_since(
        self, since: dt.datetime, *, after_id: str = "", limit: int = 500
    ) -> list[tuple[dt.datetime, str]]:
        done = executions.c.finished_at
        with self._read() as conn:
            rows = conn.execute(
                select(done, executions.c.id)
                .where(
                    done.is_not(None),
                    or_(done > since, and_(done == since, executions.c.id > after_id)),
                )
                .order_by(done, executions.c.id)
                .limit(limit)
            ).all()
        return [(r[0], r[1]) for r in rows]

    def webhook_watermark(self) -> dt.datetime | None:
        with self._read() as conn:
            found: dt.datetime | None = conn.execute(
                select(webhook_watermark.c.position).where(webhook_watermark.c.name == _WATERMARK)
            ).scalar()
        return found

    def advance_webhook_watermark(self, to: dt.datetime) -> None:
        dialect = postgresql if self.is_postgres else sqlite
        with self._tx() as tx:
            tx.conn.execute(
                dialect.insert(webhook_watermark)
                .values(name=_WATERMARK, position=to)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            tx.conn.execute(
                update(webhook_watermark)
                .where(
                    webhook_watermark.c.name == _WATERMARK,
                    webhook_watermark.c.position < to,
                )
                .values(position=to)
            )

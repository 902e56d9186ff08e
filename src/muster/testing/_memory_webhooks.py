"""Webhooks and their outbox in memory, with the SQL store's rules
(``store/webhooks.py``): one row per (webhook, event key), claims that count
the attempt and hold the row for a lease, a finish that is a
compare-and-set on (owner, attempt)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from muster.domain.webhooks import WebhookTarget
from muster.errors import NotFoundError
from muster.store.outbox import (
    ClaimedDelivery,
    DeliveryRecord,
    DeliveryState,
    WebhookEvent,
    WebhookRecord,
)
from muster.testing._memory_core import MemoryCore, new_id

__all__ = ["WebhookOps"]

_WEBHOOKS_KEY = "webhooks"  # muster.store.webhooks.WEBHOOKS_KEY, without its SQLAlchemy


@dataclasses.dataclass(slots=True)
class _OutboxRow:
    id: str
    webhook_id: str
    event_key: str
    event: str
    body: str
    created_at: dt.datetime
    due_at: dt.datetime
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    owner: str | None = None
    status_code: int | None = None
    last_error: str | None = None
    finished_at: dt.datetime | None = None

    def record(self) -> DeliveryRecord:
        pending = self.state is DeliveryState.PENDING
        return DeliveryRecord(
            id=self.id,
            webhook_id=self.webhook_id,
            event=self.event,
            event_key=self.event_key,
            state=self.state,
            attempts=self.attempts,
            status_code=self.status_code,
            last_error=self.last_error,
            created_at=self.created_at,
            next_attempt_at=self.due_at if pending else None,
            finished_at=self.finished_at,
        )


class WebhookOps(MemoryCore):
    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._webhooks: dict[str, tuple[WebhookRecord, str]] = {}
            self._outbox: dict[str, _OutboxRow] = {}
            self._outbox_keys: set[tuple[str, str]] = set()
            self._watermark: dt.datetime | None = None

    # webhooks

    def create_webhook(self, url: str, secret: str, events: Sequence[str]) -> WebhookRecord:
        record = WebhookRecord(new_id(), url, tuple(events), self.clock())
        with self._tx():
            self._webhooks[record.id] = (record, secret)
        return record

    def list_webhooks(self) -> list[WebhookRecord]:
        with self._lock:
            return sorted((w for w, _ in self._webhooks.values()), key=lambda w: w.created_at)

    def get_webhook(self, webhook_id: str) -> WebhookRecord:
        with self._lock:
            found = self._webhooks.get(webhook_id)
        if found is None:
            raise NotFoundError(f"no webhook {webhook_id}")
        return found[0]

    def delete_webhook(self, webhook_id: str) -> None:
        with self._tx():
            if self._webhooks.pop(webhook_id, None) is None:
                raise NotFoundError(f"no webhook {webhook_id}")
            for row in [r for r in self._outbox.values() if r.webhook_id == webhook_id]:
                del self._outbox[row.id]
                self._outbox_keys.discard((webhook_id, row.event_key))

    # the outbox

    def enqueue_webhook_events(
        self, events: Sequence[WebhookEvent], *, webhook_id: str | None = None
    ) -> int:
        now = self.clock()
        added = 0
        with self._tx() as changes:
            for event in events:
                for record, _secret in self._webhooks.values():
                    key = (record.id, event.key)
                    if key in self._outbox_keys:
                        continue
                    if webhook_id is not None:
                        if record.id != webhook_id:
                            continue
                    elif not WebhookTarget(record.id, "", "", record.events).wants(event.name):
                        continue
                    row = _OutboxRow(
                        new_id(), record.id, event.key, event.name, event.body, now, now
                    )
                    self._outbox[row.id] = row
                    self._outbox_keys.add(key)
                    added += 1
            if added:
                changes.notify(_WEBHOOKS_KEY)
        return added

    def claim_webhook_deliveries(
        self, owner: str, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        if limit <= 0:
            return []
        now = self.clock()
        with self._tx():
            due = sorted(
                (
                    r
                    for r in self._outbox.values()
                    if r.state is DeliveryState.PENDING and r.due_at <= now
                ),
                key=lambda r: (r.due_at, r.created_at, r.id),
            )[:limit]
            claimed = []
            for row in due:
                row.owner = owner
                row.attempts += 1
                row.due_at = now + dt.timedelta(seconds=lease_seconds)
                record, secret = self._webhooks[row.webhook_id]
                target = WebhookTarget(record.id, record.url, secret, record.events)
                claimed.append(ClaimedDelivery(row.id, target, row.event, row.body, row.attempts))
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
        with self._tx() as changes:
            row = self._outbox.get(delivery_id)
            if (
                row is None
                or row.state is not DeliveryState.PENDING
                or row.owner != owner
                or row.attempts != attempt
            ):
                return False
            row.owner = None
            row.status_code = status_code
            row.last_error = None if delivered else error
            if delivered:
                row.state, row.finished_at = DeliveryState.DELIVERED, now
            elif retry_at is None:
                row.state, row.finished_at = DeliveryState.FAILED, now
            else:
                row.due_at = retry_at
                changes.notify(_WEBHOOKS_KEY)
            return True

    def list_webhook_deliveries(self, webhook_id: str, *, limit: int = 100) -> list[DeliveryRecord]:
        with self._lock:
            rows = [r for r in self._outbox.values() if r.webhook_id == webhook_id]
            rows.sort(key=lambda r: r.id)
            rows.sort(key=lambda r: r.created_at, reverse=True)
            return [r.record() for r in rows[:limit]]

    def prune_webhook_deliveries(self, before: dt.datetime) -> int:
        with self._tx():
            old = [
                r
                for r in self._outbox.values()
                if r.state is not DeliveryState.PENDING
                and r.finished_at is not None
                and r.finished_at < before
            ]
            for row in old:
                del self._outbox[row.id]
                self._outbox_keys.discard((row.webhook_id, row.event_key))
            return len(old)

    # what the watcher has reported

    def executions_finished_since(
        self, since: dt.datetime, *, after_id: str = "", limit: int = 500
    ) -> list[tuple[dt.datetime, str]]:
        with self._lock:
            found = [
                (ex.finished_at, ex.id)
                for ex in self._executions.values()
                if ex.finished_at is not None and (ex.finished_at, ex.id) > (since, after_id)
            ]
        return sorted(found)[:limit]

    def webhook_watermark(self) -> dt.datetime | None:
        with self._lock:
            return self._watermark

    def advance_webhook_watermark(self, to: dt.datetime) -> None:
        with self._tx():
            if self._watermark is None or self._watermark < to:
                self._watermark = to

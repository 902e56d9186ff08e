"""Webhooks and their outbox: the :class:`WebhookStore` protocol and its records.

A state change a webhook wants becomes one outbox row per (webhook, event),
written once: the event's ``key`` names the change (the same change seen
twice, by two watchers or after a restart, has the same key), and a store
keeps ``(webhook_id, key)`` unique, so writing it again adds nothing. The row
id is the delivery id: receivers see it in every attempt and de-duplicate on
it. Deliveries are claimed like host runs: a claim takes due rows no one
else holds (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, one ``BEGIN
IMMEDIATE`` writer on SQLite), counts the attempt and holds the row for a
lease; the finish is a compare-and-set on (owner, attempt), so a claimer
whose lease ran out cannot overwrite the one that took the row over.

SQLAlchemy-free: the in-memory store and the services import it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from muster.domain.webhooks import WebhookTarget

__all__ = [
    "ClaimedDelivery",
    "DeliveryRecord",
    "DeliveryState",
    "WebhookEvent",
    "WebhookRecord",
    "WebhookStore",
]


class DeliveryState(enum.StrEnum):
    #: Not yet delivered: due now, at its next retry, or held by a claim.
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Given up: the last attempt failed, or the URL is refused by the egress rules.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A registered webhook as the API shows it (its secret is never read back)."""

    id: str
    url: str
    events: tuple[str, ...]
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One state change to announce to every webhook that wants ``name``."""

    #: Unique per change: writing the same key again (per webhook) adds nothing.
    key: str
    #: ``host_run.<state>`` or ``execution.<status>``.
    name: str
    #: The exact JSON bytes sent (as text): what the signature covers, on every attempt.
    body: str


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One (webhook, event) in the outbox; ``id`` is the delivery id receivers see."""

    id: str
    webhook_id: str
    event: str
    event_key: str
    state: DeliveryState
    #: Attempts started (an attempt cut short by a crash counts).
    attempts: int
    #: The last answer's HTTP status (None: no answer).
    status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    #: Pending: when it may be claimed next; otherwise None.
    next_attempt_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def delivered(self) -> bool:
        return self.state is DeliveryState.DELIVERED


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery held by one claimer for one attempt; ``attempt`` is its CAS token."""

    id: str
    target: WebhookTarget
    event: str
    body: str
    #: The number of this attempt (1 for the first).
    attempt: int


@runtime_checkable
class WebhookStore(Protocol):
    """Webhooks, the outbox of their events, and the watermark of reported executions."""

    # webhooks
    def create_webhook(self, url: str, secret: str, events: Sequence[str]) -> WebhookRecord: ...
    def list_webhooks(self) -> list[WebhookRecord]: ...
    def get_webhook(self, webhook_id: str) -> WebhookRecord: ...
    def delete_webhook(self, webhook_id: str) -> None: ...

    # the outbox
    def enqueue_webhook_events(
        self, events: Sequence[WebhookEvent], *, webhook_id: str | None = None
    ) -> int:
        """Write a row per (webhook that wants it, event); keys already written are
        skipped. Returns the rows added; wakes the ``webhooks`` key when any were.
        ``webhook_id``: to that webhook only, whatever it asked for (a test delivery)."""
        ...

    def claim_webhook_deliveries(
        self, owner: str, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        """Take up to ``limit`` due pending rows no one holds, oldest due first: the
        attempt is counted and the row is due again after the lease."""
        ...

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
        """Record an attempt's outcome if the claim still holds (else change nothing,
        return False): delivered, pending again at ``retry_at``, or (neither) failed."""
        ...

    def list_webhook_deliveries(
        self, webhook_id: str, *, limit: int = 100
    ) -> list[DeliveryRecord]: ...
    def prune_webhook_deliveries(self, before: dt.datetime) -> int:
        """Forget delivered and failed rows finished before ``before``."""
        ...

    # what the watcher has reported
    def executions_finished_since(
        self, since: dt.datetime, *, after_id: str = "", limit: int = 500
    ) -> list[tuple[dt.datetime, str]]:
        """``(finished_at, id)`` of finished executions after ``(since, after_id)``,
        in that order."""
        ...

    def webhook_watermark(self) -> dt.datetime | None:
        """When executions finished before it were all reported (None: never swept)."""
        ...

    def advance_webhook_watermark(self, to: dt.datetime) -> None:
        """Move the watermark forward to ``to`` (never back)."""
        ...

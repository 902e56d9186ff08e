"""Webhooks: where state changes are delivered, signed with the webhook's secret."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from muster.server.schemas.common import Request, Response
from muster.store.outbox import DeliveryRecord, WebhookRecord

__all__ = ["DeliveryOut", "WebhookIn", "WebhookOut"]

EventName = Literal["execution", "host_run", "*"]


def _all_events() -> list[EventName]:
    return ["*"]


class WebhookIn(Request):
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")
    secret: str = Field(min_length=8, max_length=512)
    events: list[EventName] = Field(default_factory=_all_events)


class WebhookOut(Response):
    id: str
    url: str
    events: list[str]
    created_at: datetime | None

    @classmethod
    def of(cls, hook: WebhookRecord) -> WebhookOut:
        return cls(id=hook.id, url=hook.url, events=list(hook.events), created_at=hook.created_at)


class DeliveryOut(Response):
    #: The delivery id: ``X-Muster-Delivery`` on every attempt of this event.
    id: str
    webhook_id: str
    event: str
    #: pending, delivered or failed (given up).
    state: str
    status_code: int | None
    attempts: int
    delivered: bool
    last_error: str | None
    created_at: datetime | None
    #: Pending only: when the next attempt may start.
    next_attempt_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, d: DeliveryRecord) -> DeliveryOut:
        return cls(
            id=d.id,
            webhook_id=d.webhook_id,
            event=d.event,
            state=d.state.value,
            status_code=d.status_code,
            attempts=d.attempts,
            delivered=d.delivered,
            last_error=d.last_error,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            finished_at=d.finished_at,
        )

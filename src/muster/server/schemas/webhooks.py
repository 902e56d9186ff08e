"""Webhooks: where state changes are delivered, signed with the webhook's secret."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from muster.server.schemas.common import Request, Response

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


class DeliveryOut(Response):
    id: str
    webhook_id: str
    event: str
    status_code: int | None
    attempts: int
    delivered: bool
    last_error: str | None
    created_at: datetime | None

"""``/api/v1/webhooks``: register receivers of execution and host-run state changes.

A webhook's URL must resolve to public addresses only, unless
``MUSTER_WEBHOOK_ALLOW`` names them (see :mod:`muster.domain.egress`); it is
checked here and again at every delivery. Events wait in a durable outbox
(:mod:`muster.services.webhooks`); ``/deliveries`` shows it, pending rows
included, with the delivery id receivers see in ``X-Muster-Delivery``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from muster.server.context import ServerContext, get_context
from muster.server.schemas.webhooks import DeliveryOut, WebhookIn, WebhookOut
from muster.services.webhooks import WebhookService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
Ctx = Annotated[ServerContext, Depends(get_context)]


def _service(ctx: ServerContext) -> WebhookService:
    if ctx.webhooks is None:  # only before the lifespan opened it
        raise RuntimeError("webhooks are not open yet")
    return ctx.webhooks


@router.post("", response_model=WebhookOut, status_code=201)
def create_webhook(body: WebhookIn, ctx: Ctx) -> WebhookOut:
    """The secret signs every delivery (``X-Muster-Signature``); it is never shown again.
    A URL that resolves to a loopback, private, link-local or other non-public
    address is refused (422 on ``url``) unless ``MUSTER_WEBHOOK_ALLOW`` names it."""
    hook = _service(ctx).create_webhook(body.url, body.secret, list(body.events))
    return WebhookOut.of(hook)


@router.get("", response_model=list[WebhookOut])
def list_webhooks(ctx: Ctx) -> list[WebhookOut]:
    return [WebhookOut.of(w) for w in _service(ctx).list_webhooks()]


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: str, ctx: Ctx) -> Response:
    _service(ctx).delete_webhook(webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    webhook_id: str, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeliveryOut]:
    """Newest first: pending deliveries (with their next attempt), delivered and given up."""
    return [DeliveryOut.of(d) for d in _service(ctx).deliveries(webhook_id, limit=limit)]

"""``/api/v1/webhooks``: register receivers of execution and host-run state changes.

A webhook's URL must resolve to public addresses only, unless
``MUSTER_WEBHOOK_ALLOW`` names them (see :mod:`muster.domain.egress`); it is
checked here and again at every delivery.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from muster.server.context import ServerContext, get_context
from muster.server.delivery import EgressGuard
from muster.server.schemas.webhooks import DeliveryOut, WebhookIn, WebhookOut

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
Ctx = Annotated[ServerContext, Depends(get_context)]


def _guard(ctx: ServerContext) -> EgressGuard:
    guard = getattr(ctx.webhooks, "guard", None)
    if isinstance(guard, EgressGuard):
        return guard
    return EgressGuard.from_setting(ctx.settings.webhook_allow)


@router.post("", response_model=WebhookOut, status_code=201)
def create_webhook(body: WebhookIn, ctx: Ctx) -> WebhookOut:
    """The secret signs every delivery (``X-Muster-Signature``); it is never shown again.
    A URL that resolves to a loopback, private, link-local or other non-public
    address is refused (422 on ``url``) unless ``MUSTER_WEBHOOK_ALLOW`` names it."""
    _guard(ctx).check_url(body.url)
    return WebhookOut(**ctx.webhook_repo.create(body.url, body.secret, list(body.events)))


@router.get("", response_model=list[WebhookOut])
def list_webhooks(ctx: Ctx) -> list[WebhookOut]:
    return [WebhookOut(**w) for w in ctx.webhook_repo.all()]


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: str, ctx: Ctx) -> Response:
    ctx.webhook_repo.delete(webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(webhook_id: str, ctx: Ctx) -> list[DeliveryOut]:
    ctx.webhook_repo.get(webhook_id)
    return [DeliveryOut(**d) for d in ctx.webhook_repo.deliveries(webhook_id)]

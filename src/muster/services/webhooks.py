"""Webhooks as a service: registration with egress checks, the watcher that writes
events to the durable outbox, and the loop that delivers them.

One :class:`WebhookService` per process, over a store that keeps the
:class:`~muster.store.outbox.WebhookStore` contract (the SQL store, or
``muster.testing.InMemoryStore``), never the web app: the server's lifespan
starts it, and any process on the same database may run the delivery half
alone (claims never overlap). A restart loses nothing: events are rows
before they are sent, and a row stays pending until a receiver answered
2xx, its retries ran out, or its webhook was deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from muster.config import Settings
from muster.services.webhook_delivery import EgressGuard, WebhookDelivery
from muster.services.webhook_events import ExecutionWatcher, WatchedStore
from muster.store.notify import Notifier
from muster.store.outbox import DeliveryRecord, WebhookEvent, WebhookRecord

__all__ = ["DeliveryOptions", "WebhookService"]

_log = logging.getLogger(__name__)
#: Delivered and given-up rows are kept this long for ``/deliveries``.
_KEEP = dt.timedelta(days=7)
_PRUNE_EVERY = 3600.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How deliveries are retried; ``MUSTER_WEBHOOK_*`` settings fill it."""

    timeout: float = 10.0
    max_attempts: int = 20
    base_delay: float = 0.5
    max_delay: float = 600.0
    concurrency: int = 16

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryOptions:
        return cls(
            timeout=settings.webhook_timeout,
            max_attempts=settings.webhook_max_attempts,
            max_delay=settings.webhook_retry_max,
        )


class WebhookService:
    """Registration, event watching and delivery for one process."""

    def __init__(
        self,
        store: WatchedStore,
        notifier: Notifier,
        *,
        guard: EgressGuard,
        options: DeliveryOptions | None = None,
        watch: bool = True,
        deliver: bool = True,
        **delivery: Any,
    ) -> None:
        """``watch``/``deliver``: run that half here. ``delivery``: overrides for
        :class:`~muster.services.webhook_delivery.WebhookDelivery` (tests)."""
        opts = options or DeliveryOptions()
        self.store = store
        self.guard = guard
        clock = getattr(store, "clock", None)
        self._clock: Callable[[], dt.datetime] = clock if callable(clock) else _utcnow
        extra: dict[str, Any] = {"clock": self._clock}
        self.watcher = ExecutionWatcher(store, notifier, **extra) if watch else None
        self.delivery = (
            WebhookDelivery(
                store,
                notifier,
                guard=guard,
                **{
                    "timeout": opts.timeout,
                    "max_attempts": opts.max_attempts,
                    "base_delay": opts.base_delay,
                    "max_delay": opts.max_delay,
                    "concurrency": opts.concurrency,
                    **extra,
                    **delivery,
                },
            )
            if deliver
            else None
        )
        self._pruner: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, store: WatchedStore, notifier: Notifier, settings: Settings, **kwargs: Any
    ) -> WebhookService:
        return cls(
            store,
            notifier,
            guard=EgressGuard.from_setting(settings.webhook_allow),
            options=DeliveryOptions.from_settings(settings),
            **kwargs,
        )

    # lifecycle

    async def start(self) -> None:
        if self.delivery is not None:
            self.delivery.start()
            self._pruner = asyncio.create_task(self._prune_forever(), name="muster-webhook-prune")
        if self.watcher is not None:
            await self.watcher.start()

    async def stop(self, grace: float = 5.0) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        if self.delivery is not None:
            await self.delivery.stop(grace)

    def track(self, execution_id: str) -> None:
        """Follow a new execution at once (callable from any thread); the sweep would
        find it when it finishes, this also reports its way there."""
        if self.watcher is not None:
            self.watcher.watch(execution_id)

    async def _prune_forever(self) -> None:
        while True:
            try:
                before = self._clock() - _KEEP
                await asyncio.to_thread(self.store.prune_webhook_deliveries, before)
            except Exception:
                _log.exception("cannot prune old webhook deliveries")
            await asyncio.sleep(_PRUNE_EVERY)

    # registration (synchronous: called from request threads)

    def create_webhook(self, url: str, secret: str, events: Sequence[str]) -> WebhookRecord:
        """A refused URL (see :class:`EgressGuard`) is a ValidationError on ``url``."""
        self.guard.check_url(url)
        return self.store.create_webhook(url, secret, events)

    def list_webhooks(self) -> list[WebhookRecord]:
        return self.store.list_webhooks()

    def delete_webhook(self, webhook_id: str) -> None:
        """Its pending deliveries go with it."""
        self.store.delete_webhook(webhook_id)

    def send_test(self, webhook_id: str) -> str:
        """Queue a signed ``ping`` event for this webhook alone, delivered (and listed in
        its deliveries) like any other; returns the event key. NotFoundError if unknown."""
        hook = self.store.get_webhook(webhook_id)
        at = self._clock()
        key = f"ping:{uuid.uuid4().hex}"
        body = json.dumps(
            {"event": "ping", "webhook_id": hook.id, "at": at.isoformat()},
            sort_keys=True,
            separators=(",", ":"),
        )
        self.store.enqueue_webhook_events([WebhookEvent(key, "ping", body)], webhook_id=hook.id)
        return key

    def deliveries(self, webhook_id: str, *, limit: int = 100) -> list[DeliveryRecord]:
        """Newest first, pending ones included; NotFoundError for an unknown webhook."""
        self.store.get_webhook(webhook_id)
        return self.store.list_webhook_deliveries(webhook_id, limit=limit)

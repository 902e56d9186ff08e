"""What every request handler reaches: settings, store, live-output hub, webhooks, worker.

Built once per app by the lifespan and kept on ``app.state.muster``; handlers
get it through :func:`get_context`, never through globals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Request

from muster.config import Settings
from muster.services.webhooks import WebhookService
from muster.store.base import Store

__all__ = ["ServerContext", "WorkerControl", "get_context"]


class WorkerControl(Protocol):
    """The part of the embedded worker the API drives (drain, health)."""

    @property
    def alive(self) -> bool: ...
    @property
    def draining(self) -> bool: ...
    def drain(self) -> None: ...
    def resume(self) -> None: ...
    def describe(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class ServerContext:
    settings: Settings
    store: Store
    #: The store's ``Notifier`` (wake-ups per execution); set by the lifespan.
    live: Any = None
    #: Webhook registration, the outbox watcher and delivery; set by the lifespan.
    webhooks: WebhookService | None = None
    worker: WorkerControl | None = None
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    extra: dict[str, Any] = field(default_factory=dict)

    def track(self, execution_id: str) -> None:
        """Tell the webhook watcher about a new execution (callable from any thread)."""
        if self.webhooks is not None:
            self.webhooks.track(execution_id)


def get_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.muster
    return ctx

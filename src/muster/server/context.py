"""What every request handler reaches: settings, the store (every area, typed as
:class:`~muster.store.protocols.ServerStore`), the services over it, the webhook
service, the embedded worker and the server's stop flag.

Built once per app by the lifespan from what :func:`muster.app.open_services`
opened, and kept on ``app.state.muster``; handlers get it through
:func:`get_context`, never through globals. Every field is typed: a handler
asks the context for what it needs and never builds a store of its own. The
services (:mod:`muster.services`) are opened over the store with the
context, so a route only parses the request, calls one of them, and renders
the answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Request

from muster.config import Settings
from muster.domain.hosts import TransportKind
from muster.services.approvals import Approvals
from muster.services.scheduler import schedule_service
from muster.services.schedules import ScheduleService
from muster.services.submission import Submission
from muster.services.webhooks import WebhookService
from muster.services.workflow_driver import WorkflowDriver
from muster.services.workflows import Workflows
from muster.store.notify import Notifier
from muster.store.protocols import ServerStore
from muster.transports.base import Transport

if TYPE_CHECKING:
    from muster.server.web.summary import GroupCache

__all__ = ["ServerContext", "WorkerControl", "get_context"]


class WorkerControl(Protocol):
    """The part of the embedded worker the API drives (drain, health)."""

    @property
    def worker_id(self) -> str: ...
    @property
    def alive(self) -> bool: ...
    @property
    def draining(self) -> bool: ...
    def drain(self) -> None: ...
    def resume(self) -> None: ...
    def apply_drain(self, requested: bool) -> None:
        """Follow a drain flag the server just wrote to the store, without waiting."""

    def describe(self) -> dict[str, Any]: ...
    async def stop(self, grace: float) -> None:
        """Stop claiming; finish or hand back the runs held within ``grace`` seconds."""


@dataclass(slots=True)
class ServerContext:
    settings: Settings
    store: ServerStore
    #: Webhook registration, the outbox watcher and delivery; set by the lifespan.
    webhooks: WebhookService | None = None
    worker: WorkerControl | None = None
    #: The transports :func:`muster.app.open_services` built from the settings; the
    #: embedded worker runs plans through them unless its factory brings its own.
    transports: Mapping[TransportKind, Transport] = field(default_factory=dict)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: Set when the server begins to stop: live-output streams and imports end early.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: The console's cache of recent executions' result groups (made on first use).
    group_cache: GroupCache | None = None
    #: ``Settings.trusted_proxies`` parsed: the peers whose ``X-Forwarded-For`` counts.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(init=False)
    #: The approval lifecycle over :attr:`store` (gate, requests, votes, rules).
    approvals: Approvals = field(init=False)
    #: Submitting work for a caller (gate, store, approval request, audit, watch).
    submission: Submission = field(init=False)
    #: Schedules: definitions (audited), run-now, firings.
    schedules: ScheduleService = field(init=False)
    #: The durable workflow driver (its loop is started by the lifespan).
    workflow_driver: WorkflowDriver = field(init=False)
    #: Workflows for a caller: push, check, start, act on instances.
    workflows: Workflows = field(init=False)

    def __post_init__(self) -> None:
        self.trusted_proxies = tuple(
            ipaddress.ip_network(n, strict=False) for n in self.settings.trusted_proxies
        )
        store = self.store
        self.approvals = Approvals(
            store, book=store, rules=store, users=store, audit=store, clock=store.clock
        )
        self.submission = Submission(store, self.approvals, store, watch=self.track)
        self.schedules = schedule_service(store, submission=self.submission)
        self.workflow_driver = WorkflowDriver(
            store, self.approvals, lease_seconds=max(5.0, self.settings.lease_seconds)
        )
        self.workflows = Workflows(store, self.approvals, self.workflow_driver)

    @property
    def live(self) -> Notifier:
        """The store's notifier: wake-ups per execution for live output."""
        return self.store.notifier

    def track(self, execution_id: str) -> None:
        """Tell the webhook watcher about a new execution (callable from any thread)."""
        if self.webhooks is not None:
            self.webhooks.track(execution_id)


def get_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.muster
    return ctx

"""The FastAPI application: ``create_app(settings)`` and its lifespan.

The lifespan opens the store and transports through
:func:`muster.app.open_services` (migrations, vault and audit keys,
notifications), starts the webhook service (outbox watcher and delivery), the
embedded worker and the reaper loop, and on shutdown stops them in reverse
order: the worker stops claiming and finishes or hands back its runs within
``settings.shutdown_grace``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from muster.app import SERVER, open_services
from muster.config import Settings
from muster.domain.hosts import Host, TransportKind
from muster.errors import NotFoundError
from muster.server import (
    executions,
    health,
    hosts,
    jobs,
    rollouts,
    scripts,
    stream,
    webhooks,
    windows,
    workers,
    workflows,
)
from muster.server.context import ServerContext, WorkerControl
from muster.server.errors import install_error_handlers
from muster.server.health import muster_version
from muster.server.input_guard import install_body_limits
from muster.server.schedules import router as schedules_router
from muster.server.security_setup import announce_bootstrap, install_security
from muster.server.web import install_console
from muster.services.reaper import Reaper, reap_interval
from muster.services.webhooks import WebhookService
from muster.store.base import Store
from muster.store.protocols import ServerStore

__all__ = ["WorkerFactory", "create_app", "register_localhost"]

_log = logging.getLogger(__name__)

#: Builds and starts the embedded worker for a context (see :mod:`muster.server.embedded`).
WorkerFactory = Callable[[ServerContext], WorkerControl]


def register_localhost(store: Store) -> None:
    """The machine the server runs on, as host ``localhost`` over the local transport.

    For embedding and tests only (``create_app(localhost=True)``): whoever calls it
    owns the server. ``muster serve`` and ``muster demo`` never do; there only an
    admin (``hosts.local``) creates a host on the server's own machine.
    """
    try:
        store.get_host("localhost")
    except NotFoundError:
        store.create_host(
            Host(
                name="localhost",
                transport=TransportKind.LOCAL,
                shells=_local_shells(),
                labels={"role": "server"},
            )
        )


def _local_shells() -> tuple[str, ...]:
    import shutil

    found = [s for s in ("bash", "sh", "zsh", "ksh") if shutil.which(s)]
    if shutil.which("python3"):
        found.append("python")
    return tuple(found) or ("sh",)


def create_app(
    settings: Settings,
    *,
    store: ServerStore | None = None,
    worker_factory: WorkerFactory | None = None,
    embedded_worker: bool = True,
    localhost: bool = False,
    webhook_options: dict[str, Any] | None = None,
) -> FastAPI:
    """The API app. ``store`` defaults to the SQL store for ``settings``; the embedded
    worker is built by ``worker_factory`` (default: :mod:`muster.server.embedded`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A store handed in is keyed like one opened here, and left open for its owner.
        services = await run_in_threadpool(lambda: open_services(settings, SERVER, store=store))
        the_store = services.store
        ctx = ServerContext(settings=settings, store=the_store, transports=services.transports)
        app.state.muster = ctx
        if localhost:
            await run_in_threadpool(register_localhost, the_store)
        await announce_bootstrap(app)
        hooks = WebhookService.from_settings(
            the_store, the_store.notifier, settings, **(webhook_options or {})
        )
        await hooks.start()
        ctx.webhooks = hooks
        worker: WorkerControl | None = None
        if embedded_worker:
            factory = worker_factory
            if factory is None:
                from muster.server.embedded import start_embedded_worker

                factory = start_embedded_worker
            worker = ctx.worker = factory(ctx)
        reaper = Reaper(
            the_store, interval=reap_interval(settings.lease_seconds), approvals=ctx.approvals
        )
        reaper.start()
        scheduler = None
        if settings.scheduler:
            from muster.services.scheduler import Scheduler

            scheduler = Scheduler(ctx.schedules, poll=settings.scheduler_poll)
            scheduler.start()
        ctx.workflow_driver.start()
        try:
            yield
        finally:
            ctx.stopping.set()
            if scheduler is not None:
                await scheduler.stop()
            await ctx.workflow_driver.stop()
            await reaper.stop()
            if worker is not None:
                await worker.stop(settings.shutdown_grace)
            await hooks.stop()
            await services.aclose()

    app = FastAPI(
        title="muster",
        version=muster_version(),
        description="Run versioned scripts on fleets of servers.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (
        scripts,
        executions,
        stream,
        hosts,
        jobs,
        webhooks,
        windows,
        workers,
        rollouts,
        health,
    ):
        app.include_router(module.router)
    app.include_router(schedules_router)
    app.include_router(workflows.definitions)
    app.include_router(workflows.instances)
    install_security(app)
    install_console(app)
    install_body_limits(app, settings)
    return app

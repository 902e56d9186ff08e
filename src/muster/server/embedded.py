"""The worker embedded in ``muster serve``: one :class:`Worker` run as a task of the app.

By default it runs plans through the transports the app's
:func:`muster.app.open_services` built (closed with the app's services); a
factory given its own transports (the demo's simulated fleet, tests) closes
those when the worker stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from muster.app import attach_credentials
from muster.domain.hosts import TransportKind
from muster.server.context import ServerContext
from muster.transports.base import Transport
from muster.worker.runner import Worker

__all__ = [
    "EmbeddedWorker",
    "embedded_worker_factory",
    "start_embedded_worker",
]

_log = logging.getLogger(__name__)


class EmbeddedWorker:
    """A Worker plus its task; ``stop(grace)`` is the graceful end, and closes
    ``owned_transports``."""

    def __init__(self, worker: Worker, owned_transports: Mapping[TransportKind, Transport]) -> None:
        self.worker = worker
        self._transports = owned_transports
        self._task: asyncio.Task[None] = asyncio.create_task(worker.run(), name="muster-worker")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _log.error("embedded worker died", exc_info=task.exception())

    @property
    def worker_id(self) -> str:
        return self.worker.worker_id

    @property
    def alive(self) -> bool:
        return not self._task.done() and self.worker.alive

    @property
    def draining(self) -> bool:
        return self.worker.draining

    def drain(self) -> None:
        self.worker.drain()

    def resume(self) -> None:
        self.worker.resume()

    def apply_drain(self, requested: bool) -> None:
        self.worker.apply_drain(requested)

    def describe(self) -> dict[str, Any]:
        return {**self.worker.describe(), "embedded": True}

    async def stop(self, grace: float) -> None:
        await self.worker.stop(grace)
        if not self._task.done():
            await asyncio.wait({self._task}, timeout=grace + 5)
        for transport in self._transports.values():
            try:
                await transport.close()
            except Exception:
                _log.exception("closing a transport failed")


def embedded_worker_factory(
    transports: Mapping[TransportKind, Transport] | None = None,
) -> Callable[[ServerContext], EmbeddedWorker]:
    """A worker factory for :func:`muster.server.app.create_app` using ``transports``."""

    def start(ctx: ServerContext) -> EmbeddedWorker:
        s = ctx.settings
        chosen = ctx.transports if transports is None else transports
        if transports is not None:
            attach_credentials(transports, ctx.store)
        worker = Worker(
            ctx.store,
            chosen,
            concurrency=s.worker_concurrency,
            lease_seconds=s.lease_seconds,
            heartbeat_seconds=s.heartbeat_seconds,
            output_cap_bytes=s.output_cap_bytes,
            notifier=ctx.live,
        )
        return EmbeddedWorker(worker, {} if transports is None else transports)

    return start


start_embedded_worker = embedded_worker_factory()

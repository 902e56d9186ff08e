"""The worker embedded in ``muster serve``: one :class:`Worker` run as a task of the app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from muster.app import attach_credentials, settings_transports
from muster.domain.hosts import TransportKind
from muster.server.context import ServerContext
from muster.transports.base import Transport
from muster.worker.runner import Worker

__all__ = [
    "EmbeddedWorker",
    "attach_credentials",
    "embedded_worker_factory",
    "settings_transports",
    "start_embedded_worker",
]

_log = logging.getLogger(__name__)


class EmbeddedWorker:
    """A Worker plus its task and transports; ``stop(grace)`` is the graceful end."""

    def __init__(self, worker: Worker, transports: Mapping[TransportKind, Transport]) -> None:
        self.worker = worker
        self._transports = transports
        self._task: asyncio.Task[None] = asyncio.create_task(worker.run(), name="muster-worker")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _log.error("embedded worker died", exc_info=task.exception())

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
) -> Any:
    """A worker factory for :func:`muster.server.app.create_app` using ``transports``."""

    def start(ctx: ServerContext) -> EmbeddedWorker:
        s = ctx.settings
        chosen = transports
        if chosen is None:
            chosen = settings_transports(s)
        attach_credentials(chosen, ctx.store)
        worker = Worker(
            ctx.store,
            chosen,
            concurrency=s.worker_concurrency,
            lease_seconds=s.lease_seconds,
            heartbeat_seconds=s.heartbeat_seconds,
            output_cap_bytes=s.output_cap_bytes,
            notifier=ctx.live,
        )
        return EmbeddedWorker(worker, chosen)

    return start


start_embedded_worker = embedded_worker_factory()

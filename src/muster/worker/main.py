"""``muster worker`` / ``python -m muster.worker``: a worker process on a shared database.

Configuration comes from :class:`~muster.config.Settings` (``MUSTER_*``
variables). The process migrates the schema if needed, runs one
:class:`~muster.worker.runner.Worker` with the default transports and the
reaper loop (:class:`muster.services.reaper.Reaper`, the server's own), the
workflow driver's loop (:class:`muster.services.workflow_driver.WorkflowDriver`:
any number of processes may run it, an instance is advanced by one at a time), and
on SIGTERM or SIGINT stops gracefully (see ``Worker.stop``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from muster.config import Settings
from muster.domain.hosts import TransportKind
from muster.services.approvals import Approvals
from muster.services.reaper import Reaper, reap_interval
from muster.services.workflow_driver import WorkflowDriver
from muster.transports.base import Transport
from muster.worker.runner import Worker

__all__ = ["main", "run_worker"]


async def run_worker(
    settings: Settings,
    *,
    worker_id: str | None = None,
    concurrency: int | None = None,
    transports: Mapping[TransportKind, Transport] | None = None,
    on_start: Callable[[Worker], None] | None = None,
) -> None:
    """Run a worker until SIGTERM/SIGINT, then stop within ``settings.shutdown_grace``.

    The store and transports come from :func:`muster.app.open_services`, as the
    server's do: transports default to what the settings say, logging in with the
    vault's credentials.
    """
    from muster.app import SERVER, open_services

    services = await asyncio.to_thread(open_services, settings, SERVER, transports=transports)
    worker = Worker(
        services.store,
        services.transports,
        worker_id=worker_id,
        concurrency=concurrency or settings.worker_concurrency,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        output_cap_bytes=settings.output_cap_bytes,
    )
    reaper = Reaper(
        services.store,
        interval=reap_interval(settings.lease_seconds),
        name=f"{worker.worker_id}-reaper",
    )
    store = services.store
    approvals = Approvals(
        store, book=store, rules=store, users=store, audit=store, clock=store.clock
    )
    workflows = WorkflowDriver(
        store, approvals, owner=worker.worker_id, lease_seconds=max(5.0, settings.lease_seconds)
    )
    worker.install_signal_handlers(settings.shutdown_grace)
    if on_start is not None:
        on_start(worker)
    logging.getLogger(__name__).info("worker %s started", worker.worker_id)
    reaper.start()
    workflows.start()
    try:
        await worker.run()
    finally:
        await workflows.stop()
        await reaper.stop()
        await services.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="muster-worker", description=__doc__)
    parser.add_argument("--id", dest="worker_id", default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_worker(Settings(), worker_id=args.worker_id, concurrency=args.concurrency))
    return 0

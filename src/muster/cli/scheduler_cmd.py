"""``muster scheduler``: one more scheduler process on the server's database.

Several may run against one PostgreSQL database (``muster serve`` runs one
too); exactly one leads at a time, by an advisory lock, and the others take
over within about one poll when it dies. It opens the store through
:func:`muster.app.open_services` and fires ticks through the same services as
the server. SIGTERM or Ctrl-C stops it and hands the lead on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from muster.cli.common import load_settings
from muster.config import Settings

__all__ = ["scheduler"]

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="MUSTER_DATA_DIR", help="Where the database and key live."),
]


def scheduler(
    data_dir: DataDir = None,
    poll: Annotated[
        float | None, typer.Option(help="Seconds between passes (default MUSTER_SCHEDULER_POLL).")
    ] = None,
) -> None:
    """Run one scheduler against the server's database (one of several leads).

    SIGTERM/Ctrl-C: stop and release the lead.
    """
    settings = load_settings(data_dir=data_dir, scheduler_poll=poll)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_main(settings))


async def _main(settings: Settings) -> None:
    from muster.app import SCHEDULER, open_services
    from muster.services.scheduler import Scheduler, schedule_service

    services = await asyncio.to_thread(open_services, settings, SCHEDULER)
    try:
        runner = Scheduler(schedule_service(services.store), poll=settings.scheduler_poll)
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        task = runner.start()
        typer.echo(f"scheduler started (pid {_pid()}); waiting for the lead")
        await asyncio.wait(
            [task, asyncio.ensure_future(stopped.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        await runner.stop()
    finally:
        await services.aclose()
    typer.echo("scheduler stopped")


def _pid() -> int:
    import os

    return os.getpid()

"""``muster worker``: one more worker process on the server's database.

It claims runs from the same queue as the server's embedded worker (use
PostgreSQL to run workers on several machines), through
:func:`muster.worker.main.run_worker`. SIGTERM or Ctrl-C stops it gracefully:
no new claims, running plans finish or are handed back. SIGUSR1 drains (no
new claims, the process stays); SIGUSR2 resumes.
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

__all__ = ["worker"]

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="MUSTER_DATA_DIR", help="Where the database and key live."),
]


def worker(
    data_dir: DataDir = None,
    concurrency: Annotated[int | None, typer.Option(help="Runs at once.")] = None,
    worker_id: Annotated[str | None, typer.Option("--id", help="Worker id.")] = None,
) -> None:
    """Run one more worker against the server's database (PostgreSQL for several hosts).

    SIGTERM/Ctrl-C: stop claiming, finish or hand back runs. SIGUSR1 drains
    (no new claims, process stays); SIGUSR2 resumes.
    """
    settings = load_settings(data_dir=data_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_worker_main(settings, concurrency, worker_id))


async def _worker_main(settings: Settings, concurrency: int | None, worker_id: str | None) -> None:
    from muster.worker.main import run_worker
    from muster.worker.runner import Worker

    ids: list[str] = []

    def started(w: Worker) -> None:
        ids.append(w.worker_id)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, w.drain)
        loop.add_signal_handler(signal.SIGUSR2, w.resume)
        typer.echo(f"worker {w.worker_id} started (SIGUSR1 drains, SIGUSR2 resumes)")

    await run_worker(settings, worker_id=worker_id, concurrency=concurrency, on_start=started)
    typer.echo(f"worker {ids[0] if ids else worker_id or ''} stopped")

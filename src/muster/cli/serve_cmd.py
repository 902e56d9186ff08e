"""``muster serve``, ``muster worker`` and ``muster demo``: the server's processes.

``serve`` runs the API, one embedded worker and the reaper in one process
(SQLite in the data directory unless ``MUSTER_DATABASE_URL`` says otherwise).
It registers no host for this machine: the server's own machine is a host
only when an admin creates one on the local transport, and runs there as
``MUSTER_LOCAL_RUN_AS`` (default ``nobody``), never as the server's account.
``worker`` runs one more
worker against the same database. ``demo`` is ``serve`` plus a simulated SSH
fleet and sample scripts, so a newcomer runs a script on twenty hosts at once.
All three stop gracefully on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError as PydanticValidationError

from muster.cli.common import fail
from muster.config import Settings

__all__ = ["demo", "serve", "worker"]

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="MUSTER_DATA_DIR", help="Where the database and key live."),
]
Host = Annotated[str, typer.Option("--host", help="Address to listen on.")]
Port = Annotated[int, typer.Option("--port", help="Port to listen on.")]


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except PydanticValidationError as exc:
        raise fail(f"invalid configuration: {exc}") from exc


class _Server(uvicorn.Server):
    """uvicorn that also tells open live-output streams to end when asked to exit."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        app = self.config.loaded_app if self.config.loaded else None
        state = getattr(getattr(app, "state", None), "muster", None)
        if state is None:
            # loaded_app may be wrapped in middleware; look for our FastAPI app.
            inner = getattr(self.config, "app", None)
            state = getattr(getattr(inner, "state", None), "muster", None)
        stopping = state.extra.get("stopping") if state is not None else None
        if stopping is not None:
            stopping.set()
        super().handle_exit(sig, frame)
        # A graceful stop on request is a normal end: exit 0 instead of re-raising.
        self._captured_signals.clear()


def _run_http(app: Any, settings: Settings, log_level: str) -> None:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=max(5, int(settings.shutdown_grace) + 5),
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; the app
        # decides instead, from MUSTER_TRUSTED_PROXIES (login limits, audit).
        proxy_headers=False,
    )
    _Server(config).run()
    typer.echo("muster stopped")


def serve(
    host: Host = "127.0.0.1",
    port: Port = 8080,
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the API, one embedded worker and the reaper (SQLite by default)."""
    from muster.server.app import create_app

    settings = _settings(host=host, port=port, data_dir=data_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    typer.echo(f"muster serving on http://{settings.host}:{settings.port} (docs: /docs)")
    _run_http(create_app(settings), settings, log_level)


def worker(
    data_dir: DataDir = None,
    concurrency: Annotated[int | None, typer.Option(help="Runs at once.")] = None,
    worker_id: Annotated[str | None, typer.Option("--id", help="Worker id.")] = None,
) -> None:
    """Run one more worker against the server's database (PostgreSQL for several hosts).

    SIGTERM/Ctrl-C: stop claiming, finish or hand back runs. SIGUSR1 drains
    (no new claims, process stays); SIGUSR2 resumes.
    """
    settings = _settings(data_dir=data_dir)
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


def demo(
    host: Host = "127.0.0.1",
    port: Port = 8080,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Demo data (kept apart from serve's).")
    ] = Path(".muster-demo"),
    hosts: Annotated[int, typer.Option("--hosts", help="Simulated SSH hosts.")] = 20,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve plus a simulated SSH fleet (groups web, db, cache) and sample scripts."""
    from muster.cli.demo_setup import demo_app

    settings = _settings(host=host, port=port, data_dir=data_dir)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    app, fleet, banner = demo_app(settings, hosts)
    try:
        typer.echo(banner)
        _run_http(app, settings, log_level)
    finally:
        fleet.stop_thread()

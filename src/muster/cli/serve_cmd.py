"""``muster serve`` and ``muster demo``: the server over HTTP.

``serve`` runs the API, one embedded worker, the reaper and one scheduler (unless
``--no-scheduler``) in one process
(SQLite in the data directory unless ``MUSTER_DATABASE_URL`` says otherwise).
It registers no host for this machine: the server's own machine is a host
only when an admin creates one on the local transport, and runs there as
``MUSTER_LOCAL_RUN_AS`` (default ``nobody``), never as the server's account.
``demo`` is ``serve`` plus a simulated SSH fleet and sample scripts, so a
newcomer runs a script on twenty hosts at once. Both stop gracefully on
SIGTERM or Ctrl-C (:mod:`muster.server.serving` runs uvicorn); ``muster
worker`` lives in :mod:`muster.cli.worker_cmd`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from muster.cli.common import load_settings
from muster.config import Settings

__all__ = ["demo", "serve"]

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="MUSTER_DATA_DIR", help="Where the database and key live."),
]
Host = Annotated[str, typer.Option("--host", help="Address to listen on.")]
Port = Annotated[int, typer.Option("--port", help="Port to listen on.")]


def _run_http(app: Any, settings: Settings, log_level: str) -> None:
    from muster.server.serving import run_http

    run_http(app, settings, log_level)
    typer.echo("muster stopped")


def serve(
    host: Host = "127.0.0.1",
    port: Port = 8080,
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    scheduler: Annotated[
        bool | None,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Run one scheduler in this process (default: MUSTER_SCHEDULER, on).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the API, one embedded worker and the reaper (SQLite by default)."""
    from muster.server.app import create_app

    settings = load_settings(host=host, port=port, data_dir=data_dir, scheduler=scheduler)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    typer.echo(f"muster serving on http://{settings.host}:{settings.port} (docs: /docs)")
    _run_http(create_app(settings), settings, log_level)


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

    settings = load_settings(host=host, port=port, data_dir=data_dir)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    app, fleet, banner = demo_app(settings, hosts)
    try:
        typer.echo(banner)
        _run_http(app, settings, log_level)
    finally:
        fleet.stop_thread()

"""Serving the app over HTTP with uvicorn, as ``muster serve`` and ``muster demo`` do.

The web server belongs to the server package (only ``muster.server`` imports
uvicorn); the CLI hands over the app and its settings. Two choices matter:

- a stop request (SIGTERM, Ctrl-C) first sets the app's ``stopping`` flag, so
  live-output streams end at once instead of holding the graceful shutdown
  open, and then counts as a normal end (exit 0);
- uvicorn's ``proxy_headers`` stays off: it would believe ``X-Forwarded-For``
  from 127.0.0.1, while the app decides from ``MUSTER_TRUSTED_PROXIES`` whom a
  forwarded address may name (login limits, audit).
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from muster.config import Settings
from muster.server.context import ServerContext

__all__ = ["run_http"]


class _Server(uvicorn.Server):
    """uvicorn that also tells open live-output streams to end when asked to exit."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        ctx = self._context()
        if ctx is not None:
            ctx.stopping.set()
        super().handle_exit(sig, frame)
        # A graceful stop on request is a normal end: exit 0 instead of re-raising.
        self._captured_signals.clear()

    def _context(self) -> ServerContext | None:
        # loaded_app may be wrapped in middleware; the app given to Config is ours.
        for app in (self.config.loaded_app if self.config.loaded else None, self.config.app):
            ctx = getattr(getattr(app, "state", None), "muster", None)
            if isinstance(ctx, ServerContext):
                return ctx
        return None


def run_http(app: FastAPI, settings: Settings, log_level: str) -> None:
    """Serve ``app`` on ``settings.host:settings.port`` until stopped (blocking)."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=max(5, int(settings.shutdown_grace) + 5),
        proxy_headers=False,
    )
    _Server(config).run()

"""The web console: server-rendered pages (Jinja2) with small hand-written JS modules.

``install_console(app)`` includes one router per page area and serves
``/static``; nothing needs building. Console routes answer friendly HTML
errors; the JSON API keeps its JSON errors.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from muster.server.web import (
    pages_execute,
    pages_executions,
    pages_history,
    pages_hosts,
    pages_login,
    pages_scripts,
)
from muster.server.web.render import STATIC_DIR

__all__ = ["install_console", "router"]

router = APIRouter(include_in_schema=False)
for _module in (
    pages_scripts,
    pages_execute,
    pages_executions,
    pages_history,
    pages_hosts,
    pages_login,
):
    router.include_router(_module.router)


def install_console(app: FastAPI) -> None:
    """Add the console's pages and its static files to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

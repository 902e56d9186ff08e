"""The web console: server-rendered pages (Jinja2) with small hand-written JS modules.

``install_console(app)`` includes one router per page area and serves
``/static``; nothing needs building. Console routes answer friendly HTML
errors; the JSON API keeps its JSON errors.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

__all__ = ["console_router", "install_console"]


def console_router() -> APIRouter:
    """Every console page on one router.

    The pages are imported here, not when the package is: the permission
    table imports ``muster.server.web.permissions`` while the auth middleware
    is still loading, and the pages import that middleware.
    """
    from muster.server.web import (
        pages_execute,
        pages_executions,
        pages_history,
        pages_hosts,
        pages_login,
        pages_scripts,
    )

    router = APIRouter(include_in_schema=False)
    for module in (
        pages_scripts,
        pages_execute,
        pages_executions,
        pages_history,
        pages_hosts,
        pages_login,
    ):
        router.include_router(module.router)
    return router


def install_console(app: FastAPI) -> None:
    """Add the console's pages and its static files to ``app``."""
    from muster.server.web.render import STATIC_DIR

    app.include_router(console_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

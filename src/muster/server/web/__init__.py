"""The web console: server-rendered pages (Jinja2) with small hand-written JS modules.

``install_console(app)`` includes one router per page area and serves
``/static``; nothing needs building. Console routes answer friendly HTML
errors; the JSON API keeps its JSON errors.
"""

from __future__ import annotations

from collections.abc import Awaitable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["console_router", "install_console"]


def console_router() -> APIRouter:
    """Every console page on one router.

    The pages are imported here, not when the package is: the permission
    table imports ``muster.server.web.permissions`` while the auth middleware
    is still loading, and the pages import that middleware.
    """
    from muster.server.web import (
        pages_admin,
        pages_approvals,
        pages_audit,
        pages_commands,
        pages_dashboard,
        pages_execute,
        pages_executions,
        pages_history,
        pages_hosts,
        pages_log,
        pages_login,
        pages_rollouts,
        pages_schedules,
        pages_scripts,
        pages_vault,
        pages_windows,
        pages_workers,
        pages_workflows,
    )

    router = APIRouter(include_in_schema=False)
    router.add_api_route("/favicon.ico", _favicon, methods=["GET"])
    for module in (
        pages_scripts,
        pages_execute,
        pages_executions,
        pages_history,
        pages_hosts,
        pages_workers,
        pages_windows,
        pages_schedules,
        pages_login,
        pages_dashboard,
        pages_approvals,
        pages_commands,
        pages_log,
        pages_admin,
        pages_vault,
        pages_audit,
        pages_workers,
        pages_workflows,
        pages_rollouts,
    ):
        router.include_router(module.router)
    return router


def _favicon() -> Response:
    """Browsers ask every site for /favicon.ico; answer it rather than log a 404 per page."""
    from muster.server.web.render import STATIC_DIR

    icon = (STATIC_DIR / "favicon.ico").read_bytes()
    return Response(icon, media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})


def install_console(app: FastAPI) -> None:
    """Add the console's pages and its static files to ``app``.

    Call it after the API's error handlers are installed: an HTTP error on a
    console path (an unknown URL, a wrong method) then answers a page in the
    console's layout, and every other path keeps the API's JSON handler.
    """
    from muster.server.auth import is_console_path
    from muster.server.web.render import STATIC_DIR, error_page

    app.include_router(console_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    api_handler = app.exception_handlers.get(StarletteHTTPException)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if is_console_path(request.url.path):
            message = "there is no such page" if exc.status_code == 404 else str(exc.detail)
            return error_page(request, exc.status_code, message)
        if api_handler is None:
            raise exc
        answer = api_handler(request, exc)
        return await answer if isinstance(answer, Awaitable) else answer

    app.add_exception_handler(StarletteHTTPException, on_http_error)

"""Rendering for the console: one Jinja2 environment, the page helper, CSRF, errors.

Every console route uses :class:`HtmlErrorRoute`, so a failure inside a page
answers a readable HTML page (with the field problems, if any) and never a
stack trace, while the JSON API keeps its JSON errors. The CSRF token of the
caller's session (when the auth middleware is installed and the caller came
by cookie) is put into every page, for forms and for ``fetch``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from muster.errors import AuthenticationError, MusterError, ValidationError
from muster.security.rbac import Permission
from muster.server.context import ServerContext
from muster.server.errors import status_for
from muster.server.redirects import same_site_path

__all__ = [
    "STATIC_DIR",
    "HtmlErrorRoute",
    "allowed",
    "can",
    "csrf_token",
    "error_page",
    "form_data",
    "page",
    "web_context",
]

_log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
_SESSION_COOKIE = "muster_session"

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s"


def _show(value: Any) -> str:
    """A parameter value as the console writes it: booleans as ``true``/``false``
    (what the form and the API take), nothing for no value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _seconds(value: float | None) -> str:
    """A timeout as a person reads it: ``120 s``, ``0.5 s`` (never ``120.0``)."""
    return "—" if value is None else f"{value:g} s"


def _query(params: Mapping[str, Any], **changes: Any) -> str:
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else ""


_env.filters["when"] = _when
_env.filters["duration"] = _duration
_env.filters["show"] = _show
_env.filters["seconds"] = _seconds
_env.globals["query"] = _query


def web_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.muster
    return ctx


def csrf_token(request: Request) -> str:
    """The caller's session CSRF token, or "" when not logged in by cookie."""
    principal = getattr(request.state, "principal", None)
    cookie = request.cookies.get(_SESSION_COOKIE)
    if principal is None or cookie is None or getattr(principal, "via", "") != "session":
        return ""
    from muster.server.auth import security_store

    try:
        return security_store(request.app).get_session(cookie).csrf_token
    except MusterError:
        return ""


def _principal(request: Request) -> Any:
    return getattr(request.state, "principal", None)


def _auth_on(request: Request) -> bool:
    """Whether the auth middleware guards this app (without it every page is open)."""
    from muster.server.auth import AuthMiddleware

    return any(m.cls is AuthMiddleware for m in request.app.user_middleware)


def can(request: Request, permission: Permission | str) -> bool:
    """Whether the caller holds ``permission`` (always, when the app runs without logins)."""
    principal = _principal(request)
    if principal is None:
        return not _auth_on(request)
    return bool(principal.can(Permission(permission)))


def allowed(request: Request, method: str, path: str) -> bool:
    """Whether the caller may send ``method path``, by the same route table the auth
    middleware enforces: a page shows a button only when its target would answer.

    An undeclared route needs ``admin``, as in the middleware (fail closed).
    """
    from muster.server.permissions import AUTHENTICATED, PUBLIC, rule_for

    found = rule_for(method, path)
    need: Permission | str = Permission.ADMIN if found is None else found[1].need
    if need == PUBLIC:
        return True
    principal = _principal(request)
    if principal is None:
        return not _auth_on(request)
    if getattr(principal, "must_change_password", False):
        return False
    return need == AUTHENTICATED or bool(principal.can(Permission(need)))


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render ``template`` with the common values every page uses.

    Templates get ``can(permission)`` and ``may(method, path)`` bound to the
    caller, to show only the actions the caller may take.
    """
    principal = _principal(request)
    html = _env.get_template(template).render(
        request=request,
        path=request.url.path,
        csrf=csrf_token(request),
        user=getattr(principal, "name", None),
        can=lambda permission: can(request, permission),
        may=lambda method, path: allowed(request, method, path),
        **values,
    )
    return HTMLResponse(html, status_code=status_code)


async def form_data(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body, every field as a list (no multipart needed)."""
    body = (await request.body()).decode("utf-8", "replace")
    return parse_qs(body, keep_blank_values=True)


def error_page(
    request: Request,
    status: int,
    message: str,
    problems: Sequence[tuple[str | None, str]] = (),
    *,
    title: str | None = None,
) -> Response:
    """An error as a page in the console's layout (a JSON body under ``/ui/``)."""
    if request.url.path.startswith("/ui/"):
        body = {"message": message, "detail": [{"field": f, "problem": p} for f, p in problems]}
        return JSONResponse(body, status_code=status)
    return page(
        request,
        "error.html",
        status_code=status,
        title=title or _TITLES.get(status, "Something went wrong"),
        message=message,
        problems=list(problems),
    )


def _error_page(request: Request, status: int, title: str, message: str, problems: Any) -> Response:
    return error_page(request, status, message, problems, title=title)


_TITLES = {
    400: "That request could not be used",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    409: "That cannot be done right now",
    422: "Some input was not accepted",
}


class HtmlErrorRoute(APIRoute):
    """A route whose failures become a friendly page (or a JSON body under ``/ui/``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except AuthenticationError:
                if request.url.path.startswith("/ui/"):
                    raise
                target = _query({"next": same_site_path(request.url.path)})
                return Response(status_code=303, headers={"Location": f"/login{target}"})
            except MusterError as exc:
                status = status_for(exc)
                problems: list[tuple[str | None, str]] = []
                if isinstance(exc, ValidationError):
                    problems = list(exc.problems.items())
                return _error_page(
                    request, status, _TITLES.get(status, "Something went wrong"), str(exc), problems
                )
            except RequestValidationError as exc:
                problems = [
                    (".".join(str(p) for p in e["loc"][1:]), e["msg"]) for e in exc.errors()
                ]
                return _error_page(
                    request, 422, _TITLES[422], "the address has bad values", problems
                )
            except StarletteHTTPException as exc:
                status = exc.status_code
                return _error_page(
                    request, status, _TITLES.get(status, "Error"), str(exc.detail), []
                )
            except Exception:
                _log.exception("console page %s failed", request.url.path)
                return _error_page(
                    request,
                    500,
                    "Something went wrong on the server",
                    "The error was logged. Try again, or go back to the previous page.",
                    [],
                )

        return handler


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking store call off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def template_global(name: str, value: Any) -> None:
    """Make ``value`` (a function: called from templates) available to every template."""
    _env.globals[name] = value

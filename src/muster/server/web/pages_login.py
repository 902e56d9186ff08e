"""The account pages: log in (a form that posts to ``/api/v1/auth/login`` and
follows ``next``) and change the password (a CSRF-protected form).

The API sets the HttpOnly, SameSite=Strict session cookie; every console
page then carries that session's CSRF token. A caller still on a generated
one-time password is sent to ``/password`` by the auth middleware until
they change it. ``next`` only ever names a path on this site
(:func:`muster.server.redirects.safe_next`). Only useful once the auth
middleware is installed; without it every page is open.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from muster.errors import AuthenticationError, TooManyAttemptsError, ValidationError
from muster.server.redirects import safe_next
from muster.server.web.render import HtmlErrorRoute, form_data, in_thread, page

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, "login.html", next=safe_next(next))


def _password_page(
    request: Request, target: str, status_code: int = 200, **values: Any
) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    values.setdefault("problems", {})
    return page(
        request,
        "password.html",
        status_code=status_code,
        next=target,
        must_change=bool(getattr(principal, "must_change_password", False)),
        **values,
    )


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request, next: str = "/") -> HTMLResponse:
    return _password_page(request, safe_next(next))


@router.post("/password", response_class=HTMLResponse)
async def change_password(request: Request) -> Response:
    """Change the caller's own password, then go on to ``next``; the caller's other
    sessions end (as with the API; API tokens stay)."""
    # Imported here: the identity routes import the auth middleware, whose
    # permission table imports the console's rules (this package).
    from muster.server.security_routes import change_own_password

    form = await form_data(request)

    def field(name: str) -> str:
        return (form.get(name) or [""])[0]

    target = safe_next(field("next"))
    who = request.state.principal
    missing = {
        name: "required"
        for name in ("current_password", "new_password", "confirm_password")
        if not field(name)
    }
    if missing:
        return _password_page(request, target, 422, problems=missing)
    if field("new_password") != field("confirm_password"):
        problem = {"confirm_password": "the new passwords do not match"}
        return _password_page(request, target, 422, problems=problem)
    try:
        await in_thread(
            change_own_password, request, who, field("current_password"), field("new_password")
        )
    except TooManyAttemptsError as exc:
        return _password_page(request, target, 429, message=str(exc))
    except AuthenticationError:
        # 422, not 401: the caller is logged in; a form field is wrong
        problem = {"current_password": "the current password is wrong"}
        return _password_page(request, target, 422, problems=problem)
    except ValidationError as exc:
        problems = {
            ("new_password" if key == "password" else key): text
            for key, text in (exc.problems or {"new_password": exc.message}).items()
        }
        return _password_page(request, target, 422, problems=problems)
    return RedirectResponse(target, status_code=303)

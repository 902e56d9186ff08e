"""The login page: a form that posts to ``/api/v1/auth/login`` and follows ``next``.

The API sets the HttpOnly, SameSite=Strict session cookie; every console
page then carries that session's CSRF token. Only useful once the auth
middleware is installed; without it every page is open.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from muster.server.web.render import HtmlErrorRoute, page

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, next: str = "/") -> HTMLResponse:
    # Only same-site paths: a "next" of //evil.example would leave the console.
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    return page(request, "login.html", next=target)

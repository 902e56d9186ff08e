"""Administration: users and roles (create, disable, reset a password, assign roles)
and the caller's own API tokens (create with an expiry, revoke).

Each change calls the JSON API's own handler (:mod:`muster.server.security_routes`),
so the console writes the same audit records and keeps the same rules: the
last enabled admin cannot be demoted or disabled, a token can only narrow
its user's rights. A generated password or a new token is shown once, in
the answer to the form that made it, and never again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from muster.errors import ConflictError, ValidationError
from muster.security.passwords import generate_password
from muster.security.rbac import BUILTIN_ROLES
from muster.server import security_routes as api
from muster.server.auth import client_address, security_store
from muster.server.web.page_tools import api_model, caller, checked_notice, field, notice_redirect
from muster.server.web.render import HtmlErrorRoute, form_data, in_thread, page

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)


@router.get("/admin", response_class=HTMLResponse)
def admin_home(request: Request) -> HTMLResponse:
    """The administration pages the caller may open (links only)."""
    return page(request, "admin.html")


def _roles(request: Request) -> list[str]:
    return [*BUILTIN_ROLES, *sorted(security_store(request.app).custom_roles())]


def _users_page(
    request: Request,
    *,
    done: str = "",
    one_time: tuple[str, str] | None = None,
    problems: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    users = security_store(request.app).list_users()
    return page(
        request,
        "admin_users.html",
        status_code=status_code,
        users=users,
        roles=_roles(request),
        done=done,
        one_time=one_time,
        problems=problems or {},
        values=values or {},
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users(request: Request, done: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    return _users_page(request, done=checked_notice(request))


@router.post("/admin/users", response_class=HTMLResponse)
async def create_user(request: Request) -> HTMLResponse:
    form = await form_data(request)
    roles = form.get("roles", [])
    values = {"name": field(form, "name")}
    try:
        body = api_model(api.UserIn, {"name": values["name"], "roles": roles})
        out = await in_thread(api.create_user, body, caller(request), request)
    except (ValidationError, ConflictError) as exc:
        problems = getattr(exc, "problems", None) or {"name": str(exc)}
        return _users_page(request, problems=problems, values=values, status_code=422)
    return _users_page(
        request,
        done=f"User {out['name']} created.",
        one_time=(out["name"], out["one_time_password"]),
    )


@router.post("/admin/users/{name}", response_class=HTMLResponse)
async def change_user(request: Request, name: str) -> RedirectResponse:
    """Assign roles, disable or enable (one form field per change)."""
    form = await form_data(request)
    change: dict[str, Any] = {}
    if "roles" in form or field(form, "set_roles"):
        change["roles"] = [r for r in form.get("roles", []) if r]
    action = field(form, "action")
    if action in ("disable", "enable"):
        change["disabled"] = action == "disable"
    if not change:
        raise ValidationError("nothing to change", field="action")
    body = api_model(api.UserPatch, change)
    out = await in_thread(api.update_user, name, body, caller(request), request)
    what = "disabled" if change.get("disabled") else "enabled" if "disabled" in change else "saved"
    ended = out.get("sessions_ended", 0)
    tail = f" {ended} session(s) ended." if ended else ""
    return notice_redirect("/admin/users", f"User {out['name']} {what}.{tail}")


def _reset_password(request: Request, name: str) -> tuple[str, str]:
    """A new one-time password (must be changed at the next login), sessions ended,
    audited as the API's ``user.update`` with the password changed."""
    who = caller(request)
    password = generate_password()
    sec = security_store(request.app)
    change = sec.change_user(name, password=password, must_change_password=True)
    sec.record_audit(
        actor=who.name,
        action="user.update",
        target=f"user:{change.user.name}",
        address=client_address(request),
        details={
            "changed": ["password"],
            "one_time_password": True,
            "sessions_ended": change.sessions_ended,
        },
    )
    return change.user.name, password


@router.post("/admin/users/{name}/password", response_class=HTMLResponse)
async def reset_password(request: Request, name: str) -> HTMLResponse:
    user, password = await in_thread(_reset_password, request, name)
    return _users_page(
        request,
        done=f"A new one-time password was set for {user}; their sessions ended.",
        one_time=(user, password),
    )


# -- my tokens -------------------------------------------------------------------------


def _tokens_page(
    request: Request,
    *,
    done: str = "",
    issued: str | None = None,
    problems: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    who = caller(request)
    tokens = security_store(request.app).list_tokens(who.user_id)
    return page(
        request,
        "tokens.html",
        status_code=status_code,
        tokens=sorted(tokens, key=lambda t: t.created_at, reverse=True),
        roles=[r for r in _roles(request)],
        done=done,
        issued=issued,
        problems=problems or {},
    )


@router.get("/tokens", response_class=HTMLResponse)
def tokens(request: Request, done: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    return _tokens_page(request, done=checked_notice(request))


@router.post("/tokens", response_class=HTMLResponse)
async def create_token(request: Request) -> HTMLResponse:
    form = await form_data(request)
    data: dict[str, Any] = {"name": field(form, "name"), "ttl_days": field(form, "ttl_days") or 90}
    if field(form, "role"):
        data["role"] = field(form, "role")
    try:
        body = api_model(api.TokenIn, data)
        out = await in_thread(api.create_token, body, caller(request), request)
    except (ValidationError, ConflictError) as exc:
        problems = getattr(exc, "problems", None) or {"name": str(exc)}
        return _tokens_page(request, problems=problems, status_code=422)
    return _tokens_page(request, done=f"Token {out['name']} created.", issued=out["token"])


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
async def revoke_token(request: Request, token_id: str) -> RedirectResponse:
    await in_thread(api.revoke_token, token_id, caller(request), request)
    return notice_redirect("/tokens", "Token revoked.")

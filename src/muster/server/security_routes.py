"""Login and sessions, users, roles, API tokens, and the audit log over HTTP.

Permissions are declared in :mod:`muster.server.permissions` and enforced
by the auth middleware; handlers here only narrow "authenticated" routes to
the caller's own things. Secrets cross these endpoints once: a generated
password or a new token in the response that created it, never again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from muster.errors import AuthenticationError, PermissionDeniedError
from muster.security.passwords import generate_password
from muster.security.rbac import BUILTIN_ROLES, Permission
from muster.server.auth import SESSION_COOKIE, CurrentUser, client_address, security_store
from muster.store.security_store import TokenInfo, UserRecord

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["identity"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class PasswordIn(_In):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class UserIn(_In):
    name: str = Field(min_length=1, max_length=128)
    roles: list[str] = Field(min_length=1)
    #: Omit to have a one-time password generated and returned once.
    password: str | None = Field(default=None, max_length=1024)


class UserPatch(_In):
    roles: list[str] | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=1024)


class RoleIn(_In):
    name: str
    permissions: list[str]
    description: str = ""


class TokenIn(_In):
    name: str = Field(min_length=1, max_length=64)
    ttl_days: float = Field(default=90, gt=0, le=366)
    role: str | None = None


def _user_out(u: UserRecord) -> dict[str, Any]:
    return {
        "id": u.id,
        "name": u.name,
        "roles": list(u.roles),
        "disabled": u.disabled,
        "must_change_password": u.must_change_password,
        "created_at": u.created_at,
        "last_login_at": u.last_login_at,
    }


def _token_out(t: TokenInfo) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "hint": t.hint,
        "role": t.role,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at,
    }


def _audit(request: Request, actor: str, action: str, target: str, **details: Any) -> None:
    security_store(request.app).record_audit(
        actor=actor,
        action=action,
        target=target,
        address=client_address(request),
        details=details,
    )


# --- login / session ---------------------------------------------------------


@router.post("/auth/login")
def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
    """Password login for the console: sets an HttpOnly, SameSite=Strict session cookie."""
    sec = security_store(request.app)
    try:
        who = sec.authenticate_password(body.username, body.password)
    except AuthenticationError:
        _audit(request, body.username, "auth.login_failed", f"user:{body.username}")
        raise
    cookie, csrf = sec.create_session(who.user_id, address=client_address(request))
    response.set_cookie(
        SESSION_COOKIE,
        cookie.reveal(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    _audit(request, who.name, "auth.login", f"user:{who.name}")
    user = sec.get_user(who.user_id)
    return {
        "user": who.name,
        "roles": list(who.roles),
        "permissions": sorted(p.value for p in who.permissions),
        "csrf_token": csrf,
        "must_change_password": user.must_change_password,
    }


@router.post("/auth/logout", status_code=204)
def logout(who: CurrentUser, request: Request, response: Response) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        security_store(request.app).delete_session(cookie)
    _audit(request, who.name, "auth.logout", f"user:{who.name}")
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me")
def me(who: CurrentUser, request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {
        "user": who.name,
        "roles": list(who.roles),
        "permissions": sorted(p.value for p in who.permissions),
        "via": who.via,
        "token_role": who.token_role,
    }
    cookie = request.cookies.get(SESSION_COOKIE)
    if who.via == "session" and cookie:
        out["csrf_token"] = security_store(request.app).get_session(cookie).csrf_token
    return out


@router.post("/auth/password", status_code=204)
def change_password(body: PasswordIn, who: CurrentUser, request: Request) -> Response:
    sec = security_store(request.app)
    sec.authenticate_password(who.name, body.current_password)
    sec.update_user(who.user_id, password=body.new_password)
    _audit(request, who.name, "user.password_changed", f"user:{who.name}")
    return Response(status_code=204)


# --- users and roles (admin) -----------------------------------------------


@router.get("/users")
def list_users(request: Request) -> list[dict[str, Any]]:
    return [_user_out(u) for u in security_store(request.app).list_users()]


@router.post("/users", status_code=201)
def create_user(body: UserIn, who: CurrentUser, request: Request) -> dict[str, Any]:
    sec = security_store(request.app)
    generated = body.password is None
    password = generate_password() if generated else body.password
    user = sec.create_user(
        body.name, roles=body.roles, password=password, must_change_password=generated
    )
    _audit(request, who.name, "user.create", f"user:{user.name}", roles=list(user.roles))
    out = _user_out(user)
    if generated:
        out["one_time_password"] = password
    return out


@router.patch("/users/{name}")
def update_user(name: str, body: UserPatch, who: CurrentUser, request: Request) -> dict[str, Any]:
    sec = security_store(request.app)
    user = sec.update_user(name, roles=body.roles, disabled=body.disabled, password=body.password)
    changed = sorted(k for k, v in body.model_dump().items() if v is not None)
    _audit(request, who.name, "user.update", f"user:{user.name}", changed=changed)
    return _user_out(user)


@router.get("/roles")
def list_roles(request: Request) -> dict[str, list[str]]:
    roles = {name: sorted(p.value for p in perms) for name, perms in BUILTIN_ROLES.items()}
    for name, perms in security_store(request.app).custom_roles().items():
        roles[name] = sorted(p.value for p in perms)
    return roles


@router.post("/roles", status_code=201)
def create_role(body: RoleIn, who: CurrentUser, request: Request) -> dict[str, Any]:
    security_store(request.app).create_role(body.name, body.permissions, body.description)
    _audit(request, who.name, "role.create", f"role:{body.name}", permissions=body.permissions)
    return {"name": body.name, "permissions": sorted(set(body.permissions))}


@router.delete("/roles/{name}", status_code=204)
def delete_role(name: str, who: CurrentUser, request: Request) -> Response:
    security_store(request.app).delete_role(name)
    _audit(request, who.name, "role.delete", f"role:{name}")
    return Response(status_code=204)


# --- tokens (own) ------------------------------------------------------------


@router.get("/tokens")
def list_tokens(who: CurrentUser, request: Request) -> list[dict[str, Any]]:
    return [_token_out(t) for t in security_store(request.app).list_tokens(who.user_id)]


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, who: CurrentUser, request: Request) -> dict[str, Any]:
    """A token for the caller, shown once; a ``role`` can only narrow what it may do."""
    issued, info = security_store(request.app).create_token(
        who.user_id, body.name, ttl=dt.timedelta(days=body.ttl_days), role=body.role
    )
    _audit(request, who.name, "token.create", f"token:{info.id}", name=info.name, role=info.role)
    return {**_token_out(info), "token": issued.token.reveal()}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, who: CurrentUser, request: Request) -> Response:
    sec = security_store(request.app)
    owner = {t.id: t.user_id for t in sec.list_tokens()}.get(token_id)
    if owner is not None and owner != who.user_id and not who.can(Permission.ADMIN):
        raise PermissionDeniedError("only an admin may revoke another user's token")
    sec.revoke_token(token_id)
    _audit(request, who.name, "token.revoke", f"token:{token_id}")
    return Response(status_code=204)


# --- audit -------------------------------------------------------------------


@router.get("/audit")
async def list_audit(
    request: Request,
    user: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=2**31 - 1),
) -> dict[str, Any]:
    def aware(t: dt.datetime | None) -> dt.datetime | None:
        return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t

    page = await run_in_threadpool(
        lambda: security_store(request.app).list_audit(
            actor=user,
            action=action,
            since=aware(since),
            until=aware(until),
            limit=limit,
            offset=offset,
        )
    )
    return {
        "items": [
            {
                "seq": r.seq,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "address": r.address,
                "details": r.details,
                "hash": r.hash,
            }
            for r in page.items
        ],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


@router.get("/audit/verify")
async def verify_audit(request: Request) -> dict[str, Any]:
    result = await run_in_threadpool(security_store(request.app).verify_audit)
    return {
        "ok": result.ok,
        "checked": result.checked,
        "first_bad_seq": result.first_bad_seq,
        "problem": result.problem,
        "anchor": f"{result.head[0]}:{result.head[1]}" if result.head else None,
    }

"""Login and sessions, users, roles, API tokens, and the audit log over HTTP.

Permissions are declared in :mod:`muster.server.permissions` and enforced
by the auth middleware; handlers here only narrow "authenticated" routes to
the caller's own things. Secrets cross these endpoints once: a generated
password or a new token in the response that created it, never again.

Failed logins are aggregated in the audit log: a record for the 1st, 2nd,
4th, 8th... failure of one user name from one address in a window, each
with the running count, so a flood leaves a handful of records, not one per
attempt (:mod:`muster.store.login_limits` counts them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from muster.errors import (
    AuthenticationError,
    LoginFailedError,
    PermissionDeniedError,
    TooManyAttemptsError,
    ValidationError,
)
from muster.security.passwords import generate_password
from muster.security.rbac import BUILTIN_ROLES, Permission, Principal
from muster.server.auth import SESSION_COOKIE, CurrentUser, client_address, security_store
from muster.store.login_limits import is_worth_recording
from muster.store.security_ops import TokenInfo, UserChange, UserRecord

__all__ = ["audit_login_failure", "change_own_password", "router"]

router = APIRouter(prefix="/api/v1", tags=["identity"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class PasswordIn(_In):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)
    #: Also revoke every API token of the user (sessions always end).
    revoke_tokens: bool = False


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


def audit_login_failure(request: Request, user: str, exc: AuthenticationError) -> None:
    """Record a refused password check, aggregated (see the module docstring)."""
    if isinstance(exc, TooManyAttemptsError):
        if is_worth_recording(exc.attempts):
            _audit(
                request,
                user,
                "auth.login_throttled",
                f"address:{client_address(request)}",
                attempts=exc.attempts,
                retry_after=round(exc.retry_after),
            )
        return
    attempts = exc.attempts if isinstance(exc, LoginFailedError) else 1
    if is_worth_recording(attempts):
        _audit(request, user, "auth.login_failed", f"user:{user}", failures=attempts)


def _checked_password(request: Request, user: str, password: str) -> Principal:
    try:
        return security_store(request.app).authenticate_password(
            user, password, address=client_address(request)
        )
    except AuthenticationError as exc:
        audit_login_failure(request, user, exc)
        raise


# --- login / session ---------------------------------------------------------


@router.post("/auth/login")
def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
    """Password login for the console: sets an HttpOnly, SameSite=Strict session cookie.

    Too many attempts from one address answer 429 with ``Retry-After``."""
    sec = security_store(request.app)
    who = _checked_password(request, body.username, body.password)
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
    return {
        "user": who.name,
        "roles": list(who.roles),
        "permissions": sorted(p.value for p in who.permissions),
        "csrf_token": csrf,
        "must_change_password": who.must_change_password,
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
        "must_change_password": who.must_change_password,
    }
    cookie = request.cookies.get(SESSION_COOKIE)
    if who.via == "session" and cookie:
        out["csrf_token"] = security_store(request.app).get_session(cookie).csrf_token
    return out


def change_own_password(
    request: Request, who: Principal, current: str, new: str, *, revoke_tokens: bool = False
) -> UserChange:
    """Check the current password (throttled like a login), set the new one, end the
    caller's other sessions (the one making the request stays), audit it."""
    _checked_password(request, who.name, current)
    keep = request.cookies.get(SESSION_COOKIE) if who.via == "session" else None
    change = security_store(request.app).change_user(
        who.user_id, password=new, keep_session=keep, revoke_tokens=revoke_tokens
    )
    _audit(
        request,
        who.name,
        "user.password_changed",
        f"user:{who.name}",
        sessions_ended=change.sessions_ended,
        tokens_revoked=change.tokens_revoked,
    )
    return change


@router.post("/auth/password")
def change_password(body: PasswordIn, who: CurrentUser, request: Request) -> dict[str, int]:
    """Change the caller's password: their other sessions end; their API tokens stay
    unless ``revoke_tokens`` is true. The answer says how many of each ended."""
    change = change_own_password(
        request, who, body.current_password, body.new_password, revoke_tokens=body.revoke_tokens
    )
    return {"sessions_ended": change.sessions_ended, "tokens_revoked": change.tokens_revoked}


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
    """Change a user; a new password or disabling ends their sessions (the answer
    counts them). Leaving no enabled admin is refused with 409."""
    sec = security_store(request.app)
    change = sec.change_user(name, roles=body.roles, disabled=body.disabled, password=body.password)
    changed = sorted(k for k, v in body.model_dump().items() if v is not None)
    _audit(
        request,
        who.name,
        "user.update",
        f"user:{change.user.name}",
        changed=changed,
        sessions_ended=change.sessions_ended,
    )
    return {**_user_out(change.user), "sessions_ended": change.sessions_ended}


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
async def verify_audit(
    request: Request,
    anchor: list[str] = Query(
        default=[],
        max_length=100,
        description="SEQ:HASH of an exported anchor (repeatable): the chain must still "
        "hold that exact record.",
    ),
) -> dict[str, Any]:
    anchors = []
    for text in anchor:
        seq, sep, digest = text.partition(":")
        if not sep or not seq.isdigit() or len(seq) > 18 or len(digest) != 64:
            raise ValidationError(f"anchor {text[:80]!r}: expected SEQ:HASH", field="anchor")
        anchors.append((int(seq), digest.lower()))
    sec = security_store(request.app)
    result = await run_in_threadpool(lambda: sec.verify_audit(anchors=anchors))
    return {
        "ok": result.ok,
        "checked": result.checked,
        "legacy": result.legacy,
        "anchors_found": result.anchors,
        "first_bad_seq": result.first_bad_seq,
        "problem": result.problem,
        "anchor": f"{result.head[0]}:{result.head[1]}" if result.head else None,
    }

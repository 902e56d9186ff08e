"""Authentication, authorisation, CSRF and the generic audit record, before routing.

One ASGI middleware does it for every request, so no route can forget:

1. find the route's :class:`~muster.server.permissions.Rule` (undeclared
   routes need an authenticated admin: fail closed);
2. authenticate ``Authorization: Bearer mst_...`` or the session cookie;
   401 without valid credentials, 403 without the permission; a caller
   still on a generated one-time password gets 403 (a console page: a
   redirect to ``/password``) for all but ``BEFORE_PASSWORD_CHANGE``;
3. for a cookie-authenticated state-changing request, require the session's
   CSRF token in ``X-CSRF-Token`` or, for an urlencoded form, in its
   ``csrf_token`` field (the body is read once and replayed);
4. after a successful state-changing request, append an audit record
   (unless the handler audits itself with more detail).

Handlers read the caller with the :data:`CurrentUser` dependency, and the
client's address with :func:`client_address` (``X-Forwarded-For`` counts
only from ``Settings.trusted_proxies``).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final
from urllib.parse import parse_qs, urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from muster.errors import AuthenticationError, MusterError, TooManyAttemptsError
from muster.security.rbac import Permission, Principal
from muster.server.errors import error_body
from muster.server.permissions import (
    AUTHENTICATED,
    BEFORE_PASSWORD_CHANGE,
    PUBLIC,
    Rule,
    rule_for,
)
from muster.server.redirects import same_site_path
from muster.store.protocols import ServerStore
from muster.store.session_store import csrf_matches

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AuthMiddleware",
    "CurrentUser",
    "client_address",
    "current_principal",
    "install_auth",
    "is_console_page",
    "is_console_path",
    "login_redirect",
    "password_redirect",
    "security_store",
]

_log = logging.getLogger(__name__)

SESSION_COOKIE: Final = "muster_session"
CSRF_HEADER: Final = "x-csrf-token"
CSRF_FIELD: Final = "csrf_token"
_UNSAFE: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_LIMIT: Final = 8 * 1024 * 1024
_ADMIN_ONLY: Final = Rule(Permission.ADMIN)
_UNROUTED: Final = Rule(AUTHENTICATED)
_NOT_CONSOLE: Final = (
    "/api/",
    "/ui/",
    "/static/",
    "/health",
    "/metrics",
    "/openapi",
    "/docs",
    "/redoc",
)


def is_console_page(method: str, path: str) -> bool:
    """A browser page of the console (not the API): unauthenticated visits go to /login."""
    return method in ("GET", "HEAD") and path != "/login" and not path.startswith(_NOT_CONSOLE)


def is_console_path(path: str) -> bool:
    """A path of the console's pages and forms (any method): its errors are HTML pages."""
    return not path.startswith(_NOT_CONSOLE)


def login_redirect(path: str, query: str = "") -> str:
    """Where an unauthenticated console visit is sent: ``/login?next=<path>``
    (a path that could lead off-site is replaced by ``/``)."""
    return "/login?" + urlencode({"next": same_site_path(path, query)})


def password_redirect(path: str, query: str = "") -> str:
    """Where a console visit on an unchanged one-time password is sent."""
    return "/password?" + urlencode({"next": same_site_path(path, query)})


def security_store(app: Any) -> ServerStore:
    """The app's store, for its identity, session, audit and approval areas."""
    store: ServerStore = app.state.muster.store
    return store


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted_proxies(scope: Scope) -> tuple[_Network, ...]:
    app = scope.get("app")
    ctx = getattr(getattr(app, "state", None), "muster", None)
    return () if ctx is None else ctx.trusted_proxies


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(scope_or_request: Any) -> str | None:
    """The client's address, for login limits, sessions and the audit log.

    The connecting peer, unless it is one of ``Settings.trusted_proxies``:
    then the nearest address in ``X-Forwarded-For`` (read from the right)
    that is not a trusted proxy itself. Nobody else may name an address, so
    a forged header from a client changes nothing.
    """
    scope = getattr(scope_or_request, "scope", scope_or_request)
    client = scope.get("client")
    peer: str | None = client[0] if client else None
    trusted = _trusted_proxies(scope)
    peer_ip = _ip(peer) if peer else None
    if peer_ip is None or not any(peer_ip in net for net in trusted):
        return peer
    hops = [
        hop
        for value in Headers(scope=scope).getlist("x-forwarded-for")
        for hop in value.split(",")
        if hop.strip()
    ]
    nearest = peer
    for hop in reversed(hops):
        hop_ip = _ip(hop)
        if hop_ip is None:
            return nearest
        nearest = str(hop_ip)
        if not any(hop_ip in net for net in trusted):
            return nearest
    return nearest


def current_principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise AuthenticationError("authentication required")
    return principal  # type: ignore[no-any-return]


CurrentUser = Annotated[Principal, Depends(current_principal)]


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _cookie(headers: Headers) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


def _authenticate(sec: ServerStore, headers: Headers) -> tuple[Principal | None, str | None]:
    """(principal, csrf token if by cookie); ``AuthenticationError`` for bad credentials."""
    token = _bearer(headers)
    if token is not None:
        return sec.authenticate_token(token), None
    cookie = _cookie(headers)
    if cookie is not None:
        info = sec.get_session(cookie)
        return info.principal, info.csrf_token
    return None, None


def _reply(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(error_body(message, [(None, message)]), status_code=status, headers=headers)


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"].upper()
        path: str = scope["path"]
        found = rule_for(method, path)
        template, rule = found if found is not None else (None, _ADMIN_ONLY)
        if found is None and is_console_path(path) and not _routed(scope):
            # No console page is there: any user may learn that (a 404 page), nobody
            # gets more. The API keeps answering undeclared paths for admins only.
            rule = _UNROUTED
        headers = Headers(scope=scope)
        principal: Principal | None = None
        csrf: str | None = None
        if rule.need != PUBLIC:
            try:
                sec = security_store(scope["app"])
                principal, csrf = await run_in_threadpool(_authenticate, sec, headers)
            except AuthenticationError as exc:
                if is_console_page(method, path):
                    await _redirect(scope, receive, send)
                    return
                await _reply(401, str(exc), **{"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
            if principal is None:
                if is_console_page(method, path):
                    await _redirect(scope, receive, send)
                    return
                await _reply(401, "authentication required", **{"WWW-Authenticate": "Bearer"})(
                    scope, receive, send
                )
                return
            if principal.must_change_password and not _before_change(method, template):
                if is_console_page(method, path):
                    await _redirect(scope, receive, send, to=password_redirect)
                    return
                await _deny(scope, receive, send, principal, _change_first(principal))
                return
            if rule.need != AUTHENTICATED and not principal.can(Permission(rule.need)):
                message = f"{principal.name} lacks permission {rule.need}"
                await _deny(scope, receive, send, principal, message)
                return
            if csrf is not None and method in _UNSAFE:
                receive, ok = await _check_csrf(headers, receive, csrf)
                if not ok:
                    message = "CSRF token missing or wrong (reload the page and try again)"
                    await _deny(scope, receive, send, principal, message)
                    return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["route_template"] = template
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if principal is not None and method in _UNSAFE and status < 400 and not rule.self_audited:
            await _audit_generic(scope, principal, method, template or path, path, status)


def _routed(scope: Scope) -> bool:
    """Whether any route of the app would take this request (whatever its method)."""
    router = getattr(scope.get("app"), "router", None)
    return any(r.matches(scope)[0] is not Match.NONE for r in getattr(router, "routes", ()))


async def _deny(
    scope: Scope, receive: Receive, send: Send, principal: Principal, message: str
) -> None:
    """403: a page in the console's layout for the console, the JSON error elsewhere."""
    if not is_console_path(scope["path"]):
        await _reply(403, message)(scope, receive, send)
        return
    from muster.server.web.render import error_page

    scope.setdefault("state", {})["principal"] = principal
    await error_page(Request(scope, receive), 403, message)(scope, receive, send)


def _before_change(method: str, template: str | None) -> bool:
    method = "GET" if method == "HEAD" else method
    return (method, template or "") in BEFORE_PASSWORD_CHANGE


def _change_first(who: Principal) -> str:
    return (
        f"{who.name} must change the generated one-time password first "
        "(POST /api/v1/auth/password, or the console's /password page); until then "
        "only /api/v1/auth/me, /api/v1/auth/password and /api/v1/auth/logout answer"
    )


async def _redirect(
    scope: Scope, receive: Receive, send: Send, to: Callable[[str, str], str] = login_redirect
) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    location = to(scope["path"], query)
    await Response(status_code=303, headers={"Location": location})(scope, receive, send)


async def _check_csrf(headers: Headers, receive: Receive, expected: str) -> tuple[Receive, bool]:
    if csrf_matches(expected, headers.get(CSRF_HEADER)):
        return receive, True
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return receive, False
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > _FORM_LIMIT:
            return receive, False
    values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).get(CSRF_FIELD)
    presented = values[0] if values else None
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay, csrf_matches(expected, presented)


async def _audit_generic(
    scope: Scope, who: Principal, method: str, template: str, path: str, status: int
) -> None:
    sec = security_store(scope["app"])
    try:
        await run_in_threadpool(
            lambda: sec.record_audit(
                actor=who.name,
                action=f"{method} {template}",
                target=path,
                address=client_address(scope),
                details={"status": status, "via": who.via},
            )
        )
    except MusterError:
        _log.exception("audit record for %s %s failed", method, path)


async def _on_auth_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, TooManyAttemptsError):
        return _reply(429, str(exc), **{"Retry-After": str(max(1, round(exc.retry_after)))})
    return _reply(401, str(exc), **{"WWW-Authenticate": "Bearer"})


def install_auth(app: FastAPI) -> None:
    """Add the middleware and the 401 handler (call once, before the app starts)."""
    app.add_middleware(AuthMiddleware)
    handler: Callable[[Request, Exception], Awaitable[JSONResponse]] = _on_auth_error
    app.add_exception_handler(AuthenticationError, handler)

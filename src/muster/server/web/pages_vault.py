"""Credentials (write-only: create, replace, delete; where each is used) and webhooks
(create, test delivery, recent deliveries, delete).

A credential's value goes in through a password field and never comes back:
the pages show metadata only (kind, login user, key fingerprint, which hosts
and groups name it). Creating and deleting call the API's handlers
(:mod:`muster.server.credentials`), so the records and checks are the same;
replacing seals a new value in place and is audited as
``credential.replace``. A webhook's signing secret is shown nowhere after it
is typed in.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from muster.domain.credentials import CredentialKind
from muster.domain.secret import Secret
from muster.errors import ConflictError, NotFoundError, ValidationError
from muster.server import credentials as api
from muster.server.auth import client_address, security_store
from muster.server.schemas.webhooks import WebhookIn
from muster.server.web.page_tools import api_model, caller, checked_notice, field, notice_redirect
from muster.server.web.render import HtmlErrorRoute, form_data, in_thread, page, web_context
from muster.services.webhooks import WebhookService
from muster.transports.ssh_credentials import key_fingerprint

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

#: Deliveries listed per webhook.
DELIVERIES = 50


def _raw(form: dict[str, list[str]], name: str) -> str:
    """A secret field exactly as typed (not stripped: spaces may belong to it)."""
    values = form.get(name)
    return values[0] if values else ""


def _usage(request: Request) -> dict[str, list[str]]:
    """Credential name -> what names it: ``host NAME`` and ``group NAME`` entries."""
    store = web_context(request).store
    used: dict[str, list[str]] = {}
    for host in store.list_hosts():
        if host.credential_ref:
            used.setdefault(host.credential_ref, []).append(f"host {host.name}")
    for group, name in api.credential_store(request.app).group_credentials().items():
        used.setdefault(name, []).append(f"group {group}")
    return used


def _credentials_page(
    request: Request,
    *,
    done: str = "",
    problems: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    vault_error = ""
    items: list[Any] = []
    try:
        items = api.credential_store(request.app).list_credentials()
    except Exception as exc:  # no vault key: say so instead of a broken page
        vault_error = str(exc)
    usage = _usage(request)
    for info in items:  # a host may name a credential by id
        usage.setdefault(info.name, []).extend(usage.pop(info.id, []))
    return page(
        request,
        "credentials.html",
        status_code=status_code,
        items=items,
        usage=usage,
        kinds=[k.value for k in CredentialKind],
        done=done,
        problems=problems or {},
        values=values or {},
        vault_error=vault_error,
    )


@router.get("/admin/credentials", response_class=HTMLResponse)
def credentials(request: Request, done: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    return _credentials_page(request, done=checked_notice(request))


@router.post("/admin/credentials", response_class=HTMLResponse)
async def create_credential(request: Request) -> Any:
    form = await form_data(request)
    values = {k: field(form, k) for k in ("name", "kind", "username", "description")}
    data: dict[str, Any] = {
        "name": values["name"],
        "kind": values["kind"],
        "secret": _raw(form, "secret"),
        "username": values["username"] or None,
        "description": values["description"],
    }
    if _raw(form, "passphrase"):
        data["passphrase"] = _raw(form, "passphrase")
    try:
        body = api_model(api.CredentialIn, data)
        info = await in_thread(api.create_credential, body, caller(request), request)
    except (ValidationError, ConflictError) as exc:
        problems = getattr(exc, "problems", None) or {"name": str(exc)}
        # The secret is never put back into the form: the page says so.
        problems.setdefault("secret", "type the secret again (it is never sent back)")
        return _credentials_page(request, problems=problems, values=values, status_code=422)
    return notice_redirect("/admin/credentials", f"Credential {info.name} saved.")


def _replace(request: Request, credential_id: str, form: dict[str, list[str]]) -> str:
    store = api.credential_store(request.app)
    current = store.get_credential(credential_id)
    secret = _raw(form, "secret")
    passphrase = _raw(form, "passphrase") or None
    if not secret:
        raise ValidationError("secret: type the new value", field="secret")
    fingerprint = None
    if current.kind is CredentialKind.SSH_KEY:
        try:
            fingerprint = key_fingerprint(secret, passphrase)
        except ValueError as exc:
            raise ValidationError(f"secret: {exc}", field="secret") from None
    username = field(form, "username") if "username" in form else None
    info = store.replace_credential(
        current.id,
        Secret(secret),
        passphrase=Secret(passphrase) if passphrase else None,
        username=username,
        fingerprint=fingerprint,
    )
    security_store(request.app).record_audit(
        actor=caller(request).name,
        action="credential.replace",
        target=f"credential:{info.name}",
        address=client_address(request),
        details={"kind": info.kind.value},
    )
    return info.name


@router.post("/admin/credentials/{credential_id}/replace", response_class=HTMLResponse)
async def replace_credential(request: Request, credential_id: str) -> RedirectResponse:
    form = await form_data(request)
    name = await in_thread(_replace, request, credential_id, form)
    return notice_redirect("/admin/credentials", f"Credential {name} has a new value.")


@router.post("/admin/credentials/{credential_id}/delete", response_class=HTMLResponse)
async def delete_credential(request: Request, credential_id: str) -> RedirectResponse:
    info = await in_thread(api.credential_store(request.app).get_credential, credential_id)
    await in_thread(api.delete_credential, info.id, caller(request), request)
    return notice_redirect("/admin/credentials", f"Credential {info.name} deleted.")


# -- webhooks ------------------------------------------------------------------------


def _hooks(request: Request) -> WebhookService:
    service = web_context(request).webhooks
    if service is None:
        raise ConflictError("webhooks are not open yet")
    return service


def _webhooks_page(
    request: Request,
    *,
    done: str = "",
    problems: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "webhooks.html",
        status_code=status_code,
        hooks=_hooks(request).list_webhooks(),
        done=done,
        problems=problems or {},
        values=values or {},
    )


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks(request: Request, done: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    return _webhooks_page(request, done=checked_notice(request))


@router.post("/admin/webhooks", response_class=HTMLResponse)
async def create_webhook(request: Request) -> Any:
    form = await form_data(request)
    values = {"url": field(form, "url")}
    events = [e for e in form.get("events", []) if e] or ["*"]
    try:
        body = api_model(
            WebhookIn, {"url": values["url"], "secret": _raw(form, "secret"), "events": events}
        )
        hook = await in_thread(
            _hooks(request).create_webhook, body.url, body.secret, list(body.events)
        )
    except ValidationError as exc:
        problems = exc.problems or {"url": str(exc)}
        return _webhooks_page(request, problems=problems, values=values, status_code=422)
    return notice_redirect(f"/admin/webhooks/{hook.id}", "Webhook created.")


@router.get("/admin/webhooks/{webhook_id}", response_class=HTMLResponse)
def webhook(
    request: Request, webhook_id: str, done: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    service = _hooks(request)
    hooks = {h.id: h for h in service.list_webhooks()}
    if webhook_id not in hooks:
        raise NotFoundError(f"no webhook {webhook_id!r}")
    return page(
        request,
        "webhook.html",
        hook=hooks[webhook_id],
        deliveries=service.deliveries(webhook_id, limit=DELIVERIES),
        done=checked_notice(request),
    )


def _send_test(request: Request, webhook_id: str) -> None:
    _hooks(request).send_test(webhook_id)
    security_store(request.app).record_audit(
        actor=caller(request).name,
        action="webhook.test",
        target=f"webhook:{webhook_id}",
        address=client_address(request),
        details={},
    )


@router.post("/admin/webhooks/{webhook_id}/test", response_class=HTMLResponse)
async def test_webhook(request: Request, webhook_id: str) -> RedirectResponse:
    await in_thread(_send_test, request, webhook_id)
    return notice_redirect(
        f"/admin/webhooks/{webhook_id}", "A ping event was queued; it is listed below."
    )


@router.post("/admin/webhooks/{webhook_id}/delete", response_class=HTMLResponse)
async def delete_webhook(request: Request, webhook_id: str) -> RedirectResponse:
    await in_thread(_hooks(request).delete_webhook, webhook_id)
    return notice_redirect("/admin/webhooks", "Webhook deleted.")

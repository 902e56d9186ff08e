"""Hosts: the fleet with groups, labels, last contact and last result; add, edit,
delete, import an inventory (previewed before anything is written); one host's
recent runs (the workers are in ``pages_workers``).

Every change goes through the JSON API's own handlers
(:mod:`muster.server.hosts`), so the console checks exactly what the API
checks: the host name rule, shells, ``hosts.local`` for the server's own
machine, the right to log in with a credential. The form becomes the API's
request model; a refused value is shown beside the form with its field.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from muster.domain.hosts import TransportKind
from muster.errors import ConflictError, ValidationError
from muster.server import hosts as hosts_api
from muster.server.context import ServerContext
from muster.server.host_import import parse_import
from muster.server.schemas.common import MAX_OFFSET
from muster.server.schemas.hosts import HostIn, HostPatch, ImportIn
from muster.server.web.page_tools import (
    Form,
    api_model,
    caller,
    checked_notice,
    field,
    notice_redirect,
    words,
)
from muster.server.web.render import (
    HtmlErrorRoute,
    form_data,
    in_thread,
    page,
    web_context,
)
from muster.services.host_logins import require_login_permission
from muster.services.local_hosts import require_local_permission, written_local_hosts
from muster.store.base import HostRecord

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

RECENT = 25
PAGE = 200
#: Hosts listed in an import preview (the import itself takes them all).
PREVIEW_ROWS = 500
_FIELDS = ("name", "address", "port", "user", "transport", "platform", "shells", "groups",
           "labels", "key_file", "credential_ref")  # fmt: skip


@router.get("/hosts", response_class=HTMLResponse)
def list_hosts(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    group: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    done: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    store = web_context(request).store
    found, total = store.host_page(search=q, group=group, limit=PAGE, offset=offset)
    results = store.host_last_results([h.id for h in found.items])
    return page(
        request,
        "hosts.html",
        hosts=found.items,
        results=results,
        matched=found.total,
        total=total,
        offset=offset,
        page_size=PAGE,
        params={"q": q, "group": group},
        q=q,
        group=group,
        groups=store.fleet_facets().groups,
        done=checked_notice(request),
    )


# -- add and edit ------------------------------------------------------------------


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for word in words(text):
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise ValidationError(f"labels: {word!r} is not key=value", field="labels")
        labels[key] = value
    return labels


def _host_data(form: Form) -> dict[str, Any]:
    """The form as the API's host fields (empty optional fields left out)."""
    data: dict[str, Any] = {
        "name": field(form, "name"),
        "transport": field(form, "transport", "ssh"),
        "platform": field(form, "platform") or "linux",
        "shells": words(field(form, "shells")),
        "groups": words(field(form, "groups")),
        "labels": _labels(field(form, "labels")),
        "address": field(form, "address") or None,
        "user": field(form, "user") or None,
        "key_file": field(form, "key_file") or None,
        "credential_ref": field(form, "credential_ref") or None,
    }
    port = field(form, "port")
    data["port"] = port or 22
    return data


def _form_values(host: HostRecord | None, form: Form | None = None) -> dict[str, str]:
    if form is not None:
        return {k: field(form, k) for k in _FIELDS}
    if host is None:
        return {"transport": "ssh", "platform": "linux", "port": "22"}
    return {
        "name": host.name,
        "address": host.address or "",
        "port": str(host.port),
        "user": host.user or "",
        "transport": host.transport.value,
        "platform": host.platform,
        "shells": ", ".join(host.shells),
        "groups": ", ".join(host.groups),
        "labels": " ".join(f"{k}={v}" for k, v in host.labels.items()),
        "key_file": host.key_file or "",
        "credential_ref": host.credential_ref or "",
    }


def _editor(
    request: Request,
    host: HostRecord | None,
    values: dict[str, str],
    problems: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = web_context(request)
    credentials: list[str] = []
    lister = getattr(ctx.store, "list_credentials", None)
    if lister is not None:
        try:
            credentials = [c.name for c in lister()]
        except Exception:  # no vault key: the field stays free text
            credentials = []
    return page(
        request,
        "host_edit.html",
        status_code=status_code,
        host=host,
        values=values,
        problems=problems or {},
        transports=[t.value for t in TransportKind],
        credentials=credentials,
    )


@router.get("/hosts/new", response_class=HTMLResponse)
def new_host(request: Request) -> HTMLResponse:
    return _editor(request, None, _form_values(None))


@router.post("/hosts", response_class=HTMLResponse)
async def create_host(request: Request) -> Any:
    ctx = web_context(request)
    form = await form_data(request)
    try:
        body = api_model(HostIn, _host_data(form))
        created = await in_thread(hosts_api.create_host, body, ctx, caller(request))
    except (ValidationError, ConflictError) as exc:
        problems = getattr(exc, "problems", None) or {"name": str(exc)}
        return _editor(request, None, _form_values(None, form), problems, 422)
    return notice_redirect(f"/hosts/{quote(created.name)}", f"Host {created.name} added.")


@router.get("/hosts/import", response_class=HTMLResponse)
def import_form(request: Request) -> HTMLResponse:
    return page(request, "host_import.html", content="", fmt="auto", preview=None, problems={})


def _preview(ctx: ServerContext, request: Request, body: ImportIn) -> dict[str, Any]:
    who = caller(request)
    hosts = parse_import(body, ctx.settings)
    require_local_permission(who, written_local_hosts(ctx.store, hosts), doing="import")
    stored = {r.name: r.to_host() for r in ctx.store.list_hosts()}
    lookup = hosts_api.credential_lookup(ctx)
    require_login_permission(who, [(stored.get(h.name), h) for h in hosts], lookup)
    rows = [(h, stored.get(h.name)) for h in hosts]
    return {
        "rows": rows[:PREVIEW_ROWS],
        "total": len(rows),
        "new": sum(1 for _, old in rows if old is None),
        "changed": sum(1 for h, old in rows if old is not None and old != h),
        "same": sum(1 for h, old in rows if old is not None and old == h),
    }


def _import_body(form: Form) -> ImportIn:
    return api_model(
        ImportIn,
        {
            "content": form.get("content", [""])[0],
            "format": field(form, "format", "auto"),
            "update_existing": field(form, "update_existing") == "on",
        },
    )


@router.post("/hosts/import/preview", response_class=HTMLResponse)
async def import_preview(request: Request) -> HTMLResponse:
    """Parse and check the inventory, write nothing; the page shows what an import would do."""
    ctx = web_context(request)
    form = await form_data(request)
    content = form.get("content", [""])[0]
    fmt = field(form, "format", "auto")
    try:
        body = _import_body(form)
        preview = await in_thread(_preview, ctx, request, body)
    except ValidationError as exc:
        return page(
            request,
            "host_import.html",
            status_code=422,
            content=content,
            fmt=fmt,
            preview=None,
            problems=exc.problems or {"content": str(exc)},
        )
    return page(request, "host_import.html", content=content, fmt=fmt, preview=preview, problems={})


@router.post("/hosts/import", response_class=HTMLResponse)
async def import_apply(request: Request) -> RedirectResponse:
    ctx = web_context(request)
    form = await form_data(request)
    body = _import_body(form)
    out = await in_thread(hosts_api.import_hosts, body, ctx, caller(request), request)
    return notice_redirect(
        "/hosts", f"Imported {out.total} hosts: {len(out.created)} new, {len(out.updated)} updated."
    )


# -- one host ------------------------------------------------------------------------


@router.get("/hosts/{host}", response_class=HTMLResponse)
def show_host(
    request: Request, host: str, done: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    store = web_context(request).store
    record = store.get_host(host)
    runs = store.host_recent_runs(record.id, record.name, RECENT)
    return page(
        request,
        "host.html",
        host=record,
        shells=record.to_host().effective_shells,
        runs=runs,
        done=checked_notice(request),
    )


@router.get("/hosts/{host}/edit", response_class=HTMLResponse)
def edit_host(request: Request, host: str) -> HTMLResponse:
    record = web_context(request).store.get_host(host)
    return _editor(request, record, _form_values(record))


@router.post("/hosts/{host}", response_class=HTMLResponse)
async def update_host(request: Request, host: str) -> Any:
    ctx = web_context(request)
    record = await in_thread(ctx.store.get_host, host)
    form = await form_data(request)
    try:
        data = _host_data(form)
        body = api_model(HostPatch, data)
        changed = await in_thread(hosts_api.change_host, record.id, body, ctx, caller(request))
    except (ValidationError, ConflictError) as exc:
        problems = getattr(exc, "problems", None) or {"name": str(exc)}
        return _editor(request, record, _form_values(record, form), problems, 422)
    return notice_redirect(f"/hosts/{quote(changed.name)}", "Saved.")


@router.post("/hosts/{host}/delete", response_class=HTMLResponse)
async def delete_host(request: Request, host: str) -> RedirectResponse:
    ctx = web_context(request)
    record = await in_thread(ctx.store.get_host, host)
    await in_thread(hosts_api.delete_host, record.id, ctx, caller(request))
    return notice_redirect("/hosts", f"Host {record.name} deleted.")

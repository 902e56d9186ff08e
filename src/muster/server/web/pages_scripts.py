"""Console pages for the script library: list, view, edit, versions, diff, restore."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from muster.domain.scripts import Shell
from muster.errors import NotFoundError, ValidationError
from muster.server.actors import request_actor
from muster.server.limits import check_script
from muster.server.schemas.common import MAX_VERSION
from muster.server.web.diff import setting_changes, side_by_side
from muster.server.web.forms import ParamRow, ScriptForm, script_form, script_form_from_version
from muster.server.web.forms import to_version as form_to_version
from muster.server.web.render import HtmlErrorRoute, form_data, in_thread, page, web_context
from muster.store.base import ScriptRecord, Store

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

PARAM_TYPES = ("string", "integer", "float", "boolean", "secret", "choice")
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION)]
SHELLS = tuple(s.value for s in Shell)


@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/scripts", status_code=303)


@router.get("/scripts", response_class=HTMLResponse)
def list_scripts(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    tag: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    store = web_context(request).store
    found = store.list_scripts(search=q or None, tag=tag or None, limit=500)
    every = store.list_scripts(limit=1000)
    tags = sorted({t for s in every.items for t in s.tags})
    rows = [(s, store.get_version(s.id)) for s in found.items]
    return page(request, "scripts.html", rows=rows, total=found.total, q=q, tag=tag, tags=tags)


def _edit_page(
    request: Request,
    form: ScriptForm,
    *,
    script_id: str | None,
    problems: dict[str, str] | None = None,
    existing: ScriptRecord | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = list(form.params) or [ParamRow()]
    return page(
        request,
        "script_edit.html",
        status_code=status_code,
        form=form,
        rows=rows,
        script_id=script_id,
        problems=problems or {},
        existing=existing,
        shells=SHELLS,
        types=PARAM_TYPES,
    )


@router.get("/scripts/new", response_class=HTMLResponse)
def new_script(request: Request) -> HTMLResponse:
    return _edit_page(request, ScriptForm(), script_id=None)


def _same_name(store: Store, name: str) -> ScriptRecord | None:
    try:
        return store.get_script(name) if name else None
    except NotFoundError:
        return None


@router.post("/scripts", response_class=HTMLResponse)
async def save_script(request: Request) -> Response:
    """Create a script, or (from its edit form) save a new version of it.

    Creating never touches an existing script: a name already taken is refused
    with a link to that script, whose edit form is the way to a new version. A
    changed body is a new version, an identical one none.
    """
    store = web_context(request).store
    data = await form_data(request)
    form = script_form(data)
    script_id = (data.get("script_id") or [""])[-1] or None
    existing = await in_thread(_same_name, store, form.name)
    if script_id is None and existing is not None:
        taken = {"name": f"a script named {form.name!r} already exists"}
        return _edit_page(
            request, form, script_id=None, problems=taken, existing=existing, status_code=409
        )
    if script_id is not None and (existing is None or existing.id != script_id):
        # The edit form's name is read-only: a changed one would write another script.
        moved = {"name": "the name of a script cannot change here"}
        return _edit_page(request, form, script_id=script_id, problems=moved, status_code=422)
    try:
        content, tags = form_to_version(form)
        check_script(
            web_context(request).settings,
            content.body,
            [(p.name, p.default) for p in content.parameters],
            default_field="p{i}_default",
        )
    except ValidationError as exc:
        return _edit_page(
            request, form, script_id=script_id, problems=exc.problems, status_code=422
        )
    saved = await in_thread(store.save_script, content, description=form.description, tags=tags)
    # The checkbox asks for the script's approval rule; only approvals.manage turns it on.
    await in_thread(
        web_context(request).approvals.request_script_rule,
        request_actor(request),
        saved.script.id,
        content.requires_approval,
    )
    note = "saved" if saved.created else "unchanged"
    return RedirectResponse(
        f"/scripts/{saved.script.id}?{note}={saved.version.number}", status_code=303
    )


@router.get("/scripts/{script_id}", response_class=HTMLResponse)
def show_script(
    request: Request,
    script_id: str,
    saved: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    unchanged: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> HTMLResponse:
    store = web_context(request).store
    script = store.get_script(script_id)
    versions = sorted(store.list_versions(script.id), key=lambda v: v.number, reverse=True)
    return page(
        request,
        "script.html",
        script=script,
        version=versions[0],
        versions=versions,
        saved=saved,
        unchanged=unchanged,
        approval_required=bool(web_context(request).approvals.scripts_requiring([script.id])),
    )


@router.get("/scripts/{script_id}/edit", response_class=HTMLResponse)
def edit_script(request: Request, script_id: str) -> HTMLResponse:
    store = web_context(request).store
    script = store.get_script(script_id)
    version = store.get_version(script.id)
    form = script_form_from_version(script.name, version, script.description, script.tags)
    return _edit_page(request, form, script_id=script.id)


@router.get("/scripts/{script_id}/versions/{number}", response_class=HTMLResponse)
def show_version(request: Request, script_id: str, number: VersionPath) -> HTMLResponse:
    store = web_context(request).store
    script = store.get_script(script_id)
    version = store.get_version(script.id, number)
    return page(request, "version.html", script=script, version=version)


@router.post("/scripts/{script_id}/versions/{number}/restore", response_class=HTMLResponse)
async def restore_version(request: Request, script_id: str, number: VersionPath) -> Response:
    store = web_context(request).store
    script = await in_thread(store.get_script, script_id)
    saved = await in_thread(store.restore_version, script.id, number)
    await in_thread(
        web_context(request).approvals.request_script_rule,
        request_actor(request),
        script.id,
        saved.version.requires_approval,
    )
    note = "saved" if saved.created else "unchanged"
    return RedirectResponse(f"/scripts/{script.id}?{note}={saved.version.number}", status_code=303)


@router.get("/scripts/{script_id}/diff", response_class=HTMLResponse)
def diff_versions(
    request: Request,
    script_id: str,
    a: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    b: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> HTMLResponse:
    store = web_context(request).store
    script = store.get_script(script_id)
    latest = script.latest_version
    right_no = b or latest
    left_no = a or max(1, right_no - 1)
    left = store.get_version(script.id, left_no)
    right = store.get_version(script.id, right_no)
    rows = side_by_side(left.body, right.body)
    meta = setting_changes(left, right)
    return page(
        request,
        "diff.html",
        script=script,
        left=left,
        right=right,
        rows=rows,
        meta=meta,
        numbers=list(range(latest, 0, -1)),
        changed=sum(1 for r in rows if r.kind != "same"),
    )

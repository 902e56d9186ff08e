"""The execute form (generated from a version's parameters) and the live host count.

Values go through ``Submission.script``, the very service the API's execute
endpoint uses, so the form refuses exactly what the API refuses (and opens
the same approval request and audit record); the ``ParameterError.problems``
it raises are shown beside each field.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from muster.domain.durations import parse_duration
from muster.domain.params import ParameterType, coerce_values
from muster.domain.throttle import MAX_FORKS, Throttle
from muster.errors import PermissionDeniedError, ValidationError
from muster.server.actors import request_actor
from muster.server.context import ServerContext
from muster.server.limits import check_parameter_values
from muster.server.schemas.common import MAX_VERSION
from muster.server.web.forms import execute_values, form_int, host_refs
from muster.server.web.render import HtmlErrorRoute, form_data, in_thread, page, web_context
from muster.services.submission import resolve_hosts
from muster.store.base import FleetFacets, Store, VersionRecord

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

_NAMES_SHOWN = 50


def _picker(store: Store) -> FleetFacets:
    """Groups, labels and host names for the picker's suggestions."""
    return store.fleet_facets()


def _form_page(
    request: Request,
    version: VersionRecord,
    script_id: str,
    *,
    values: dict[str, str] | None = None,
    targets: str = "",
    pace: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    cleared: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = web_context(request)
    return page(
        request,
        "execute.html",
        status_code=status_code,
        script_id=script_id,
        version=version,
        values=values or {},
        targets=targets,
        pace=pace or dict.fromkeys(_PACE, ""),
        problems=problems or {},
        cleared=cleared or [],
        picker=_picker(ctx.store),
        approval_required=bool(ctx.approvals.scripts_requiring([script_id])),
    )


@router.get("/scripts/{script_id}/execute", response_class=HTMLResponse)
def execute_form(
    request: Request,
    script_id: str,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> HTMLResponse:
    store = web_context(request).store
    script = store.get_script(script_id)
    record = store.get_version(script.id, version)
    # Nothing is pre-selected: the server's own machine is never a default target.
    return _form_page(request, record, script.id)


def _problems_of(exc: ValidationError) -> dict[str, str]:
    problems = dict(exc.problems) or {exc.field or "form": exc.message}
    if "host_ids" in problems:
        problems["targets"] = problems.pop("host_ids")
    return problems


def _check_form(
    ctx: ServerContext,
    version: VersionRecord,
    raw: dict[str, object],
    targets: str,
    pace: dict[str, str],
) -> tuple[dict[str, str], Throttle | None, list[str]]:
    """Every problem of the form at once: parameters, pace and hosts are checked
    apart, so one bad field never hides another's problem."""
    problems: dict[str, str] = {}
    try:
        check_parameter_values(ctx.settings, raw, prefix="")
        coerce_values(version.domain().parameters, raw)
    except ValidationError as exc:
        problems.update(_problems_of(exc))
    throttle = None
    try:
        throttle = _throttle(pace)
    except ValidationError as exc:
        problems.update(_problems_of(exc))
    refs = host_refs(targets)
    if not refs:
        problems["targets"] = "choose at least one host"
    else:
        try:
            resolve_hosts(ctx.store, refs)
        except ValidationError as exc:
            problems.update(_problems_of(exc))
    return problems, throttle, refs


@router.post("/scripts/{script_id}/execute", response_class=HTMLResponse)
async def execute(request: Request, script_id: str) -> Response:
    ctx = web_context(request)
    data = await form_data(request)
    script = await in_thread(ctx.store.get_script, script_id)
    text = (data.get("version") or [""])[-1]
    number = form_int(text, field="version", low=1, high=MAX_VERSION) if text else None
    version = await in_thread(ctx.store.get_version, script.id, number)
    targets = (data.get("targets") or [""])[-1]
    pace = {name: (data.get(name) or [""])[-1].strip() for name in _PACE}
    raw = execute_values(version.parameters, data)
    secrets = {p.name for p in version.parameters if p.type is ParameterType.SECRET}
    shown = {name: str(value) for name, value in raw.items() if name not in secrets}

    def refused(problems: dict[str, str], status_code: int) -> HTMLResponse:
        # A secret is never sent back: say so beside each one that was typed.
        cleared = sorted(name for name in secrets if raw.get(name))
        return _form_page(
            request,
            version,
            script.id,
            values=shown,
            targets=targets,
            pace=pace,
            problems=problems,
            cleared=cleared,
            status_code=status_code,
        )

    problems, throttle, refs = await in_thread(_check_form, ctx, version, raw, targets, pace)
    if problems or throttle is None:
        return refused(problems, 422)
    try:
        execution = await in_thread(
            ctx.submission.script, request_actor(request), version, refs, raw, throttle=throttle
        )
    except PermissionDeniedError as exc:
        # Targets that reach the server's own machine without hosts.local.
        return refused({"targets": str(exc)}, 403)
    except ValidationError as exc:
        return refused(_problems_of(exc), 422)
    return RedirectResponse(f"/executions/{execution.id}", status_code=303)


_PACE = ("forks", "per_group", "delay")


def _throttle(pace: dict[str, str]) -> Throttle:
    """The form's pace fields; every bad one is reported at once, by name."""
    problems: dict[str, str] = {}
    limits: dict[str, int | None] = {}
    for name in ("forks", "per_group"):
        try:
            limits[name] = (
                form_int(pace[name], field=name, low=1, high=MAX_FORKS) if pace[name] else None
            )
        except ValidationError as exc:
            problems[name] = exc.problems.get(name, exc.message)
    delay = 0.0
    if pace["delay"]:
        try:
            delay = parse_duration(pace["delay"], field="delay")
            Throttle(delay=delay)
        except ValidationError as exc:
            problems["delay"] = exc.message
    if problems:
        raise ValidationError(next(iter(problems.values())), problems=problems)
    return Throttle(limits["forks"], limits["per_group"], delay)


@router.get("/ui/hosts/resolve")
def resolve(request: Request, q: Annotated[str, Query(max_length=4000)] = "") -> JSONResponse:
    """How many hosts a picker text selects, and their first names (or the problem)."""
    store = web_context(request).store
    refs = host_refs(q)
    if not refs:
        return JSONResponse({"count": 0, "names": [], "problem": None})
    try:
        hosts = resolve_hosts(store, refs)
    except ValidationError as exc:
        return JSONResponse({"count": 0, "names": [], "problem": exc.message})
    names = [h.name for h in hosts]
    return JSONResponse({"count": len(names), "names": names[:_NAMES_SHOWN], "problem": None})

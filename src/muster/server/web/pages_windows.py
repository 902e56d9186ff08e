"""Maintenance windows in the console: a week calendar of windows and schedule firings,
the windows with when each next opens, the forecast (and what will not fit),
and forms to add or delete a window and to run one execution outside its windows.

Everything goes through :class:`~muster.services.windows.WindowService`, as the
API does: the same validation (problems shown beside each field), the same
audit records, the same permissions (``windows.manage``, ``windows.override``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from muster.domain.windows import Forecast, MaintenanceWindow, zone
from muster.errors import NotFoundError, ValidationError
from muster.server.actors import request_actor
from muster.server.web.render import HtmlErrorRoute, form_data, in_thread, page, web_context
from muster.services.windows import CalendarEntry, WindowService, window_from_fields

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

_FIELDS = (
    "name",
    "kind",
    "scope",
    "target",
    "timezone",
    "spec",
    "starts_at",
    "ends_at",
    "close_policy",
)
_DEFAULTS = {"kind": "recurring", "scope": "group", "timezone": "UTC", "close_policy": "finish"}
_MAX_WEEKS = 52
#: Firings of one schedule drawn one by one per day; more become one band.
_FIRINGS_SHOWN = 4
#: Forecast rows listed (all of them are counted in the summary).
_FORECAST_ROWS = 40


@dataclass(frozen=True, slots=True)
class _Block:
    """One entry drawn in a day column: its place in quarter hours of the day (0-96;
    CSS classes, as the console's Content-Security-Policy forbids inline styles)."""

    kind: str
    title: str
    label: str
    top: int
    height: int


@dataclass(frozen=True, slots=True)
class _Day:
    title: str
    blocks: tuple[_Block, ...]


def _service(request: Request) -> WindowService:
    store = web_context(request).store
    return WindowService(store, store, schedules=store)


def _week(
    service: WindowService, now: dt.datetime, week: int, tz: ZoneInfo
) -> tuple[list[_Day], dt.date, Forecast]:
    """The seven days (Monday first, in ``tz``) of the week ``week`` weeks from now."""
    today = now.astimezone(tz).date()
    monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=week)
    starts = [
        dt.datetime.combine(monday + dt.timedelta(days=i), dt.time(), tz).astimezone(dt.UTC)
        for i in range(8)
    ]
    # Firings still to come (past ones are in the schedules' own history).
    planned = service.planned(max(starts[0], now), starts[7]) if starts[7] > now else []
    entries = service.calendar(starts[0], starts[7], planned)
    days: list[_Day] = []
    for i in range(7):
        a, b = starts[i], starts[i + 1]
        span = (b - a).total_seconds()  # 23 or 25 hours on DST days
        blocks: list[_Block] = []
        firings: dict[str, list[CalendarEntry]] = {}
        for e in entries:
            if e.kind == "firing":
                if a <= e.start < b:
                    firings.setdefault(e.title, []).append(e)
                continue
            blocks.extend(_place(e, a, b, span, tz))
        for title, fired in firings.items():
            if len(fired) <= _FIRINGS_SHOWN:
                for e in fired:
                    blocks.extend(_place(e, a, b, span, tz))
                continue
            # Many a day (an hourly cron): one band from the first to the last.
            first, last = fired[0].start, fired[-1].start
            band = CalendarEntry("firings", f"{title}: {len(fired)} firings", first, last)
            blocks.extend(_place(band, a, b, span, tz))
        local = a.astimezone(tz)
        days.append(_Day(f"{local:%a %d %b}", tuple(blocks)))
    fc = service.forecast(7, now) if week == 0 else Forecast(starts[0], starts[7], ())
    return days, monday, fc


def _place(
    e: CalendarEntry, a: dt.datetime, b: dt.datetime, span: float, tz: ZoneInfo
) -> list[_Block]:
    end = e.end or e.start
    if end < a or e.start >= b or (e.end is not None and end == a):
        return []
    lo, hi = max(e.start, a), min(end, b)
    top = min(int((lo - a).total_seconds() / span * 96), 95)
    if e.end is None:  # a firing: a marker
        when = f"{e.start.astimezone(tz):%H:%M}"
        return [_Block("firing", e.title, f"{when} {e.title}", top, 0)]
    height = min(max(round((hi - lo).total_seconds() / span * 96), 1), 96 - top)
    label = f"{e.start.astimezone(tz):%a %H:%M} to {end.astimezone(tz):%a %H:%M} {e.title}"
    return [_Block(e.kind, e.title, label, top, height)]


def _summary(fc: Forecast) -> list[dict[str, Any]]:
    """Per schedule: host runs that run on time, deferred, and that will not fit."""
    out: dict[str, dict[str, Any]] = {}
    for e in fc.entries:
        row = out.setdefault(
            e.source, {"source": e.source, "runs": 0, "deferred": 0, "will_not_fit": 0}
        )
        row[e.status.value] += 1
    return list(out.values())


def _rows(fc: Forecast) -> list[Any]:
    """The host runs listed: those that will not fit first, then by time; capped."""
    misfits = list(fc.will_not_fit)
    rest = [e for e in fc.entries if e not in set(misfits)]
    return (misfits + rest)[:_FORECAST_ROWS]


def _render(
    request: Request,
    *,
    week: int = 0,
    tz_name: str = "UTC",
    form: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    service = _service(request)
    ctx = web_context(request)
    now = ctx.store.clock()
    try:
        tz = zone(tz_name, field_name="tz")
    except ValidationError:
        tz, tz_name = ZoneInfo("UTC"), "UTC"
    days, monday, fc = _week(service, now, week, tz)
    windows: list[MaintenanceWindow] = service.windows()
    next_open: dict[str, dt.datetime | None] = {}
    for w in windows:
        found = next(iter(w.occurrences(now, now + dt.timedelta(days=366))), None)
        next_open[w.id] = found[0] if found else None
    return page(
        request,
        "windows.html",
        status_code=status_code,
        days=days,
        monday=monday,
        week=week,
        tz=tz_name,
        windows=windows,
        next_open=next_open,
        forecast=fc,
        summary=_summary(fc),
        rows=_rows(fc),
        form={**_DEFAULTS, **(form or {})},
        problems=problems or {},
        notice=notice,
    )


@router.get("/windows", response_class=HTMLResponse)
def windows_page(
    request: Request,
    week: Annotated[int, Query(ge=-_MAX_WEEKS, le=_MAX_WEEKS)] = 0,
    tz: Annotated[str, Query(max_length=64)] = "UTC",
) -> HTMLResponse:
    return _render(request, week=week, tz_name=tz)


@router.post("/windows", response_class=HTMLResponse)
async def add_window(request: Request) -> Response:
    data = await form_data(request)
    form = {k: (data.get(k) or [""])[-1].strip() for k in _FIELDS}
    fields: dict[str, Any] = {k: v for k, v in form.items() if v}
    try:
        window = window_from_fields(**fields)
        await in_thread(_service(request).create, request_actor(request), window)
    except ValidationError as exc:
        problems = dict(exc.problems) or {exc.field or "form": exc.message}
        shown: HTMLResponse = await in_thread(
            lambda: _render(request, form=form, problems=problems, status_code=422)
        )
        return shown
    return RedirectResponse("/windows", status_code=303)


@router.post("/windows/{window_id}/delete", response_class=HTMLResponse)
async def delete_window(request: Request, window_id: str) -> Response:
    await in_thread(_service(request).delete, request_actor(request), window_id)
    return RedirectResponse("/windows", status_code=303)


@router.post("/windows/override", response_class=HTMLResponse)
async def override(request: Request) -> Response:
    data = await form_data(request)
    execution_id = (data.get("execution_id") or [""])[-1].strip()
    reason = (data.get("reason") or [""])[-1].strip()[:500]
    actor = request_actor(request)
    if not execution_id or actor is None:
        problems = {"execution_id": "name the execution to run now"}
        refused: HTMLResponse = await in_thread(
            lambda: _render(request, problems=problems, status_code=422)
        )
        return refused
    try:
        released = await in_thread(_service(request).override, actor, execution_id, reason)
    except NotFoundError:
        missing = {"execution_id": f"no execution {execution_id}"}
        unknown: HTMLResponse = await in_thread(
            lambda: _render(request, problems=missing, status_code=404)
        )
        return unknown
    back = (data.get("next") or [""])[-1]
    if back == f"/executions/{execution_id}":  # only back to the execution it came from
        return RedirectResponse(back, status_code=303)
    notice = f"execution {execution_id}: {released} host run(s) released outside their windows"
    done: HTMLResponse = await in_thread(lambda: _render(request, notice=notice))
    return done

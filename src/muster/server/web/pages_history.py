"""History: executions filtered by state, script, host and time range, page by page."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from muster.domain.states import ExecutionStatus
from muster.errors import NotFoundError
from muster.server.schemas.common import MAX_OFFSET
from muster.server.web.render import HtmlErrorRoute, page, web_context
from muster.store.base import ExecutionRecord

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

PAGE = 50


def _time(text: str) -> dt.datetime | None:
    """A ``datetime-local`` value (read as UTC) or an ISO time with a zone."""
    if not text:
        return None
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@router.get("/history", response_class=HTMLResponse)
def history(
    request: Request,
    status: Annotated[str, Query(max_length=32)] = "",
    script: Annotated[str, Query(max_length=128)] = "",
    host: Annotated[str, Query(max_length=253)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    store = web_context(request).store
    problems: dict[str, str] = {}
    chosen_status = None
    if status:
        try:
            chosen_status = ExecutionStatus(status)
        except ValueError:
            problems["status"] = f"unknown state {status!r}"
    script_id = host_id = None
    scripts = store.list_scripts(limit=1000).items
    if script:
        match = [s for s in scripts if script in (s.id, s.name)]
        if match:
            script_id = match[0].id
        else:
            problems["script"] = f"no script named {script!r}"
    if host:
        try:
            host_id = store.get_host(host).id
        except NotFoundError:
            problems["host"] = f"no host named {host!r}"
    times: dict[str, dt.datetime | None] = {}
    for name, text in (("since", since), ("until", until)):
        try:
            times[name] = _time(text)
        except ValueError:
            problems[name] = "not a date and time"
    items: tuple[ExecutionRecord, ...] = ()
    total = 0
    if not problems:
        found = store.list_executions(
            status=chosen_status,
            script_id=script_id,
            host_id=host_id,
            since=times.get("since"),
            until=times.get("until"),
            limit=PAGE,
            offset=offset,
        )
        items, total = found.items, found.total
    names = {s.id: s.name for s in scripts}
    params = {"status": status, "script": script, "host": host, "since": since, "until": until}
    return page(
        request,
        "history.html",
        items=items,
        total=total,
        offset=offset,
        page_size=PAGE,
        params=params,
        problems=problems,
        statuses=[s.value for s in ExecutionStatus],
        scripts=sorted(names.values()),
        script_names=names,
    )

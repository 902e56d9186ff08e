"""History: executions filtered by state, script, host and time range, page by page.

The script and host filters take what a person remembers: a whole or partial
script name; a host name, a group, or part of a host's name. Each row says
what ran, where (the first hosts) and how long it took.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from muster.domain.states import ExecutionStatus
from muster.errors import NotFoundError
from muster.server.schemas.common import MAX_OFFSET
from muster.server.web.render import HtmlErrorRoute, page, web_context
from muster.store.base import ExecutionRecord, ScriptRecord, Store

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

PAGE = 50
#: At most this many hosts stand for a partial host name or a group.
_MATCHED = 5000
_SHOWN_HOSTS = 3


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
    script_ids: list[str] | None = None
    host_keys: list[str] | None = None
    scripts = store.list_scripts(limit=1000).items
    if script:
        script_ids = _scripts_matching(scripts, script)
        if not script_ids:
            problems["script"] = f"no script name contains {script!r}"
    if host:
        host_keys = _hosts_matching(store, host)
        if not host_keys:
            problems["host"] = f"no host or group named {host!r}, and no host name contains it"
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
            script_id=script_ids,
            host_id=host_keys,
            since=times.get("since"),
            until=times.get("until"),
            limit=PAGE,
            offset=offset,
        )
        items, total = found.items, found.total
    where = {e.id: _first_hosts(store, e.id) for e in items}
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
        where=where,
    )


def _scripts_matching(scripts: Sequence[ScriptRecord], text: str) -> list[str]:
    """An exact id or name wins; otherwise every script whose name contains ``text``."""
    exact = [s.id for s in scripts if text in (s.id, s.name)]
    if exact:
        return exact
    needle = text.casefold()
    return [s.id for s in scripts if needle in s.name.casefold()]


def _hosts_matching(store: Store, text: str) -> list[str]:
    """A host's name (kept on its runs even after it is deleted), a group's hosts,
    or the hosts whose name contains ``text``."""
    try:
        return [store.get_host(text).name]
    except NotFoundError:
        pass
    if text in store.fleet_facets().groups:
        found, _ = store.host_page(group=text, limit=_MATCHED)
    else:
        found, _ = store.host_page(search=text, limit=_MATCHED)
        needle = text.casefold()
        return [h.name for h in found.items if needle in h.name.casefold()]
    return [h.name for h in found.items]


def _first_hosts(store: Store, execution_id: str) -> tuple[list[str], int]:
    """The first few hosts of an execution and how many it has."""
    cells = store.grid_page(execution_id, limit=_SHOWN_HOSTS)
    return [c.host_name for c in cells.items], cells.total

"""Hosts: the fleet with groups, labels, shells and last contact; one host's recent runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from muster.server.schemas.common import MAX_OFFSET
from muster.server.web.render import HtmlErrorRoute, page, web_context

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

RECENT = 25
PAGE = 200


@router.get("/hosts", response_class=HTMLResponse)
def list_hosts(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    group: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    store = web_context(request).store
    found, total = store.host_page(search=q, group=group, limit=PAGE, offset=offset)
    return page(
        request,
        "hosts.html",
        hosts=found.items,
        matched=found.total,
        total=total,
        offset=offset,
        page_size=PAGE,
        params={"q": q, "group": group},
        q=q,
        group=group,
        groups=store.fleet_facets().groups,
    )


@router.get("/hosts/{host}", response_class=HTMLResponse)
def show_host(request: Request, host: str) -> HTMLResponse:
    store = web_context(request).store
    record = store.get_host(host)
    runs = store.host_recent_runs(record.id, record.name, RECENT)
    return page(
        request, "host.html", host=record, shells=record.to_host().effective_shells, runs=runs
    )

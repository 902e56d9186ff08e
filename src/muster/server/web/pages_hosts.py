"""Hosts: the fleet with groups, labels, shells and last contact; one host's recent runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from muster.server.web.render import HtmlErrorRoute, page, web_context
from muster.store.console_reads import fleet_facets, host_page, host_recent_runs

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

RECENT = 25
PAGE = 200


@router.get("/hosts", response_class=HTMLResponse)
def list_hosts(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    group: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    engine = web_context(request).store.engine  # type: ignore[attr-defined]
    found, total = host_page(engine, search=q, group=group, limit=PAGE, offset=offset)
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
        groups=fleet_facets(engine).groups,
    )


@router.get("/hosts/{host}", response_class=HTMLResponse)
def show_host(request: Request, host: str) -> HTMLResponse:
    store = web_context(request).store
    record = store.get_host(host)
    runs = host_recent_runs(store.engine, record.id, record.name, RECENT)  # type: ignore[attr-defined]
    return page(
        request, "host.html", host=record, shells=record.to_host().effective_shells, runs=runs
    )

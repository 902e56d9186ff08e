"""Hosts: the fleet with groups, labels, shells and last contact; one host's recent runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from muster.server.web.render import HtmlErrorRoute, page, web_context
from muster.store.console_reads import host_recent_runs

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

RECENT = 25


@router.get("/hosts", response_class=HTMLResponse)
def list_hosts(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    group: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    store = web_context(request).store
    every = store.list_hosts()
    groups = sorted({g for h in every for g in h.groups})
    needle = q.lower()
    hosts = [
        h
        for h in every
        if (not group or group in h.groups)
        and (
            not needle
            or needle in h.name.lower()
            or needle in (h.address or "").lower()
            or any(needle in f"{k}={v}".lower() for k, v in h.labels.items())
        )
    ]
    return page(
        request, "hosts.html", hosts=hosts, total=len(every), q=q, group=group, groups=groups
    )


@router.get("/hosts/{host}", response_class=HTMLResponse)
def show_host(request: Request, host: str) -> HTMLResponse:
    store = web_context(request).store
    record = store.get_host(host)
    runs = host_recent_runs(store.engine, record.id, record.name, RECENT)  # type: ignore[attr-defined]
    return page(
        request, "host.html", host=record, shells=record.to_host().effective_shells, runs=runs
    )

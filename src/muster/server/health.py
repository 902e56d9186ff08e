"""``/health`` and ``/metrics`` (Prometheus text); workers are in ``server/workers.py``."""

from __future__ import annotations

import datetime as dt
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from muster.domain.states import ExecutionStatus, HostRunState
from muster.server.context import ServerContext, get_context
from muster.server.metrics import render_prometheus

__all__ = ["muster_version", "router"]

router = APIRouter(tags=["operations"])
Ctx = Annotated[ServerContext, Depends(get_context)]


def muster_version() -> str:
    try:
        return version("muster")
    except PackageNotFoundError:
        return "0+unknown"


@router.get("/health")
def health(ctx: Ctx) -> JSONResponse:
    """200 when the database answers and the embedded worker (if any) runs; else 503."""
    db = ctx.store.ping()
    worker = ctx.worker
    worker_alive = worker.alive if worker is not None else None
    healthy = db and worker_alive is not False
    body = {
        "status": "ok" if healthy else "degraded",
        "database": "ok" if db else "unavailable",
        "worker": (
            "disabled"
            if worker is None
            else ("draining" if worker.draining else "alive")
            if worker.alive
            else "dead"
        ),
        "version": muster_version(),
        "started_at": ctx.started_at.isoformat(),
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(ctx: Ctx) -> PlainTextResponse:
    worker = ctx.worker
    text = render_prometheus(
        ctx.store.read_counts(),
        statuses=tuple(s.value for s in ExecutionStatus),
        states=tuple(s.value for s in HostRunState),
        workers=1 if worker is not None and worker.alive else 0,
        draining=bool(worker is not None and worker.draining),
        uptime=(dt.datetime.now(dt.UTC) - ctx.started_at).total_seconds(),
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

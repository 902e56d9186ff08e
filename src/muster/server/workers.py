"""``/api/v1/workers``: every worker process of the fleet; drain and resume any of them.

Listing needs ``jobs.view``; draining and resuming need ``admin`` and are
audited by :class:`~muster.services.workers.WorkerService`. A drain is
written to the store and followed by the worker at its next heartbeat,
wherever it runs; this server's own worker follows at once. The old
``POST /api/v1/workers/drain`` and ``/resume`` (no id) still act on this
server's own worker and answer as they did.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from muster.errors import ConflictError
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, WorkerControl, get_context
from muster.services.workers import WorkerService, WorkerView

__all__ = ["router", "worker_json", "worker_service"]

router = APIRouter(prefix="/api/v1/workers", tags=["workers"])
Ctx = Annotated[ServerContext, Depends(get_context)]


def worker_service(ctx: ServerContext) -> WorkerService:
    return WorkerService(ctx.store, ctx.store, ctx.store.clock)


def worker_json(view: WorkerView, own: WorkerControl | None = None) -> dict[str, Any]:
    """One worker; this server's own adds what only its process knows (``completed``...)."""
    r = view.record
    out: dict[str, Any] = {
        "id": r.id,
        "hostname": r.hostname,
        "pid": r.pid,
        "state": view.state.value,
        "reported_state": r.state.value,
        "started_at": r.started_at,
        "last_heartbeat": r.last_heartbeat,
        "lease_seconds": r.lease_seconds,
        "stopped_at": r.stopped_at,
        "runs_held": r.runs_held,
        "draining": r.drain_requested,
        "drain_requested_at": r.drain_requested_at,
        "drain_requested_by": r.drain_requested_by,
        "embedded": False,
    }
    if own is not None and own.worker_id == r.id:
        out.update(own.describe(), embedded=True)
        out["id"] = r.id
    return out


def _follow(ctx: ServerContext, view: WorkerView) -> None:
    """This server's own worker follows a drain or resume at once, not at its heartbeat."""
    if ctx.worker is not None and ctx.worker.worker_id == view.id:
        ctx.worker.apply_drain(view.record.drain_requested)


@router.get("")
def list_workers(ctx: Ctx) -> dict[str, Any]:
    """Every worker ever registered: this server's own first, then newest heartbeat first."""
    own = ctx.worker
    views = worker_service(ctx).workers()
    views.sort(key=lambda v: own is None or v.id != own.worker_id)
    return {"items": [worker_json(v, own) for v in views]}


def _own(ctx: ServerContext) -> WorkerControl:
    if ctx.worker is None:
        raise ConflictError("this server runs no embedded worker")
    return ctx.worker


@router.post("/drain")
def drain_own(ctx: Ctx, who: CurrentActor) -> dict[str, Any]:
    """This server's own worker stops claiming; runs in flight finish (kept for old clients)."""
    own = _own(ctx)
    _follow(ctx, worker_service(ctx).drain(who, own.worker_id))
    return dict(own.describe())


@router.post("/resume")
def resume_own(ctx: Ctx, who: CurrentActor) -> dict[str, Any]:
    own = _own(ctx)
    _follow(ctx, worker_service(ctx).resume(who, own.worker_id))
    return dict(own.describe())


@router.get("/{worker_id}")
def get_worker(worker_id: str, ctx: Ctx) -> dict[str, Any]:
    return worker_json(worker_service(ctx).get(worker_id), ctx.worker)


@router.post("/{worker_id}/drain")
def drain(worker_id: str, ctx: Ctx, who: CurrentActor) -> dict[str, Any]:
    """Ask one worker to claim nothing new; it finishes what it holds, then is ``drained``."""
    view = worker_service(ctx).drain(who, worker_id)
    _follow(ctx, view)
    return worker_json(view, ctx.worker)


@router.post("/{worker_id}/resume")
def resume(worker_id: str, ctx: Ctx, who: CurrentActor) -> dict[str, Any]:
    """Withdraw a drain: the worker claims again at its next heartbeat."""
    view = worker_service(ctx).resume(who, worker_id)
    _follow(ctx, view)
    return worker_json(view, ctx.worker)

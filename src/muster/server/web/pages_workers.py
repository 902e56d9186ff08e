"""Workers (in the Hosts area): every worker process of the fleet, drained and resumed.

The page lists what the store knows of each worker (host, pid, state, last
heartbeat, runs held); a worker whose heartbeat is older than its lease is
shown ``lost``, never dropped. Drain and Resume go through
:class:`~muster.services.workers.WorkerService`, as the API's do: admin
only, audited, followed by the worker at its next heartbeat (this server's
own worker at once).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from muster.errors import AuthenticationError
from muster.server.actors import request_actor
from muster.server.web.page_tools import checked_notice, notice_redirect
from muster.server.web.render import HtmlErrorRoute, page, web_context
from muster.server.workers import drain as api_drain
from muster.server.workers import resume as api_resume
from muster.server.workers import worker_service
from muster.services.actor import Actor

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)


@router.get("/workers", response_class=HTMLResponse)
def workers(request: Request, done: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    ctx = web_context(request)
    views = worker_service(ctx).workers()
    own = ctx.worker.worker_id if ctx.worker is not None else None
    return page(
        request,
        "workers.html",
        workers=views,
        own=own,
        now=ctx.store.clock(),
        done=checked_notice(request),
    )


def _actor(request: Request) -> Actor:
    who = request_actor(request)
    if who is None:
        raise AuthenticationError("authentication required")
    return who


@router.post("/workers/{worker_id}/drain", response_class=HTMLResponse)
def drain(request: Request, worker_id: str) -> RedirectResponse:
    out = api_drain(worker_id, web_context(request), _actor(request))
    return notice_redirect(
        "/workers",
        f"Worker {worker_id} claims nothing new; it finishes its {out['runs_held']} runs held.",
    )


@router.post("/workers/{worker_id}/resume", response_class=HTMLResponse)
def resume(request: Request, worker_id: str) -> RedirectResponse:
    api_resume(worker_id, web_context(request), _actor(request))
    return notice_redirect("/workers", f"Worker {worker_id} takes work again.")

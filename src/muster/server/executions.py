"""``/api/v1/automation/executions``: read, cancel, retry, delete, download logs.

Seed 001's table: cancel while anything is unfinished, retry failed / timed
out / lost hosts as a new attempt, delete only a finished execution (409
otherwise).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse

from muster.domain.states import ExecutionStatus
from muster.errors import ConflictError, NotFoundError, ValidationError
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, get_context
from muster.server.header_values import attachment
from muster.server.schemas.common import MAX_OFFSET, narrowed
from muster.server.schemas.executions import ExecutionList, ExecutionOut, ExecutionSummaryOut
from muster.server.views import execution_out
from muster.store.base import HostRunRecord, Store

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/automation/executions", tags=["executions"])
Ctx = Annotated[ServerContext, Depends(get_context)]


@router.get("", response_model=ExecutionList)
def list_executions(
    ctx: Ctx,
    status: ExecutionStatus | None = None,
    script_id: str | None = None,
    host: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ExecutionList:
    host_id = None
    if host:
        try:
            host_id = ctx.store.get_host(host).id
        except NotFoundError as exc:
            raise ValidationError(f"unknown host {host!r}", field="host") from exc
    if script_id:
        try:
            script_id = ctx.store.get_script(script_id).id
        except NotFoundError as exc:
            raise ValidationError(f"unknown script {script_id!r}", field="script_id") from exc
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(f"{name} needs a time zone (e.g. Z or +00:00)", field=name)
    page = ctx.store.list_executions(
        status=status,
        script_id=script_id,
        host_id=host_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return ExecutionList(
        items=[narrowed(ExecutionSummaryOut, execution_out(e)) for e in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{execution_id}", response_model=ExecutionOut)
def get_execution(execution_id: str, ctx: Ctx) -> ExecutionOut:
    return execution_out(ctx.store.get_execution(execution_id))


@router.post("/{execution_id}/cancel", response_model=ExecutionOut)
def cancel_execution(execution_id: str, ctx: Ctx) -> ExecutionOut:
    """Unstarted hosts become cancelled at once; running ones are killed by their worker."""
    current = ctx.store.get_execution(execution_id)
    if current.status.terminal:
        raise ConflictError(f"execution {execution_id} already ended ({current.status.value})")
    ctx.store.cancel_execution(execution_id)
    return execution_out(ctx.store.get_execution(execution_id))


@router.post("/{execution_id}/retry", response_model=ExecutionOut)
def retry_execution(execution_id: str, ctx: Ctx, who: CurrentActor) -> ExecutionOut:
    """Queue a new attempt (counter kept) for every failed, timed-out or lost host;
    it waits for a new approval when the rules say retries need one."""
    ctx.approvals.retry(who, execution_id)
    return execution_out(ctx.store.get_execution(execution_id))


@router.delete("/{execution_id}", status_code=204)
def delete_execution(execution_id: str, ctx: Ctx) -> Response:
    current = ctx.store.get_execution(execution_id)
    if not current.status.terminal:
        raise ConflictError(
            f"execution {execution_id} is {current.status.value}; cancel it before deleting"
        )
    ctx.store.delete_execution(execution_id)
    return Response(status_code=204)


def _run_for(store: Store, execution_id: str, host: str) -> HostRunRecord:
    """The newest attempt on ``host`` (name, host id or host-run id)."""
    runs = [
        r
        for r in store.get_execution(execution_id).host_runs
        if host in (r.host_name, r.host_id, r.id)
    ]
    if not runs:
        raise NotFoundError(f"execution {execution_id} has no host {host!r}")
    return max(runs, key=lambda r: r.attempt)


@router.get(
    "/{execution_id}/hosts/{host}/log",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
def download_log(
    execution_id: str,
    host: str,
    ctx: Ctx,
    stream: Literal["stdout", "stderr", "all"] = "stdout",
) -> StreamingResponse:
    """A host's whole stored output, streamed chunk by chunk (memory stays flat)."""
    run = _run_for(ctx.store, execution_id, host)
    store = ctx.store

    def body() -> Iterator[bytes]:
        for chunk in store.iter_output(run.id, None if stream == "all" else stream):
            yield chunk.data.encode("utf-8")
        truncated = (
            run.stdout_truncated or run.stderr_truncated
            if stream == "all"
            else getattr(run, f"{stream}_truncated")
        )
        if truncated:
            yield b"\n[muster: output truncated at the per-host storage cap]\n"

    filename = f"{execution_id}-{run.host_name}-{stream}.log"
    return StreamingResponse(
        body(),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": attachment(filename)},
    )

"""``GET /api/v1/automation/executions/{id}/stream``: live output as Server-Sent Events.

Events: ``output`` (host, stream, data), ``state`` (host, state, exit_code,
attempt), ``event`` (a ``@@{json}`` stdout line), ``end`` (final status).
Every event carries ``id:``, the id of the last output chunk sent, which only
grows; a client reconnecting with ``Last-Event-ID`` gets every chunk after it
exactly once, then the current state of each host. The reading, pacing and
waking is :func:`muster.server.output_follow.follow_output`, shared with the
console's host panel; this module only writes it in this stream's shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from muster.errors import ValidationError
from muster.server.context import ServerContext
from muster.server.header_values import parse_event_id
from muster.server.output_follow import (
    End,
    EndReason,
    Event,
    KeepAlive,
    Output,
    Snapshot,
    follow_output,
)
from muster.server.schemas.common import MAX_EVENT_ID
from muster.server.sse import sse
from muster.store.base import ExecutionRecord, HostRunRecord

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/automation/executions", tags=["executions"])


def _state(run: HostRunRecord) -> dict[str, object]:
    return {
        "host": run.host_name,
        "host_run_id": run.id,
        "state": run.state.value,
        "exit_code": run.exit_code,
        "attempt": run.attempt,
        "reason": run.reason,
        "waiting_reason": run.waiting_reason,
    }


async def _events(
    ctx: ServerContext, execution_id: str, cursor: int, request: Request
) -> AsyncIterator[bytes]:
    """The shared output loop in this stream's shape; a host's state is sent when
    its state or attempt changed since the last one sent."""
    seen: dict[str, tuple[str, int]] = {}
    yield b": muster live output\n\n"
    items = follow_output(
        ctx.store,
        ctx.live,
        execution_id,
        after=cursor,
        stopping=ctx.stopping,
        disconnected=request.is_disconnected,
    )
    # Closed with the response, so the notifier subscription ends with it.
    async with aclosing(items):
        async for item in items:
            match item:
                case Output():
                    body = {"host": item.host, "stream": item.stream, "data": item.data}
                    yield sse("output", body, item.cursor)
                case Event():
                    yield sse("event", {"host": item.host, "data": item.data}, item.cursor)
                case Snapshot():
                    for run in item.runs:
                        key = (run.state.value, run.attempt)
                        if seen.get(run.id) != key:
                            seen[run.id] = key
                            yield sse("state", _state(run), item.cursor)
                case KeepAlive():
                    yield b": keep-alive\n\n"
                case End(why=EndReason.FINISHED, execution=ExecutionRecord() as record):
                    end = {"status": record.status.value, "counts": dict(record.counts)}
                    yield sse("end", end, item.cursor)
                case End():
                    yield sse("end", {"status": item.why.value}, item.cursor)


@router.get("/{execution_id}/stream", response_class=StreamingResponse)
async def stream_execution(
    execution_id: str,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_EVENT_ID, description="Resume after this event id")
    ] = None,
) -> StreamingResponse:
    ctx: ServerContext = request.app.state.muster
    await run_in_threadpool(ctx.store.get_execution, execution_id)  # 404 before streaming
    cursor = after or 0
    if last_event_id:
        event_id = parse_event_id(last_event_id)
        if event_id is None:
            raise ValidationError(
                "Last-Event-ID must be an event id from this stream", field="Last-Event-ID"
            )
        cursor = max(cursor, event_id)
    return StreamingResponse(
        _events(ctx, execution_id, cursor, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

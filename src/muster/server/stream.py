"""``GET /api/v1/automation/executions/{id}/stream``: live output as Server-Sent Events.

Events: ``output`` (host, stream, data), ``state`` (host, state, exit_code,
attempt), ``event`` (a ``@@{json}`` stdout line), ``end`` (final status).
Every event carries ``id:``, the id of the last output chunk sent, which only
grows; a client reconnecting with ``Last-Event-ID`` gets every chunk after it
exactly once, then the current state of each host. The loop sleeps on the
store's notifier (in-process fan-out, or PostgreSQL LISTEN/NOTIFY); a wait of
one second is only a safety net.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from muster.errors import NotFoundError, ValidationError
from muster.server.context import ServerContext
from muster.server.header_values import parse_event_id
from muster.server.schemas.common import MAX_EVENT_ID
from muster.server.sse import EventLines, sse
from muster.store.base import ExecutionRecord, HostRunRecord
from muster.store.notify import execution_key

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/automation/executions", tags=["executions"])

_BATCH = 500
_FALLBACK_POLL = 1.0
_KEEPALIVE = 15.0
_SNAPSHOT_EVERY = 0.25


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
    store = ctx.store
    stopping: asyncio.Event | None = ctx.extra.get("stopping")
    names: dict[str, str] = {}
    seen: dict[str, tuple[str, int]] = {}
    lines = EventLines()
    idle = 0.0
    loop = asyncio.get_running_loop()
    last_snapshot = -_SNAPSHOT_EVERY

    async def snapshot() -> ExecutionRecord | None:
        try:
            record = await run_in_threadpool(store.get_execution, execution_id)
        except NotFoundError:
            return None
        names.update({r.id: r.host_name for r in record.host_runs})
        return record

    with ctx.live.subscribe(execution_key(execution_id)) as sub:
        yield b": muster live output\n\n"
        while True:
            chunks = await run_in_threadpool(
                partial(store.read_output, execution_id=execution_id, after_id=cursor, limit=_BATCH)
            )
            if any(c.host_run_id not in names for c in chunks):
                await snapshot()
            for c in chunks:
                cursor = c.id
                host = names.get(c.host_run_id, c.host_run_id)
                if c.stream == "event":
                    yield sse("event", {"host": host, "data": c.data}, cursor)
                    continue
                yield sse("output", {"host": host, "stream": c.stream, "data": c.data}, cursor)
                if c.stream == "stdout":
                    for value in lines.feed(c.host_run_id, c.data):
                        yield sse("event", {"host": host, "data": value}, cursor)
            if len(chunks) == _BATCH:
                continue
            now = loop.time()
            if chunks and now - last_snapshot < _SNAPSHOT_EVERY:
                # Output is flowing: read host states at most a few times a second.
                await sub.wait(_FALLBACK_POLL)
                continue
            last_snapshot = now
            record = await snapshot()
            if record is None:
                yield sse("end", {"status": "deleted"}, cursor)
                return
            for run in record.host_runs:
                key = (run.state.value, run.attempt)
                if seen.get(run.id) != key:
                    seen[run.id] = key
                    yield sse("state", _state(run), cursor)
            if record.status.terminal:
                # Output committed before the last state change is already read;
                # read once more for anything committed in between.
                tail = await run_in_threadpool(
                    partial(store.read_output, execution_id=execution_id, after_id=cursor)
                )
                for c in tail:
                    cursor = c.id
                    host = names.get(c.host_run_id, c.host_run_id)
                    yield sse("output", {"host": host, "stream": c.stream, "data": c.data}, cursor)
                yield sse(
                    "end", {"status": record.status.value, "counts": dict(record.counts)}, cursor
                )
                return
            if stopping is not None and stopping.is_set():
                yield sse("end", {"status": "server_stopping"}, cursor)
                return
            if await request.is_disconnected():
                return
            woke = await sub.wait(_FALLBACK_POLL)
            idle = 0.0 if woke else idle + _FALLBACK_POLL
            if idle >= _KEEPALIVE:
                idle = 0.0
                yield b": keep-alive\n\n"


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

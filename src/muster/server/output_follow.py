"""Follow an execution's live output (or one host run's) from the store.

The server's two live views are this one loop, each writing what it yields in
its own Server-Sent Events shape: the API's execution stream
(:mod:`muster.server.stream`) and the console's host panel
(:mod:`muster.server.web.pages_executions`). The loop reads output after a
cursor (the id of the last chunk given out, which only grows, so a client that
resumes after it gets every later chunk exactly once), then the host states,
then sleeps on the store's notifier (in-process fan-out, or PostgreSQL
LISTEN/NOTIFY); the one-second wait is only a safety net for a lost wake-up.

Pace: output is read in batches, back to back while batches come full; while
output flows, states are read at most a few times a second (reading every
host run of a large execution is the expensive query); an idle stream gets a
keep-alive now and then so proxies keep it open. Once the execution (or the
followed run) is terminal, the output committed in between is read, then the
end. The end also comes when the execution is deleted or the server stops; a
client that went away just stops the loop.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool

from muster.errors import NotFoundError
from muster.server.sse import EventLines
from muster.store.base import ExecutionRecord, HostRunRecord, OutputChunk, Store
from muster.store.notify import Notifier, execution_key

__all__ = [
    "End",
    "EndReason",
    "Event",
    "FollowItem",
    "KeepAlive",
    "Output",
    "Pace",
    "Snapshot",
    "follow_output",
]


@dataclass(frozen=True, slots=True)
class Pace:
    """How often the loop reads and speaks; tests shorten it, routes keep the default."""

    #: Chunks per read; a full batch is followed by the next read at once.
    batch: int = 500
    #: Longest sleep between reads when no wake-up comes.
    poll: float = 1.0
    #: Silence after which an idle stream gets a keep-alive.
    keepalive: float = 15.0
    #: Least time between two state reads while output flows.
    snapshot_every: float = 0.25


@dataclass(frozen=True, slots=True)
class Output:
    """One stored chunk of a host's stdout or stderr."""

    cursor: int
    run_id: str
    host: str
    stream: str
    data: str


@dataclass(frozen=True, slots=True)
class Event:
    """A structured ``@@{json}`` stdout line, given right after the chunk that completed it."""

    cursor: int
    run_id: str
    host: str
    data: Any


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Host states as read now: every run of the execution, or the one followed.

    Given on every read, changed or not: which changes are worth sending is
    each view's choice.
    """

    cursor: int
    runs: tuple[HostRunRecord, ...]


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """Nothing happened for a while; says so, so the connection stays open."""

    cursor: int


class EndReason(enum.StrEnum):
    FINISHED = "finished"
    DELETED = "deleted"
    STOPPING = "server_stopping"


@dataclass(frozen=True, slots=True)
class End:
    """The last item: no output follows.

    When ``why`` is ``FINISHED``, ``execution`` holds the terminal execution
    (whole-execution mode) or ``run`` the terminal run (one-run mode).
    """

    cursor: int
    why: EndReason
    execution: ExecutionRecord | None = None
    run: HostRunRecord | None = None


FollowItem = Output | Event | Snapshot | KeepAlive | End


@dataclass(frozen=True, slots=True)
class _States:
    runs: tuple[HostRunRecord, ...]
    execution: ExecutionRecord | None
    run: HostRunRecord | None

    @property
    def finished(self) -> bool:
        if self.run is not None:
            return self.run.state.terminal
        return self.execution is not None and self.execution.status.terminal


async def follow_output(
    store: Store,
    live: Notifier,
    execution_id: str,
    *,
    run_id: str | None = None,
    after: int = 0,
    stopping: asyncio.Event | None = None,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
    pace: Pace = Pace(),
) -> AsyncGenerator[FollowItem, None]:
    """Output after ``after`` of the execution (or only of its run ``run_id``),
    host states, keep-alives, and one :class:`End`, until the end or a client gone.

    ``stopping`` is the server's shutdown flag; ``disconnected`` says whether
    the client went away (both are checked while the stream is idle).
    """
    cursor = after
    names: dict[str, str] = {}
    lines = EventLines()
    clock = asyncio.get_running_loop()
    last_read = -math.inf
    idle = 0.0
    where = {"run_id": run_id} if run_id is not None else {"execution_id": execution_id}

    async def read(limit: int) -> list[OutputChunk]:
        return await run_in_threadpool(
            partial(store.read_output, after_id=cursor, limit=limit, **where)
        )

    async def states() -> _States | None:
        try:
            if run_id is not None:
                run = await run_in_threadpool(store.get_host_run, run_id)
                found = _States((run,), None, run)
            else:
                record = await run_in_threadpool(store.get_execution, execution_id)
                found = _States(record.host_runs, record, None)
        except NotFoundError:
            return None
        names.update({r.id: r.host_name for r in found.runs})
        return found

    def items(chunk: OutputChunk) -> Iterator[Output | Event]:
        host = names.get(chunk.host_run_id, chunk.host_run_id)
        yield Output(chunk.id, chunk.host_run_id, host, chunk.stream, chunk.data)
        if chunk.stream == "stdout":
            for value in lines.feed(chunk.host_run_id, chunk.data):
                yield Event(chunk.id, chunk.host_run_id, host, value)

    with live.subscribe(execution_key(execution_id)) as sub:
        while True:
            chunks = await read(pace.batch)
            if any(c.host_run_id not in names for c in chunks):
                await states()  # host names for a run not seen yet
            for chunk in chunks:
                cursor = chunk.id
                for item in items(chunk):
                    yield item
            if len(chunks) == pace.batch:
                continue
            now = clock.time()
            if chunks and now - last_read < pace.snapshot_every:
                await sub.wait(pace.poll)
                continue
            last_read = now
            found = await states()
            if found is None:
                yield End(cursor, EndReason.DELETED)
                return
            yield Snapshot(cursor, found.runs)
            if found.finished:
                # Output committed before the last state change is read already;
                # read what was committed in between.
                while True:
                    tail = await read(pace.batch)
                    for chunk in tail:
                        cursor = chunk.id
                        for item in items(chunk):
                            yield item
                    if len(tail) < pace.batch:
                        break
                yield End(cursor, EndReason.FINISHED, found.execution, found.run)
                return
            if stopping is not None and stopping.is_set():
                yield End(cursor, EndReason.STOPPING)
                return
            if disconnected is not None and await disconnected():
                return
            woke = await sub.wait(pace.poll)
            idle = 0.0 if woke else idle + pace.poll
            if idle >= pace.keepalive:
                idle = 0.0
                yield KeepAlive(cursor)

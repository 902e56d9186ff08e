"""The one live-output loop both SSE routes render, on the in-memory store.

The API's execution stream and the console's host panel differ only in how
they write what :func:`follow_output` yields; what they yield and when is
specified here, without a server. Waits are on the store's notifications
under a deadline; the pace is shortened only where a test is about the pace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.states import HostRunState
from muster.server.output_follow import (
    End,
    EndReason,
    Event,
    FollowItem,
    KeepAlive,
    Output,
    Pace,
    Snapshot,
    follow_output,
)
from muster.store.base import ClaimedRun, ExecutionKind, ExecutionRecord, HostTarget, NewExecution
from muster.testing import FakeClock, InMemoryStore

S = HostRunState
#: Every wait's deadline (a wake-up normally comes in milliseconds).
DEADLINE = 10.0
OWNER = "w1"


@pytest.fixture
def store() -> Iterator[InMemoryStore]:
    s = InMemoryStore(clock=FakeClock())
    yield s
    s.close()


def _execute(store: InMemoryStore, hosts: list[str]) -> ExecutionRecord:
    targets = []
    for name in hosts:
        rec = store.create_host(Host(name=name, transport=TransportKind.LOCAL))
        targets.append(HostTarget(rec.id, rec.name))
    v = store.save_script(ScriptVersion(name="job", shell=Shell.BASH, body="echo hi")).version
    return store.create_execution(
        NewExecution(
            kind=ExecutionKind.SCRIPT,
            targets=targets,
            timeout=v.timeout,
            script_id=v.script_id,
            script_version=v.number,
            content_hash=v.content_hash,
            parameters={},
        )
    )


def _claim(store: InMemoryStore, n: int) -> dict[str, ClaimedRun]:
    """The execution's runs, claimed and started, by host name."""
    claimed = store.claim_host_runs(OWNER, n, 600.0)
    assert len(claimed) == n
    for c in claimed:
        assert store.mark_started(c.id, OWNER, c.epoch)
    return {c.run.host_name: c for c in claimed}


def _write(store: InMemoryStore, run: ClaimedRun, stream: str, text: str) -> None:
    assert store.append_output(run.id, OWNER, run.epoch, stream, text)


def _finish(store: InMemoryStore, run: ClaimedRun, state: HostRunState = S.SUCCEEDED) -> None:
    code = 0 if state is S.SUCCEEDED else 1
    assert store.finish_host_run(run.id, OWNER, run.epoch, state, exit_code=code)


async def _next(items: AsyncIterator[FollowItem]) -> FollowItem:
    async with asyncio.timeout(DEADLINE):
        return await anext(items)


async def _until_end(items: AsyncIterator[FollowItem]) -> list[FollowItem]:
    """Every item up to and including the end; the loop must stop after it."""
    out: list[FollowItem] = []
    async with asyncio.timeout(DEADLINE):
        async for item in items:
            out.append(item)
    assert out and isinstance(out[-1], End), out
    return out


def _texts(items: list[FollowItem], stream: str = "stdout") -> str:
    return "".join(i.data for i in items if isinstance(i, Output) and i.stream == stream)


async def test_output_then_states_then_end(store: InMemoryStore) -> None:
    ex = _execute(store, ["web1", "web2"])
    runs = _claim(store, 2)
    # States are read as soon as output pauses (the 4-a-second limit is a pace).
    items = follow_output(store, store.notifier, ex.id, pace=Pace(snapshot_every=0.0))

    _write(store, runs["web1"], "stdout", "first\n")
    first = await _next(items)
    assert isinstance(first, Output)
    assert (first.host, first.stream, first.data) == ("web1", "stdout", "first\n")
    # Output is read before states; the hosts are still running.
    snap = await _next(items)
    assert isinstance(snap, Snapshot) and snap.cursor == first.cursor
    assert {r.host_name: r.state for r in snap.runs} == {"web1": S.RUNNING, "web2": S.RUNNING}

    _write(store, runs["web2"], "stderr", "oops\n")
    _write(store, runs["web1"], "stdout", '@@{"progress": 50}\nlast\n')
    _finish(store, runs["web1"])
    _finish(store, runs["web2"], S.FAILED)
    rest = await _until_end(items)

    assert _texts(rest, "stderr") == "oops\n"
    assert _texts(rest) == '@@{"progress": 50}\nlast\n'
    events = [i for i in rest if isinstance(i, Event)]
    assert [(e.host, e.data) for e in events] == [("web1", {"progress": 50})]
    final = [i for i in rest if isinstance(i, Snapshot)][-1]
    assert {r.host_name: r.state for r in final.runs} == {"web1": S.SUCCEEDED, "web2": S.FAILED}
    end = rest[-1]
    assert isinstance(end, End) and end.why is EndReason.FINISHED
    assert end.execution is not None and end.execution.status.terminal and end.run is None
    cursors = [first.cursor, *(i.cursor for i in rest)]
    assert cursors == sorted(cursors) and end.cursor == store.last_output_id(ex.id)


async def test_resume_after_a_cursor_replays_only_later_output(store: InMemoryStore) -> None:
    ex = _execute(store, ["web1"])
    run = _claim(store, 1)["web1"]
    for line in ("one\n", "two\n", "three\n"):
        _write(store, run, "stdout", line)
    _finish(store, run)
    whole = await _until_end(follow_output(store, store.notifier, ex.id))
    outputs = [i for i in whole if isinstance(i, Output)]
    assert [o.data for o in outputs] == ["one\n", "two\n", "three\n"]

    resumed = await _until_end(follow_output(store, store.notifier, ex.id, after=outputs[0].cursor))
    assert [(o.cursor, o.data) for o in resumed if isinstance(o, Output)] == [
        (o.cursor, o.data) for o in outputs[1:]
    ]
    # At the very end: no output, the final states and the end.
    tail = await _until_end(follow_output(store, store.notifier, ex.id, after=outputs[-1].cursor))
    assert [type(i) for i in tail] == [Snapshot, End]


async def test_one_run_only(store: InMemoryStore) -> None:
    ex = _execute(store, ["web1", "web2"])
    runs = _claim(store, 2)
    followed = runs["web2"]
    items = follow_output(store, store.notifier, ex.id, run_id=followed.id)

    _write(store, runs["web1"], "stdout", "not mine\n")
    _write(store, followed, "stdout", "mine\n")
    _finish(store, followed)
    # The other host still runs: the followed run's end is enough.
    got = await _until_end(items)

    assert {i.host for i in got if isinstance(i, Output)} == {"web2"}
    assert _texts(got) == "mine\n"
    snaps = [i for i in got if isinstance(i, Snapshot)]
    assert snaps and all([r.id for r in s.runs] == [followed.id] for s in snaps)
    end = got[-1]
    assert isinstance(end, End) and end.why is EndReason.FINISHED
    assert end.run is not None and end.run.id == followed.id and end.run.state is S.SUCCEEDED
    assert end.execution is None
    assert not store.get_execution(ex.id).status.terminal


@pytest.mark.parametrize("one_run", [False, True], ids=["execution", "run"])
async def test_deleted_execution_ends_the_stream(store: InMemoryStore, one_run: bool) -> None:
    ex = _execute(store, ["web1"])
    run = _claim(store, 1)["web1"]
    _write(store, run, "stdout", "hello\n")
    items = follow_output(store, store.notifier, ex.id, run_id=run.id if one_run else None)
    assert isinstance(await _next(items), Output)
    assert isinstance(await _next(items), Snapshot)

    # Between two reads of the loop, the host ends and the execution is deleted.
    _finish(store, run)
    store.delete_execution(ex.id)
    got = await _until_end(items)

    assert len(got) == 1
    end = got[0]
    assert isinstance(end, End) and end.why is EndReason.DELETED
    assert end.execution is None and end.run is None


async def test_server_stopping_and_disconnect_end_the_loop(store: InMemoryStore) -> None:
    ex = _execute(store, ["web1"])
    _claim(store, 1)
    stopping = asyncio.Event()
    items = follow_output(store, store.notifier, ex.id, stopping=stopping)
    assert isinstance(await _next(items), Snapshot)
    stopping.set()
    got = await _until_end(items)
    assert isinstance(got[-1], End) and got[-1].why is EndReason.STOPPING

    gone = asyncio.Event()

    async def disconnected() -> bool:
        return gone.is_set()

    items = follow_output(store, store.notifier, ex.id, disconnected=disconnected)
    assert isinstance(await _next(items), Snapshot)
    gone.set()
    async with asyncio.timeout(DEADLINE):
        # A gone client gets nothing more, not even an end.
        assert [i async for i in items] == []


async def test_idle_stream_sends_keep_alives(store: InMemoryStore) -> None:
    ex = _execute(store, ["web1"])
    _claim(store, 1)
    items = follow_output(store, store.notifier, ex.id, pace=Pace(poll=0.01, keepalive=0.03))
    kinds: list[type[FollowItem]] = []
    async with asyncio.timeout(DEADLINE):
        async for item in items:
            kinds.append(type(item))
            if isinstance(item, KeepAlive):
                break
    await items.aclose()
    # Nothing happened: each fallback poll re-reads the states, then a keep-alive.
    assert set(kinds[:-1]) == {Snapshot} and kinds[-1] is KeepAlive


async def test_flowing_output_defers_state_reads(store: InMemoryStore) -> None:
    ex = _execute(store, ["web1"])
    run = _claim(store, 1)["web1"]
    # Far longer than the test: after the first read, states wait for output to pause.
    items = follow_output(store, store.notifier, ex.id, pace=Pace(snapshot_every=3600.0))
    _write(store, run, "stdout", "a\n")
    assert [type(await _next(items)) for _ in range(2)] == [Output, Snapshot]
    _write(store, run, "stdout", "b\n")
    assert isinstance(await _next(items), Output)
    _write(store, run, "stdout", "c\n")
    third = await _next(items)
    assert isinstance(third, Output) and third.data == "c\n"
    await items.aclose()


async def test_full_batches_are_read_back_to_back(store: InMemoryStore) -> None:
    ex = _execute(store, ["web1"])
    run = _claim(store, 1)["web1"]
    for i in range(5):
        _write(store, run, "stdout", f"{i}\n")
    _finish(store, run)
    got = await _until_end(follow_output(store, store.notifier, ex.id, pace=Pace(batch=2)))
    assert [type(i) for i in got] == [Output] * 5 + [Snapshot, End]
    assert _texts(got) == "0\n1\n2\n3\n4\n"


class _LateStore(InMemoryStore):
    """Runs ``late`` once, inside the next state read: output committed between
    the loop's output read and its state read, as a worker may do."""

    late: Callable[[], None] | None = None

    def get_execution(self, execution_id: str, *, history: bool = False) -> ExecutionRecord:
        late, self.late = self.late, None
        if late is not None:
            late()
        return super().get_execution(execution_id, history=history)


async def test_output_committed_with_the_last_state_is_read_before_the_end() -> None:
    store = _LateStore(clock=FakeClock())
    try:
        ex = _execute(store, ["web1"])
        run = _claim(store, 1)["web1"]

        def late() -> None:
            for text in ('@@{"phase": "done"}\n', "bye\n", "now\n"):
                _write(store, run, "stdout", text)
            _finish(store, run)

        store.late = late
        # More than one batch committed late: the tail reads until a short batch.
        got = await _until_end(follow_output(store, store.notifier, ex.id, pace=Pace(batch=2)))
    finally:
        store.close()
    assert [type(i) for i in got] == [Snapshot, Output, Event, Output, Output, End]
    assert _texts(got) == '@@{"phase": "done"}\nbye\nnow\n'
    assert got[-1].cursor == store.last_output_id(ex.id)

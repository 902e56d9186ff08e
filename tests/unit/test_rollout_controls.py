"""The rollout engine's controls, which the CLI's Ctrl-C and signals only translate:
pause holds the run at a safe point and says where, resume lets it go on, abort
stops it without rollback (a rollback stays possible on request), and a wave
outside its windows stops the rollout when the window policy is ``fail``.

Hosts run on the shipped :class:`~muster.testing.ScriptedTransport`; a host whose
run has a ``gate`` stays running until the test sets it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.plans import Plan
from muster.domain.workflows import parse_workflow
from muster.engine.dispatcher import DispatchPolicy
from muster.engine.rollout import RolloutEngine
from muster.engine.rollout_result import RolloutRun, RolloutStatus, WaveStatus
from muster.errors import ConflictError
from muster.testing import InMemoryStore
from muster.testing.clock import FakeClock
from muster.testing.scripted import ScriptedRun, ScriptedTransport

pytestmark = pytest.mark.timeout(30)

SUNDAY = dt.datetime(2026, 1, 4, 12, 0, tzinfo=dt.UTC)
HOSTS = [Host(n, transport=TransportKind.LOCAL, groups=("web",)) for n in ("h1", "h2", "h3")]


class Fleet:
    """Hosts that wait for their gate; what started, in order, and what the engine said."""

    def __init__(self) -> None:
        self.gates = {h.name: asyncio.Event() for h in HOSTS}
        self.transport = ScriptedTransport(self._play)
        self.holds: list[str] = []

    def _play(self, host: Host, plan: Plan) -> ScriptedRun:
        undo = "undo" in " ".join(" ".join(c.argv) for c in plan.commands)
        return ScriptedRun(gate=None if undo else self.gates[host.name])

    def release(self, *names: str) -> None:
        for name in names or tuple(self.gates):
            self.gates[name].set()


@pytest.fixture
async def fleet() -> Fleet:
    return Fleet()


@pytest.fixture
async def engine(fleet: Fleet) -> AsyncIterator[RolloutEngine]:
    clock = FakeClock(SUNDAY)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    eng = RolloutEngine(
        {TransportKind.LOCAL: fleet.transport},  # type: ignore[dict-item]
        HOSTS,
        store=InMemoryStore(),
        policy=DispatchPolicy(forks=1),
        clock=clock,
        sleep=sleep,
    )

    def heard(run: RolloutRun) -> None:
        if eng.holding and eng.holding not in fleet.holds:
            fleet.holds.append(eng.holding)

    eng.observer = heard
    try:
        yield eng
    finally:
        await eng.close()


def _workflow(waves: list[Any], **rollout: Any) -> Any:
    return parse_workflow(
        {
            "name": "w",
            "targets": "*",
            "steps": [{"id": "run", "command": "change", "rollback": "undo"}],
            "rollout": {"waves": waves, **rollout},
        }
    )


async def _until(predicate: Any) -> None:
    async with asyncio.timeout(10):
        while not predicate():
            await asyncio.sleep(0)


async def test_pause_holds_before_the_next_wave_and_says_so(
    engine: RolloutEngine, fleet: Fleet
) -> None:
    task = asyncio.ensure_future(engine.run(_workflow([1, "100%"])))
    await fleet.transport.wait_running(1)
    await engine.pause()
    fleet.release()
    await _until(lambda: engine.holding)
    assert engine.holding == "before wave 2" and fleet.holds == ["before wave 2"]
    assert engine.run_state is not None
    assert engine.run_state.waves[0].status is WaveStatus.SUCCEEDED
    assert engine.run_state.waves[1].status is WaveStatus.PENDING
    for _ in range(50):  # the loop turns; nothing of wave 2 may start
        await asyncio.sleep(0)
    assert fleet.transport.started == ["h1"]
    await engine.resume()
    run = await task
    assert run.status is RolloutStatus.SUCCEEDED, run.message
    assert fleet.transport.started == ["h1", "h2", "h3"]
    assert engine.holding == ""
    with pytest.raises(ConflictError, match="not paused"):
        await engine.resume()


async def test_pause_inside_a_wave_starts_no_waiting_host(
    engine: RolloutEngine, fleet: Fleet
) -> None:
    # forks=1: h2 and h3 wait for h1's slot; paused, neither may take it.
    task = asyncio.ensure_future(engine.run(_workflow(["100%"])))
    await fleet.transport.wait_running(1)
    await engine.pause()
    fleet.release("h1")
    await _until(lambda: "h1" not in fleet.transport.running)
    for _ in range(50):
        await asyncio.sleep(0)
    assert fleet.transport.started == ["h1"]
    await engine.resume()
    fleet.release()
    run = await task
    assert run.status is RolloutStatus.SUCCEEDED
    assert sorted(fleet.transport.started) == ["h1", "h2", "h3"]


async def test_abort_while_paused_stops_without_rollback_until_asked(
    engine: RolloutEngine, fleet: Fleet
) -> None:
    task = asyncio.ensure_future(engine.run(_workflow([1, "100%"], auto_rollback=True)))
    await fleet.transport.wait_running(1)
    await engine.pause()
    await engine.abort()
    run = await task
    assert run.status is RolloutStatus.ABORTED
    assert [w.status for w in run.waves] == [WaveStatus.ABORTED, WaveStatus.NOT_RUN]
    assert run.rollback == {} and fleet.transport.cancelled == ["h1"]
    with pytest.raises(ConflictError):
        await engine.pause()
    run = await engine.rollback()  # what the operator's roll[b]ack answer asks for
    assert run.status is RolloutStatus.ROLLED_BACK
    assert list(run.rollback) == ["h1"]


async def test_controls_need_a_running_rollout(engine: RolloutEngine) -> None:
    for control in (engine.pause, engine.abort, engine.resume):
        with pytest.raises(ConflictError):
            await control()


async def test_window_policy_fail_stops_a_wave_outside_its_window(fleet: Fleet) -> None:
    clock = FakeClock(SUNDAY)  # Sunday noon: the window below is closed
    engine = RolloutEngine(
        {TransportKind.LOCAL: fleet.transport},  # type: ignore[dict-item]
        HOSTS,
        store=InMemoryStore(),
        clock=clock,
        window_wait=False,
    )
    workflow = dataclasses.replace(_workflow([1, "100%"]), windows={"*": "Sun 01:00-03:00"})
    try:
        run = await engine.run(workflow)
    finally:
        await engine.close()
    assert run.status is RolloutStatus.FAILED
    assert "outside its maintenance window and the window policy is fail" in run.message
    assert fleet.transport.started == []

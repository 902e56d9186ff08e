"""A Transport that plays a script per host and records what the engine did."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from muster.domain.hosts import Host
from muster.domain.plans import Plan
from muster.domain.states import HostRunState
from muster.transports.base import OutputSink, Stream, TransportOutcome

__all__ = ["ScriptedRun", "ScriptedTransport"]


@dataclass(slots=True)
class ScriptedRun:
    """What one host does: emit ``output`` chunks, wait for ``gate``, return ``outcome``."""

    output: Sequence[tuple[Stream, str]] = ()
    outcome: TransportOutcome = field(
        default_factory=lambda: TransportOutcome(HostRunState.SUCCEEDED, exit_code=0)
    )
    gate: asyncio.Event | None = None
    #: Event-loop turns to yield before returning (lets other hosts overlap).
    yields: int = 2
    raises: Exception | None = None


class ScriptedTransport:
    """Runs nothing; records starts, overlap (overall and per group) and cancellations."""

    def __init__(self, script: Callable[[Host, Plan], ScriptedRun] | None = None) -> None:
        self._script = script or (lambda _h, _p: ScriptedRun())
        self.started: list[str] = []
        self.start_times: dict[str, float] = {}
        self.plans: dict[str, Plan] = {}
        self.cancelled: list[str] = []
        self.running: dict[str, Host] = {}
        self.max_running = 0
        self.max_running_per_group: dict[str, int] = {}
        self.max_tasks = 0
        self.closed = False
        self._changed = asyncio.Condition()

    async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
        step = self._script(host, plan)
        self.started.append(host.name)
        self.start_times[host.name] = asyncio.get_running_loop().time()
        self.plans[host.name] = plan
        self.running[host.name] = host
        self._note_overlap()
        await self._notify()
        try:
            for stream, text in step.output:
                sink(stream, text)
                await asyncio.sleep(0)
            if step.gate is not None:
                await step.gate.wait()
            for _ in range(step.yields):
                await asyncio.sleep(0)
            if step.raises is not None:
                raise step.raises
            return step.outcome
        except asyncio.CancelledError:
            self.cancelled.append(host.name)
            raise
        finally:
            del self.running[host.name]
            await asyncio.shield(self._notify())

    async def wait_running(self, count: int, timeout: float = 5.0) -> None:
        """Wait until at least ``count`` hosts are inside ``run_plan``."""
        await self.wait_for(lambda t: len(t.running) >= count, timeout)

    async def wait_for(
        self, predicate: Callable[[ScriptedTransport], bool], timeout: float = 5.0
    ) -> None:
        """Wait until ``predicate(self)`` holds, re-checked whenever a host starts or ends."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def close(self) -> None:
        self.closed = True

    def _note_overlap(self) -> None:
        self.max_running = max(self.max_running, len(self.running))
        self.max_tasks = max(self.max_tasks, len(asyncio.all_tasks()))
        counts: dict[str, int] = {}
        for h in self.running.values():
            for g in set(h.groups):
                counts[g] = counts.get(g, 0) + 1
        for g, n in counts.items():
            self.max_running_per_group[g] = max(self.max_running_per_group.get(g, 0), n)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

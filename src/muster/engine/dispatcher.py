"""Fan an execution out to its hosts, within limits, and record every outcome.

Contract:

- Hosts that cannot run the required shell are ``skipped`` (reason
  ``shell_unavailable``, by :func:`muster.domain.hosts.skip_reason`, the rule
  the server applies too) and never dispatched. Every other host runs
  through :func:`muster.engine.executor.execute_host`, as a server worker's
  do: preflight (transport, plan), start, capture, outcome and reason.
- At most ``forks`` hosts run at once, and with ``per_group`` at most that
  many per group; a host in several groups takes a slot in each. Slots are
  taken atomically (single event loop), so no partial holds and no deadlock.
- ``delay`` spaces host *starts* across the whole execution.
- Each host run moves queued -> running -> terminal, with timestamps, and the
  listener hears every move; output is masked before the listener sees it.
- ``cancel()`` leaves unstarted hosts ``cancelled`` and cancels running ones
  (transports kill what they started when cancelled).

Scale: a fixed pool of ``min(forks, hosts)`` worker tasks pulls hosts from
a shared cursor, so 10,000 hosts cost 10,000 small records, not 10,000
coroutines parked on semaphores.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from muster.domain.executions import Execution, HostRun
from muster.domain.hosts import Host, TransportKind, skip_reason
from muster.domain.plans import Plan
from muster.domain.states import FailureReason, HostRunState
from muster.domain.windows import GateDecision, stop_message
from muster.engine.executor import HostResult, PlanFactory, RunControl, execute_host
from muster.engine.windows import WindowMode, WindowRule
from muster.transports.base import Stream, Transport

__all__ = ["DispatchPolicy", "Dispatcher", "ExecutionListener", "PlanSource"]

log = logging.getLogger(__name__)

#: Plans per host name, or a function building one for a host.
PlanSource = Mapping[str, Plan] | Callable[[Host], Plan]

_MiB = 1024 * 1024
#: Longest single sleep while a host waits for its window.
_WINDOW_SLICE = 30.0
_WINDOW_RECHECK = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    """How an execution fans out.

    ``output_cap`` bounds what is kept per host and stream; ``output_budget``
    bounds the whole execution, so the cap shrinks (never below
    ``min_output_cap``) when there are many hosts: 1,000 hosts printing 1 MB
    each must not hold 1 GB in memory.
    """

    forks: int = 50
    per_group: int | None = None
    delay: float = 0.0
    output_cap: int = _MiB
    output_budget: int = 64 * _MiB
    min_output_cap: int = 4096

    def stream_cap(self, hosts: int) -> int:
        """Bytes kept per host and stream when ``hosts`` hosts run."""
        share = self.output_budget // max(1, 2 * hosts)
        return min(self.output_cap, max(share, self.min_output_cap))

    def __post_init__(self) -> None:
        if self.forks < 1:
            raise ValueError("forks must be at least 1")
        if self.per_group is not None and self.per_group < 1:
            raise ValueError("per_group must be at least 1")
        if self.delay < 0:
            raise ValueError("delay cannot be negative")


class ExecutionListener:
    """Hears state changes and masked output; the base class ignores both."""

    def on_state(self, execution: Execution, host_run: HostRun) -> None:
        """``host_run`` just changed state (read ``host_run.state``)."""

    def on_output(self, execution: Execution, host_run: HostRun, stream: Stream, text: str) -> None:
        """``text`` is masked output of ``host_run`` on ``stream``."""


class _Slots:
    """Which queued host may start next, honouring per-group limits.

    Hosts are bucketed by their set of groups (few distinct sets in practice),
    so picking is O(buckets) rather than O(hosts).
    """

    def __init__(self, hosts: Sequence[Host], per_group: int | None) -> None:
        self._limit = per_group
        self._buckets: dict[tuple[str, ...], deque[tuple[int, Host]]] = {}
        for index, host in enumerate(hosts):
            key = tuple(sorted(set(host.groups))) if per_group is not None else ()
            self._buckets.setdefault(key, deque()).append((index, host))
        self._busy: dict[str, int] = {}
        self.pending = len(hosts)

    def take(self) -> Host | None:
        """The earliest host that may start now, with its slots taken; else None."""
        best: tuple[str, ...] | None = None
        best_index = -1
        for key, bucket in self._buckets.items():
            if not bucket:
                continue
            if self._limit is not None and any(self._busy.get(g, 0) >= self._limit for g in key):
                continue
            if best is None or bucket[0][0] < best_index:
                best, best_index = key, bucket[0][0]
        if best is None:
            return None
        _, host = self._buckets[best].popleft()
        self.pending -= 1
        for g in best:
            self._busy[g] = self._busy.get(g, 0) + 1
        return host

    def release(self, host: Host) -> None:
        if self._limit is None:
            return
        for g in set(host.groups):
            self._busy[g] -= 1


class Dispatcher:
    """Runs one execution at a time over the given transports."""

    def __init__(
        self,
        transports: Mapping[TransportKind, Transport],
        policy: DispatchPolicy | None = None,
        listener: ExecutionListener | None = None,
        windows: WindowRule | None = None,
    ) -> None:
        self._transports = transports
        self.windows = windows if windows is not None and windows.active else None
        self.policy = policy or DispatchPolicy()
        self._listener = listener or ExecutionListener()
        self._cancel_requested = False
        self._workers: list[asyncio.Task[None]] = []
        self._wakeup: asyncio.Event | None = None
        self._cap = self.policy.output_cap

    # -- public ------------------------------------------------------------

    def cancel(self) -> None:
        """Stop starting hosts and cancel the running ones. Safe to call twice."""
        if self._cancel_requested:
            return
        self._cancel_requested = True
        for task in self._workers:
            task.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel_requested

    async def run(
        self,
        execution: Execution,
        plans: PlanSource,
        hosts: Sequence[Host],
        required_shell: str | None = None,
    ) -> Execution:
        """Run ``execution`` on ``hosts``; return it with every host run terminal."""
        runnable: list[Host] = []
        seen: set[str] = set()
        for host in hosts:
            if host.name in seen:
                continue
            seen.add(host.name)
            run = execution.add_host(host)
            if run.state is not HostRunState.QUEUED:
                continue
            why = skip_reason(host, required_shell) if required_shell is not None else None
            if why is not None:
                self._finish(
                    execution,
                    run,
                    HostRunState.SKIPPED,
                    reason=FailureReason.SHELL_UNAVAILABLE,
                    message=why,
                )
                continue
            runnable.append(host)

        self._cap = self.policy.stream_cap(len(runnable))
        slots = _Slots(runnable, self.policy.per_group)
        self._wakeup = asyncio.Event()
        loop = asyncio.get_running_loop()
        next_start = [loop.time()]
        start_lock = asyncio.Lock()
        worker_count = min(self.policy.forks, len(runnable))
        self._workers = [
            asyncio.ensure_future(self._worker(execution, plans, slots, next_start, start_lock))
            for _ in range(worker_count)
        ]
        if self._cancel_requested:
            for task in self._workers:
                task.cancel()
        try:
            await asyncio.gather(*self._workers)
        except asyncio.CancelledError:
            outer = not self._cancel_requested
            self.cancel()
            if self._workers:
                await asyncio.wait(self._workers)
            self._cancel_unstarted(execution, runnable)
            if outer:
                raise
        finally:
            self._workers = []
        self._cancel_unstarted(execution, runnable)
        return execution

    # -- workers -----------------------------------------------------------

    async def _worker(
        self,
        execution: Execution,
        plans: PlanSource,
        slots: _Slots,
        next_start: list[float],
        start_lock: asyncio.Lock,
    ) -> None:
        loop = asyncio.get_running_loop()
        delay = self.policy.delay
        try:
            while not self._cancel_requested:
                host = slots.take()
                if host is None:
                    if not slots.pending:
                        return
                    assert self._wakeup is not None
                    await self._wakeup.wait()
                    continue
                try:
                    if delay:
                        # One start at a time, spaced from the previous start as it
                        # really happened: a late wake-up (a loaded machine) pushes
                        # the next start back instead of bunching the two together.
                        async with start_lock:
                            wait = next_start[0] - loop.time()
                            if wait > 0:
                                await asyncio.sleep(wait)
                            next_start[0] = loop.time() + delay
                    gate = await self._window(execution, host)
                    if gate is not None:
                        await self._run_host(execution, plans, host, gate)
                finally:
                    slots.release(host)
                    self._wake()
        except asyncio.CancelledError:
            if not self._cancel_requested:
                raise

    def _wake(self) -> None:
        old, self._wakeup = self._wakeup, asyncio.Event()
        if old is not None:
            old.set()

    async def _window(self, execution: Execution, host: Host) -> GateDecision | None:
        """Wait for (or fail outside) the host's window; the decision it starts under,
        None if it must not start."""
        rule = self.windows
        if rule is None:
            return GateDecision(True)
        told: dt.datetime | None = None
        while True:
            decision = rule.decide(host.name, host.groups)
            if decision.open:
                return decision
            run = execution.host_runs[host.name]
            reason = decision.reason or "outside maintenance window"
            if rule.mode is WindowMode.FAIL:
                if run.state is HostRunState.QUEUED:
                    self._finish(
                        execution,
                        run,
                        HostRunState.FAILED,
                        reason=FailureReason.OUTSIDE_WINDOW,
                        message=reason,
                    )
                return None
            opens = decision.available_at or rule.clock() + _WINDOW_RECHECK
            if told != opens and rule.on_wait is not None:
                told = opens
                self._safely(rule.on_wait, host.name, reason, opens)
            # Slices: a clock that jumps (suspend, NTP) is looked at again soon.
            left = (opens - rule.clock()).total_seconds()
            await asyncio.sleep(min(max(left, 0.05), _WINDOW_SLICE))

    async def _run_host(
        self, execution: Execution, plans: PlanSource, host: Host, gate: GateDecision
    ) -> None:
        run = execution.host_runs[host.name]
        if run.state is not HostRunState.QUEUED:
            return
        plan_for: PlanFactory = plans if callable(plans) else _by_name(plans)
        recorder = _RunRecorder(execution, run, self._listener)
        control: RunControl | None = None
        timer: asyncio.TimerHandle | None = None
        if gate.stop_at_close and gate.closes_at is not None and self.windows is not None:
            control = RunControl()
            left = (gate.closes_at - self.windows.clock()).total_seconds()
            timer = asyncio.get_running_loop().call_later(
                max(left, 0.0), control.cancel, stop_message(gate.window, gate.closes_at)
            )
        try:
            await execute_host(
                host.name,
                host,
                self._transports,
                plan_for,
                recorder,
                keep_bytes=self._cap,
                control=control,
            )
        finally:
            if timer is not None:
                timer.cancel()

    def _finish(
        self,
        execution: Execution,
        run: HostRun,
        state: HostRunState,
        *,
        exit_code: int | None = None,
        reason: FailureReason | None = None,
        message: str | None = None,
    ) -> None:
        run.transition(state, exit_code=exit_code, reason=reason, message=message)
        self._safely(self._listener.on_state, execution, run)

    def _cancel_unstarted(self, execution: Execution, hosts: Sequence[Host]) -> None:
        """Hosts still queued once the workers stopped were never started."""
        for host in hosts:
            run = execution.host_runs[host.name]
            if run.state is HostRunState.QUEUED:
                self._finish(
                    execution,
                    run,
                    HostRunState.CANCELLED,
                    reason=FailureReason.CANCELLED,
                    message="cancelled before it started",
                )

    @staticmethod
    def _safely(callback: Callable[..., None], *args: object) -> None:
        """A listener's bug must not strand host runs in ``running``."""
        try:
            callback(*args)
        except Exception:
            log.exception("execution listener failed")


def _by_name(plans: Mapping[str, Plan]) -> PlanFactory:
    return lambda host: plans[host.name]


class _RunRecorder:
    """Records one host run on the in-memory execution and tells the listener."""

    __slots__ = ("_execution", "_listener", "_run")

    def __init__(self, execution: Execution, run: HostRun, listener: ExecutionListener) -> None:
        self._execution = execution
        self._run = run
        self._listener = listener

    async def start(self) -> bool:
        self._run.transition(HostRunState.RUNNING)
        Dispatcher._safely(self._listener.on_state, self._execution, self._run)
        return True

    def output(self, stream: Stream, text: str) -> None:
        Dispatcher._safely(self._listener.on_output, self._execution, self._run, stream, text)

    async def finish(self, result: HostResult) -> None:
        run = self._run
        captured = result.output
        if captured is not None:
            out, err = captured.stdout, captured.stderr
            run.stdout, run.stdout_truncated, run.stdout_bytes = (
                out.text,
                out.truncated,
                out.total_bytes,
            )
            run.stderr, run.stderr_truncated, run.stderr_bytes = (
                err.text,
                err.truncated,
                err.total_bytes,
            )
            run.events = captured.events
            run.events_dropped = out.events_dropped
        run.transition(
            result.state,
            exit_code=result.exit_code,
            reason=result.reason,
            message=result.message,
        )
        Dispatcher._safely(self._listener.on_state, self._execution, run)

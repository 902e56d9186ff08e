"""Fan an execution out to its hosts, within limits, and record every outcome.

Contract:

- Hosts that lack the required shell are ``skipped`` (reason
  ``shell_unavailable``) and never dispatched; hosts whose transport kind has
  no transport, or whose plan cannot be built, fail before they start.
- At most ``forks`` hosts run at once, and with ``per_group`` at most that
  many per group; a host in several groups takes a slot in each. Slots are
  taken atomically (single event loop), so no partial holds and no deadlock.
- ``delay`` spaces host *starts* across the whole execution.
- Each host run moves queued -> running -> terminal, with timestamps, and the
  listener hears every move; output passes through an
  :class:`~muster.domain.output.OutputCapture` (masking the plan's secrets)
  before the listener sees it.
- ``cancel()`` leaves unstarted hosts ``cancelled`` and cancels running ones
  (transports kill what they started when cancelled).

Scale: a fixed pool of ``min(forks, hosts)`` worker tasks pulls hosts from
a shared cursor, so 10,000 hosts cost 10,000 small records, not 10,000
coroutines parked on semaphores.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from muster.domain.executions import Execution, HostRun
from muster.domain.hosts import Host, TransportKind
from muster.domain.output import OutputCapture
from muster.domain.plans import Plan
from muster.domain.states import FailureReason, HostRunState
from muster.transports.base import Stream, Transport, TransportOutcome

__all__ = ["DispatchPolicy", "Dispatcher", "ExecutionListener", "PlanSource"]

log = logging.getLogger(__name__)

#: Plans per host name, or a function building one for a host.
PlanSource = Mapping[str, Plan] | Callable[[Host], Plan]

_MiB = 1024 * 1024


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
    ) -> None:
        self._transports = transports
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
            if required_shell is not None and not host.has_shell(required_shell):
                shells = ", ".join(host.effective_shells) or "none"
                self._finish(
                    execution,
                    run,
                    HostRunState.SKIPPED,
                    reason=FailureReason.SHELL_UNAVAILABLE,
                    message=f"{required_shell} is not among this host's shells ({shells})",
                )
                continue
            if host.transport not in self._transports:
                self._finish(
                    execution,
                    run,
                    HostRunState.FAILED,
                    reason=FailureReason.TRANSPORT_ERROR,
                    message=f"no {host.transport.value} transport is configured",
                )
                continue
            runnable.append(host)

        self._cap = self.policy.stream_cap(len(runnable))
        slots = _Slots(runnable, self.policy.per_group)
        self._wakeup = asyncio.Event()
        loop = asyncio.get_running_loop()
        next_start = [loop.time()]
        worker_count = min(self.policy.forks, len(runnable))
        self._workers = [
            asyncio.ensure_future(self._worker(execution, plans, slots, next_start))
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
        self, execution: Execution, plans: PlanSource, slots: _Slots, next_start: list[float]
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
                        now = loop.time()
                        start = max(now, next_start[0])
                        next_start[0] = start + delay
                        if start > now:
                            await asyncio.sleep(start - now)
                    await self._run_host(execution, plans, host)
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

    async def _run_host(self, execution: Execution, plans: PlanSource, host: Host) -> None:
        run = execution.host_runs[host.name]
        if run.state is not HostRunState.QUEUED:
            return
        try:
            plan = plans(host) if callable(plans) else plans[host.name]
        except Exception as exc:
            self._finish(
                execution,
                run,
                HostRunState.FAILED,
                reason=FailureReason.TRANSPORT_ERROR,
                message=f"could not build the plan: {exc}",
            )
            return
        transport = self._transports[host.transport]
        cap = self._cap
        secrets = plan.secrets
        out = OutputCapture(cap, secrets)
        err = OutputCapture(cap, secrets, extract_events=False)
        listener = self._listener
        on_output = listener.on_output

        def sink(stream: Stream, text: str) -> None:
            masked = (out if stream is Stream.STDOUT else err).feed(text)
            if masked:
                self._safely(on_output, execution, run, stream, masked)

        run.transition(HostRunState.RUNNING)
        self._safely(listener.on_state, execution, run)
        outcome: TransportOutcome
        try:
            outcome = await transport.run_plan(host, plan, sink)
        except asyncio.CancelledError:
            self._store_output(execution, run, out, err)
            self._finish(
                execution,
                run,
                HostRunState.CANCELLED,
                reason=FailureReason.CANCELLED,
                message="cancelled while running",
            )
            raise
        except Exception as exc:
            log.exception("transport raised for host %s", host.name)
            outcome = TransportOutcome(
                HostRunState.FAILED,
                reason=FailureReason.TRANSPORT_ERROR,
                message=f"transport error: {exc!r}",
            )
        self._store_output(execution, run, out, err)
        state = outcome.state if outcome.state.terminal else HostRunState.FAILED
        self._finish(
            execution,
            run,
            state,
            exit_code=outcome.exit_code,
            reason=outcome.reason,
            message=outcome.message,
        )

    def _store_output(
        self, execution: Execution, run: HostRun, out: OutputCapture, err: OutputCapture
    ) -> None:
        for stream, capture in ((Stream.STDOUT, out), (Stream.STDERR, err)):
            tail = capture.close()
            if tail:
                self._safely(self._listener.on_output, execution, run, stream, tail)
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
        run.events = out.events

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

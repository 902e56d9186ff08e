"""A worker: claim host runs, hold their leases, run them, record how they ended.

The life of one run is the engine's :func:`~muster.engine.executor.execute_host`,
as in the CLI: claimed (lease held) -> preflight (host, transport, plan) ->
``mark_started`` (the store's last word before the command is sent: False
means it was cancelled or reaped, so nothing is sent) -> the transport runs
the plan with masked output spooled to the store -> ``finish_host_run``.
This module adds only durability: every store write is a compare-and-set on
the claim's (owner, epoch), so a worker that lost its lease writes nothing.

Heartbeats renew every held lease in one statement. A run the store calls
LOST is killed at once; a run with ``cancel_requested`` is killed and
finished ``cancelled``; a run whose lease could not be renewed before it
expired (database unreachable) is killed too, because the reaper may by now
have queued it elsewhere: no run executes twice at the same time.

``stop(grace)`` (also on SIGTERM): claim nothing more, hand back runs not yet
started, let started ones finish for ``grace`` seconds, then kill and record
them ``cancelled``. ``drain()`` stops claiming but keeps the process and its
runs going; ``resume()`` undoes it.

Presence (the worker's row in the store, its state, the drain flag it follows)
is :mod:`muster.worker.presence`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from muster.domain.hosts import TransportKind
from muster.domain.states import FailureReason, HostRunState
from muster.domain.workers import WorkerState, reported_state
from muster.engine.capture import OutputSpool
from muster.engine.executor import HostResult, RunControl, execute_host
from muster.errors import StoreUnavailable
from muster.store.base import ClaimedRun, LeaseStatus, RunResult, Store
from muster.store.notify import QUEUE_KEY, Notifier
from muster.transports.base import Stream, Transport
from muster.worker.batching import Batcher
from muster.worker.plans import plan_for
from muster.worker.presence import Presence
from muster.worker.store_retry import retry_unavailable

__all__ = ["Worker", "default_worker_id"]

_log = logging.getLogger(__name__)
T = TypeVar("T")


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(slots=True)
class _Held:
    claim: ClaimedRun
    task: asyncio.Task[None] | None = None
    started: bool = False
    #: Stops the command; its message (why we stopped it) is recorded as the run's.
    control: RunControl = field(default_factory=RunControl)
    #: The store no longer lists it as ours: write nothing more.
    lost: bool = False
    renewed_at: float = field(default_factory=time.monotonic)


class Worker:
    """Runs claimed host runs through transports; see the module docstring."""

    def __init__(
        self,
        store: Store,
        transports: Mapping[TransportKind, Transport],
        *,
        worker_id: str | None = None,
        concurrency: int = 8,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 10.0,
        output_cap_bytes: int = 1024 * 1024,
        poll_seconds: float = 2.0,
        notifier: Notifier | None = None,
    ) -> None:
        if heartbeat_seconds >= lease_seconds:
            raise ValueError("heartbeat_seconds must be shorter than lease_seconds")
        self.store = store
        self.transports = transports
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.output_cap_bytes = output_cap_bytes
        self.poll_seconds = poll_seconds
        self.notifier = notifier if notifier is not None else getattr(store, "notifier", None)
        self._held: dict[str, _Held] = {}
        self._changed = asyncio.Event()
        self.presence = Presence(
            store,
            self.worker_id,
            lease_seconds=lease_seconds,
            call=self._call,
            state=lambda: self.state,
            wake=self._poke,
        )
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._done = asyncio.Event()
        self.completed = 0
        # Store calls block: give them threads of their own, as many as can be busy.
        self._starts: Batcher[tuple[str, int]] = Batcher(self._start_many, lambda r: r[0])
        self._finishes: Batcher[RunResult] = Batcher(self._finish_many, lambda r: r.run_id)
        self._pool = ThreadPoolExecutor(
            max_workers=min(concurrency, 16) + 2, thread_name_prefix=f"muster-{self.worker_id}"
        )

    async def _start_many(self, runs: Sequence[tuple[str, int]]) -> set[str]:
        return await retry_unavailable(
            lambda: self._call(self.store.mark_started_many, self.worker_id, runs),
            patience=2 * self.lease_seconds,
            what=f"worker {self.worker_id}: recording {len(runs)} starts",
        )

    async def _finish_many(self, results: Sequence[RunResult]) -> set[str]:
        return await retry_unavailable(
            lambda: self._call(self.store.finish_host_runs, self.worker_id, results),
            patience=2 * self.lease_seconds,
            what=f"worker {self.worker_id}: recording {len(results)} outcomes",
        )

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    # -- control (the server's WorkerControl) --------------------------------

    @property
    def alive(self) -> bool:
        return self._running and not self._stopping

    @property
    def draining(self) -> bool:
        return self.presence.draining

    def drain(self) -> None:
        """Stop claiming now; the store's drain flag is set with the next report."""
        self.presence.drain()

    def resume(self) -> None:
        """Claim again now; the store's drain flag is cleared with the next report."""
        self.presence.resume()

    def apply_drain(self, requested: bool) -> None:
        """Follow a drain flag already written to the store (by the server, for the
        worker in its own process) without waiting for the next heartbeat."""
        self.presence.apply(requested)

    async def report(self) -> None:
        """Write this worker's state now (see :meth:`Presence.report`)."""
        await self.presence.report()

    def _poke(self) -> None:
        """Wake the main loop (safe from any thread: routes call drain() from theirs)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._changed.set()
            return
        try:
            same = asyncio.get_running_loop() is loop
        except RuntimeError:
            same = False
        if same:
            self._changed.set()
        else:
            loop.call_soon_threadsafe(self._changed.set)

    @property
    def state(self) -> WorkerState:
        if not self._running and self._done.is_set():
            return WorkerState.STOPPED
        return reported_state(draining=self.presence.draining, held=len(self._held))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.worker_id,
            "alive": self.alive,
            "draining": self.presence.draining,
            "state": self.state.value,
            "stopping": self._stopping,
            "concurrency": self.concurrency,
            "running": len(self._held),
            "completed": self.completed,
        }

    def install_signal_handlers(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.stop(grace)))

    async def stop(self, grace: float = 30.0) -> None:
        """Stop claiming; finish started runs within ``grace``; hand back the rest."""
        self._stopping = True
        self._changed.set()
        pending = [h.task for h in self._held.values() if h.task is not None]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for held in list(self._held.values()):
                if held.task in late:
                    held.control.cancel(
                        f"worker {self.worker_id} shut down before the run finished "
                        f"(grace {grace:g}s)"
                    )
            if late:
                await asyncio.wait(late)
        if self._running:
            await self._done.wait()

    # -- main loop ------------------------------------------------------------

    async def run(self) -> None:
        """Claim and run until :meth:`stop` finishes."""
        self._loop = asyncio.get_running_loop()
        # Registered before it counts as alive: a listing never misses a live worker.
        await self.presence.register()
        self._running = True
        beat = asyncio.create_task(self._heartbeats(), name=f"{self.worker_id}-heartbeat")
        sub = self.notifier.subscribe(QUEUE_KEY) if self.notifier is not None else None
        try:
            while not self._stopping:
                if self.presence.due:
                    self.presence.due = False
                    await self.presence.report()
                free = self.concurrency - len(self._held)
                if self.presence.draining or free <= 0:
                    await self._wait_change(self.poll_seconds)
                    continue
                claims = await self._claim(free)
                for claim in claims:
                    self._start(claim)
                if claims:
                    continue
                if sub is not None:
                    waits = [asyncio.ensure_future(sub.wait(self.poll_seconds))]
                    waits.append(asyncio.ensure_future(self._wait_change(self.poll_seconds)))
                    _, rest = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    for w in rest:
                        w.cancel()
                else:
                    await self._wait_change(self.poll_seconds)
            while self._held:
                await self._wait_change(self.poll_seconds)
        finally:
            self._stopping = True
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            if sub is not None:
                sub.close()
            await self.presence.report_stopped()
            self._running = False
            self._pool.shutdown(wait=False)
            self._done.set()

    async def _wait_change(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        self._changed.clear()

    async def _claim(self, free: int) -> list[ClaimedRun]:
        try:
            return await self._call(
                self.store.claim_host_runs, self.worker_id, free, self.lease_seconds
            )
        except Exception:
            _log.exception("worker %s: claim failed; retrying", self.worker_id)
            await self._wait_change(self.poll_seconds)
            return []

    def _start(self, claim: ClaimedRun) -> None:
        held = _Held(claim)
        self._held[claim.id] = held
        held.task = asyncio.create_task(self._run_one(held), name=f"run-{claim.id}")

    # -- one run ----------------------------------------------------------------

    async def _finish(self, held: _Held, state: HostRunState, **kw: Any) -> None:
        if held.lost:
            return
        c = held.claim
        ok = await self._finishes.submit(RunResult(c.id, c.epoch, state, **kw))
        if not ok:
            _log.info("worker %s: run %s was no longer ours at finish", self.worker_id, c.id)

    async def _run_one(self, held: _Held) -> None:
        try:
            await self._execute(held)
        except StoreUnavailable:
            # Its start or outcome could not be written even after retries: saying
            # "failed" would be a guess. The lease lapses and the reaper settles it.
            _log.exception(
                "worker %s: run %s could not be recorded; leaving it to its lease",
                self.worker_id,
                held.claim.id,
            )
            held.lost = True
        except Exception as exc:
            _log.exception(
                "worker %s: run %s failed inside the worker", self.worker_id, held.claim.id
            )
            with contextlib.suppress(Exception):
                await self._finish(
                    held,
                    HostRunState.FAILED,
                    reason=FailureReason.TRANSPORT_ERROR,
                    message=f"worker error: {exc}",
                )
        finally:
            self._held.pop(held.claim.id, None)
            self.completed += 1
            # The last run of a draining worker ended: say "drained" now.
            if self.presence.draining and not self._held:
                self.presence.due = True
            self._changed.set()

    async def _execute(self, held: _Held) -> None:
        c = held.claim
        await execute_host(
            c.run.host_name,
            c.host,
            self.transports,
            functools.partial(plan_for, c),
            _StoreRecorder(self, held),
            control=held.control,
        )

    # -- leases -----------------------------------------------------------------

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await self.beat()
            await self.report()

    async def beat(self) -> None:
        """Renew every held lease once; act on cancels and losses."""
        held = [h for h in self._held.values() if not h.lost]
        if not held:
            return
        sent_at = time.monotonic()
        try:
            status = await self._call(
                self.store.heartbeat,
                self.worker_id,
                [(h.claim.id, h.claim.epoch) for h in held],
                self.lease_seconds,
            )
        except Exception:
            _log.exception("worker %s: heartbeat failed", self.worker_id)
            for h in held:
                if time.monotonic() - h.renewed_at > self.lease_seconds * 0.9:
                    self._kill(h, lost=True)
            return
        stopping = [
            h.claim.id for h in held if status.get(h.claim.id) is LeaseStatus.CANCEL_REQUESTED
        ]
        why: dict[str, str] = {}
        if stopping:
            # A maintenance window's close is a cancel with its own reason.
            try:
                why = await self._call(self.store.stop_reasons, stopping)
            except Exception:
                _log.exception("worker %s: reading stop reasons failed", self.worker_id)
        for h in held:
            s = status.get(h.claim.id, LeaseStatus.LOST)
            if s is LeaseStatus.LOST:
                self._kill(h, lost=True)
                continue
            h.renewed_at = sent_at
            if s is LeaseStatus.CANCEL_REQUESTED:
                h.control.cancel(why.get(h.claim.id, "cancelled on request"))

    def _kill(self, held: _Held, *, lost: bool) -> None:
        if lost:
            held.lost = True
            _log.warning("worker %s: lost the lease of run %s", self.worker_id, held.claim.id)
        held.control.cancel("the worker lost the run's lease")


class _StoreRecorder:
    """Records one claimed run in the store, every write a CAS on the claim."""

    __slots__ = ("_held", "_spool", "_worker")

    def __init__(self, worker: Worker, held: _Held) -> None:
        self._worker = worker
        self._held = held
        self._spool: OutputSpool | None = None

    async def start(self) -> bool:
        w, held = self._worker, self._held
        c = held.claim
        if w._stopping:
            await w._call(
                w.store.release_host_run,
                c.id,
                w.worker_id,
                c.epoch,
                f"worker {w.worker_id} shut down before starting it; waiting for a free worker",
            )
            return False
        if not await w._starts.submit((c.id, c.epoch)):
            # Cancelled before start (finish it so) or reaped (not ours: say nothing).
            status = await w._call(
                w.store.heartbeat, w.worker_id, [(c.id, c.epoch)], w.lease_seconds
            )
            if status.get(c.id) is LeaseStatus.CANCEL_REQUESTED:
                await w._finish(
                    held,
                    HostRunState.CANCELLED,
                    reason=FailureReason.CANCELLED,
                    message="cancelled on request before it started",
                )
            return False
        held.started = True

        async def write(stream: str, text: str, dropped: int) -> bool:
            return await w._call(
                w.store.append_output,
                c.id,
                w.worker_id,
                c.epoch,
                stream,
                text,
                dropped_bytes=dropped,
            )

        self._spool = OutputSpool(write, cap_bytes=w.output_cap_bytes)
        self._spool.start()
        return True

    def output(self, stream: Stream, text: str) -> None:
        assert self._spool is not None
        self._spool.take(stream, text)

    async def finish(self, result: HostResult) -> None:
        held = self._held
        if self._spool is not None:
            await self._spool.close()
            if self._spool.lost:
                held.lost = True
        await self._worker._finish(
            held,
            result.state,
            exit_code=result.exit_code,
            reason=result.reason,
            message=result.message,
            events=len(result.events),
        )

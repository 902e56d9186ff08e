"""Run one host's plan, the same way whichever face drives it.

The in-memory :class:`~muster.engine.dispatcher.Dispatcher` (library, CLI)
and the store-backed :class:`~muster.worker.Worker` (server) both call
:func:`execute_host`; they differ only in how they record a run, which is
the :class:`RunRecorder` they pass. Contract:

- **Preflight**, before anything is recorded as started: the host still
  exists (else ``failed``, ``host_deleted``), a transport serves its kind
  (else ``failed``, ``transport_error``), its plan can be built (else
  ``failed``, ``plan_error``). Whether a host is skipped (it lacks the shell)
  is decided before dispatch, by :func:`muster.domain.hosts.skip_reason`.
- **Start**: ``recorder.start()`` is the face's last word before the command
  is sent; False means "do not send", and the recorder has recorded why.
- **Capture**: output passes through a :class:`~muster.engine.capture.RunCapture`
  (secrets masked, ``@@`` events from stdout, at most ``keep_bytes`` kept per
  stream) before the recorder hears it.
- **Outcome**: the transport's outcome gives the state and reason; a
  transport that raises is ``failed``/``transport_error``; a non-final state
  is ``failed``. A stop through :class:`RunControl` kills the command and ends
  ``cancelled`` with the control's message, and the call returns; a
  cancellation from outside ends ``cancelled`` ("cancelled while running")
  and propagates.
- ``recorder.finish(result)`` is called once for every run not refused at
  start, after all of its output was forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from muster.domain.hosts import Host, TransportKind
from muster.domain.plans import Plan
from muster.domain.states import FailureReason, HostRunState
from muster.engine.capture import RunCapture
from muster.errors import MusterError
from muster.transports.base import Stream, Transport, TransportOutcome

__all__ = [
    "HostResult",
    "PlanFactory",
    "RunControl",
    "RunRecorder",
    "execute_host",
    "result_of",
]

log = logging.getLogger(__name__)

#: Builds the plan one host runs; raising means the plan cannot be built.
PlanFactory = Callable[[Host], Plan]

_S = HostRunState
_R = FailureReason

#: The reason of a run that ended in ``state`` when the transport gave none.
_DEFAULT_REASONS: Mapping[HostRunState, FailureReason] = {
    _S.TIMED_OUT: _R.TIMED_OUT,
    _S.CANCELLED: _R.CANCELLED,
    _S.LOST: _R.CONNECTION_LOST,
}


@dataclass(frozen=True, slots=True)
class HostResult:
    """How one host's run ended; ``output`` is None when nothing was sent."""

    state: HostRunState
    exit_code: int | None = None
    reason: FailureReason | None = None
    message: str = ""
    output: RunCapture | None = None

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.output.events if self.output is not None else []


class RunRecorder(Protocol):
    """How one face records one run (in memory, or in a store)."""

    async def start(self) -> bool:
        """Record that the command is about to be sent; False: do not send it."""
        ...

    def output(self, stream: Stream, text: str) -> None:
        """Masked output, in order, as it arrives."""
        ...

    async def finish(self, result: HostResult) -> None:
        """Record how the run ended (all of its output came before)."""
        ...


class RunControl:
    """Stops one run's command from outside: a user's cancel, a lost lease, a shutdown.

    Only the transport call is interrupted, never the recording around it,
    so the run still ends through ``recorder.finish``. The first message
    given is the one recorded.
    """

    __slots__ = ("_interrupted", "_task", "message")

    def __init__(self) -> None:
        self.message: str | None = None
        self._task: asyncio.Task[Any] | None = None
        self._interrupted = False

    def cancel(self, message: str) -> None:
        if self.message is None:
            self.message = message
        if self._task is not None and not self._interrupted:
            self._interrupted = True
            self._task.cancel()


def result_of(outcome: TransportOutcome, output: RunCapture | None = None) -> HostResult:
    """The one mapping from a transport's outcome to a host run's end."""
    state = outcome.state
    reason = outcome.reason
    message = outcome.message
    if not state.terminal:
        state, reason = _S.FAILED, _R.TRANSPORT_ERROR
        message = message or f"the transport ended the run in state {outcome.state.value}"
    elif reason is None and state is not _S.SUCCEEDED:
        if state is _S.FAILED:
            reason = _R.COMMAND_FAILED if outcome.exit_code is not None else _R.TRANSPORT_ERROR
        else:
            reason = _DEFAULT_REASONS.get(state)
    return HostResult(state, outcome.exit_code, reason, message, output)


async def execute_host(
    host_name: str,
    host: Host | None,
    transports: Mapping[TransportKind, Transport],
    plan_for: PlanFactory,
    recorder: RunRecorder,
    *,
    keep_bytes: int = 0,
    control: RunControl | None = None,
) -> HostResult | None:
    """Run one host's plan (see the module docstring); None if the recorder refused the start."""
    if host is None:
        return await _refused(
            recorder, _R.HOST_DELETED, f"host {host_name} was deleted after queueing"
        )
    transport = transports.get(host.transport)
    if transport is None:
        return await _refused(
            recorder, _R.TRANSPORT_ERROR, f"no {host.transport.value} transport is configured"
        )
    try:
        plan = plan_for(host)
    except Exception as exc:
        if not isinstance(exc, MusterError):
            log.exception("building the plan for host %s raised", host_name)
        return await _refused(recorder, _R.PLAN_ERROR, f"could not build the plan: {exc}")
    if not await recorder.start():
        return None
    capture = RunCapture(plan.secrets, keep_bytes, recorder.output)
    if control is not None and control.message is not None:
        # Stopped between claim and send: nothing reached the host.
        result = HostResult(_S.CANCELLED, reason=_R.CANCELLED, message=control.message)
        await recorder.finish(result)
        return result
    task = asyncio.current_task() if control is not None else None
    if control is not None:
        control._task = task
    try:
        try:
            outcome = await transport.run_plan(host, plan, capture.sink)
        finally:
            if control is not None:
                control._task = None
    except asyncio.CancelledError:
        if control is None or not _own_cancel(control, task):
            capture.close()
            result = HostResult(
                _S.CANCELLED,
                reason=_R.CANCELLED,
                message="cancelled while running",
                output=capture,
            )
            with contextlib.suppress(Exception):
                await recorder.finish(result)
            raise
        assert control.message is not None
        outcome = TransportOutcome(_S.CANCELLED, reason=_R.CANCELLED, message=control.message)
    except Exception as exc:
        log.exception("transport raised for host %s", host_name)
        outcome = TransportOutcome(
            _S.FAILED, reason=_R.TRANSPORT_ERROR, message=f"transport error: {exc!r}"
        )
    else:
        if control is not None and control._interrupted:
            # The transport swallowed our cancel and finished: its outcome stands.
            _own_cancel(control, task)
    capture.close()
    result = result_of(outcome, capture)
    await recorder.finish(result)
    return result


def _own_cancel(control: RunControl, task: asyncio.Task[Any] | None) -> bool:
    """Consume the control's cancel request; True if no other cancel is pending."""
    if not control._interrupted or task is None:
        return False
    return task.uncancel() == 0


async def _refused(recorder: RunRecorder, reason: FailureReason, message: str) -> HostResult:
    result = HostResult(_S.FAILED, reason=reason, message=message)
    await recorder.finish(result)
    return result

"""The workflow state machine: (graph, state, event) -> next actions. Pure: no I/O.

Every driver (the in-process engine, the server's durable driver) feeds it
events and carries out the actions it returns; none of them decides routing
itself, so an instance behaves the same on every face.

Events (what happened): :class:`Start`, :class:`StepFinished` (a host step's
attempt ended; the driver judged success from its :class:`~.results.StepResult`),
:class:`ApprovalDecided`, :class:`StepHeld` (a running host step's hosts are all
held outside their maintenance window, or no longer), :class:`Tick` (time
passed: delays end, approval deadlines pass, pauses expire, retries fall due), :class:`Pause`,
:class:`Resume`, :class:`Kill` (of the instance or one step),
:class:`Retry` (one failed step) and :class:`ResumeFailed` (every failed step).

Actions (what the driver must do): :class:`RunStep` (render and run a host
step's attempt, then send StepFinished), :class:`OpenApproval` /
:class:`CloseApproval`, :class:`CancelStep` (kill a running attempt) and
:class:`Finished`. The driver sends a Tick at :func:`next_wakeup`.

Rules:

* Routing, activation and skipping as :mod:`.model` says. Conditional steps
  are decided in place (``on_true``/``on_false``); a condition that cannot be
  evaluated fails the step.
* A failed host step is retried ``retries`` times (``retry_delay`` apart)
  before it counts as failed. A failure with no ``on_failure`` (or routed to
  ``fail``) aborts: nothing new starts, steps already running finish, the
  rest are skipped and the instance ends ``failed``. A handled failure does
  not fail the instance (its dependents are still skipped).
* An approval that reaches its deadline is rejected: the step fails, routing
  to ``on_failure``.
* Pause: of the instance, nothing new starts (running steps go on); of a
  step, only a step not yet started can be paused. Either may carry an
  ``until`` ("pause for 5 minutes"). Kill: running steps are cancelled, the
  rest end ``killed``; killing one step aborts like an unhandled failure.
* Retry of a failed/killed/lost step, or ResumeFailed of a failed instance,
  puts those steps (and the steps skipped behind them) back to pending;
  steps that succeeded are never run again.
* Events that arrive late (a StepFinished for a killed step or an old
  attempt) change nothing; illegal requests raise ConflictError.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from muster.domain.workflows.expr import ExpressionError, evaluate, parse_expression
from muster.domain.workflows.model import END, FAIL, StepType
from muster.domain.workflows.refs import Reference, UnresolvedReference, resolve
from muster.domain.workflows.results import StepResult
from muster.domain.workflows.state import (
    FAILED_ENDS,
    InstanceState,
    InstanceStatus,
    StepState,
    StepStatus,
    WaitReason,
)
from muster.domain.workflows.validate import Graph
from muster.errors import ConflictError, NotFoundError, ValidationError

__all__ = [
    "Action",
    "ApprovalDecided",
    "CancelStep",
    "CloseApproval",
    "Event",
    "Finished",
    "Kill",
    "OpenApproval",
    "Pause",
    "Resume",
    "ResumeFailed",
    "Retry",
    "RunStep",
    "Start",
    "StepFinished",
    "StepHeld",
    "Tick",
    "advance",
    "next_wakeup",
]


# -- events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    pass


@dataclass(frozen=True, slots=True)
class StepFinished:
    step_id: str
    attempt: int
    succeeded: bool
    message: str = ""
    #: Per host: the host run's final state (shown with the step).
    hosts: Mapping[str, str] | None = None
    #: The outcome is unknown (worker died after sending the command).
    lost: bool = False


@dataclass(frozen=True, slots=True)
class StepHeld:
    """A host step's attempt is held by the queue (``held``: every unfinished host run
    waits outside its maintenance window; ``message`` says when it opens) or no longer.

    A held step is ``waiting`` with reason ``window``; it is still in flight: its
    StepFinished is accepted and a kill cancels it, as for a running step."""

    step_id: str
    attempt: int
    held: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalDecided:
    step_id: str
    approved: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class Tick:
    pass


@dataclass(frozen=True, slots=True)
class Pause:
    step_id: str | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    step_id: str | None = None


@dataclass(frozen=True, slots=True)
class Kill:
    step_id: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    step_id: str


@dataclass(frozen=True, slots=True)
class ResumeFailed:
    pass


Event: TypeAlias = (
    Start
    | StepFinished
    | StepHeld
    | ApprovalDecided
    | Tick
    | Pause
    | Resume
    | Kill
    | Retry
    | ResumeFailed
)


def on_hosts(st: StepState) -> bool:
    """The step's attempt is in flight on its hosts (running, or held by a window)."""
    return st.status is StepStatus.RUNNING or (
        st.status is StepStatus.WAITING and st.wait_reason is WaitReason.WINDOW
    )


# -- actions ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStep:
    step_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class OpenApproval:
    step_id: str
    attempt: int
    deadline: datetime | None


@dataclass(frozen=True, slots=True)
class CloseApproval:
    step_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CancelStep:
    step_id: str


@dataclass(frozen=True, slots=True)
class Finished:
    status: InstanceStatus


Action: TypeAlias = RunStep | OpenApproval | CloseApproval | CancelStep | Finished


def next_wakeup(state: InstanceState) -> datetime | None:
    """When the driver must send the next Tick (None: nothing is timed)."""
    if state.status.terminal:
        return None
    times = [state.paused_until] if state.paused and state.paused_until else []
    state.sync_index()
    # Only waiting steps and held (paused, retrying) pending steps carry a time.
    for sid in state.busy | state.held:
        st = state.steps[sid]
        if st.wake_at is not None and not st.status.terminal:
            times.append(st.wake_at)
        if st.paused and st.paused_until is not None:
            times.append(st.paused_until)
    return min(times) if times else None


def advance(
    graph: Graph,
    state: InstanceState,
    event: Event,
    *,
    now: datetime,
    params: Mapping[str, Any] | None = None,
    results: Mapping[str, StepResult] | None = None,
) -> list[Action]:
    """Apply ``event`` to ``state`` (in place) and return what the driver must do.

    ``params`` and ``results`` are read by conditional steps only.
    """
    run = _Run(graph, state, now, params or {}, results or {})
    run.handle(event)
    return run.actions


class _Run:
    def __init__(
        self,
        graph: Graph,
        state: InstanceState,
        now: datetime,
        params: Mapping[str, Any],
        results: Mapping[str, StepResult],
    ) -> None:
        self.g = graph
        self.s = state
        self.now = now
        self.params = params
        self.results = results
        self.actions: list[Action] = []
        self.todo: deque[str] = deque()

    # -- entry ---------------------------------------------------------------

    def handle(self, event: Event) -> None:
        s = self.s
        if isinstance(event, Start):
            if s.status is not InstanceStatus.QUEUED:
                raise ConflictError(f"instance already {s.status.value}")
            s.status = InstanceStatus.RUNNING
            s.started_at = self.now
            for sid in self.g.order:
                if sid not in self.g.routed:
                    self.step(sid).active = True
                    self.todo.append(sid)
        elif s.status.terminal and not isinstance(event, Retry | ResumeFailed):
            if isinstance(event, StepFinished | StepHeld | ApprovalDecided | Tick):
                self._late(event)
                return
            raise ConflictError(f"instance is {s.status.value}")
        elif isinstance(event, StepFinished):
            self._step_finished(event)
        elif isinstance(event, StepHeld):
            self._step_held(event)
        elif isinstance(event, ApprovalDecided):
            st = self.step(event.step_id)
            if st.status is not StepStatus.WAITING or st.wait_reason is not WaitReason.APPROVAL:
                return
            self._end(
                st, StepStatus.SUCCEEDED if event.approved else StepStatus.FAILED, event.message
            )
        elif isinstance(event, Tick):
            self._tick()
        elif isinstance(event, Pause):
            self._pause(event)
        elif isinstance(event, Resume):
            self._resume(event)
        elif isinstance(event, Kill):
            self._kill(event.step_id)
        elif isinstance(event, Retry):
            self._retry([event.step_id])
        elif isinstance(event, ResumeFailed):
            if s.status not in (InstanceStatus.FAILED, InstanceStatus.KILLED):
                raise ConflictError(
                    f"only a failed instance can be resumed (it is {s.status.value})"
                )
            failed = [
                sid for sid, st in s.steps.items() if st.status in FAILED_ENDS and not st.handled
            ]
            if not failed:
                raise ConflictError("the instance has no failed step to resume from")
            self._retry(failed)
        self._pump()

    def _late(self, event: Event) -> None:
        """After the end: record a late host-state report, change nothing else."""
        if isinstance(event, StepFinished) and event.hosts:
            st = self.s.steps.get(event.step_id)
            if st is not None and st.attempt == event.attempt:
                st.hosts.update(event.hosts)
                self._touch(st.id)

    def step(self, sid: str) -> StepState:
        st = self.s.steps.get(sid)
        if st is None:
            if sid not in self.g.steps:
                raise NotFoundError(f"no step {sid!r} in workflow {self.g.workflow.name!r}")
            st = self.s.steps[sid] = StepState(id=sid)
        self._touch(sid)
        return st

    def _touch(self, sid: str) -> None:
        self.s.changed.add(sid)
        self.s.dirty.add(sid)

    # -- moving steps ----------------------------------------------------------

    def _pump(self) -> None:
        s = self.s
        while self.todo:
            self._consider(self.todo.popleft())
        if not s.status.terminal:
            self._maybe_finish()
        if not s.status.terminal:
            s.status = self._live_status()

    def _consider(self, sid: str) -> None:
        st = self.s.steps.get(sid) or self.step(sid)
        if st.status is not StepStatus.PENDING or not st.active:
            return
        spec = self.g.steps[sid]
        blocked = False
        for dep in spec.depends_on:
            dst = self.s.steps.get(dep)
            status = dst.status if dst is not None else StepStatus.PENDING
            if status is StepStatus.SUCCEEDED:
                continue
            if status.terminal:
                self._end(self.step(sid), StepStatus.SKIPPED, f"dependency {dep} {status.value}")
                return
            blocked = True
        if blocked or self.s.failing or self.s.killed or self.s.paused or st.paused:
            return
        if st.wake_at is not None and st.wake_at > self.now:
            return
        self._begin(self.step(sid))

    def _begin(self, st: StepState) -> None:
        spec = self.g.steps[st.id]
        st.attempt += 1
        st.started_at = self.now
        st.finished_at = None
        st.wake_at = None
        st.wait_reason = None
        st.message = ""
        if spec.type.runs_on_hosts:
            st.status = StepStatus.RUNNING
            st.hosts = {}
            self.actions.append(RunStep(st.id, st.attempt))
        elif spec.type is StepType.APPROVAL:
            assert spec.approval is not None
            st.status = StepStatus.WAITING
            st.wait_reason = WaitReason.APPROVAL
            timeout = spec.approval.timeout
            st.wake_at = self.now + timedelta(seconds=timeout) if timeout is not None else None
            self.actions.append(OpenApproval(st.id, st.attempt, st.wake_at))
        elif spec.type is StepType.DELAY:
            assert spec.delay is not None
            due = spec.delay.until or self.now + timedelta(seconds=spec.delay.seconds or 0.0)
            if due <= self.now:
                self._end(st, StepStatus.SUCCEEDED, "")
                return
            st.status = StepStatus.WAITING
            st.wait_reason = WaitReason.DELAY
            st.wake_at = due
        else:
            self._decide(st)

    def _decide(self, st: StepState) -> None:
        spec = self.g.steps[st.id]
        assert spec.conditional is not None
        try:
            expression = parse_expression(spec.conditional.condition, step=st.id)
            outcome = evaluate(expression, self._lookup)
        except (ExpressionError, UnresolvedReference) as exc:
            self._end(st, StepStatus.FAILED, exc.message)
            return
        st.branch = outcome
        self._end(st, StepStatus.SUCCEEDED, f"condition is {'true' if outcome else 'false'}")

    def _lookup(self, ref: Reference) -> Any:
        """A conditional has no host: a many-host step's value counts only if all agree."""
        try:
            return resolve(ref, params=self.params, results=self.results)
        except UnresolvedReference:
            result = self.results.get(ref.step or "")
            if result is None or not result.hosts:
                raise
            values = [
                resolve(ref, params=self.params, results=self.results, host=h) for h in result.hosts
            ]
            if all(v == values[0] for v in values):
                return values[0]
            raise UnresolvedReference(
                f"{{{{{ref.text}}}}} differs between the hosts of step {ref.step}; "
                "name one with step_ID.hosts.HOST...",
                step=ref.step,
            ) from None

    def _end(self, st: StepState, status: StepStatus, message: str) -> None:
        """Make ``st`` terminal (or schedule its retry) and follow its routes."""
        spec = self.g.steps[st.id]
        self._touch(st.id)
        if (
            status is StepStatus.FAILED
            and spec.type.runs_on_hosts
            and st.attempt <= spec.retries
            and not self.s.killed
        ):
            st.status = StepStatus.PENDING
            st.message = f"attempt {st.attempt} failed: {message}".rstrip(": ")
            st.wait_reason = WaitReason.RETRY
            st.wake_at = self.now + timedelta(seconds=spec.retry_delay)
            self.todo.append(st.id)
            return
        st.status = status
        st.finished_at = self.now
        st.wake_at = None
        st.wait_reason = None
        st.message = message
        if status is StepStatus.SKIPPED or status is StepStatus.KILLED:
            if status is StepStatus.KILLED:
                self._abort(f"step {st.id} was killed")
        else:
            target = self._route(spec.type, spec, st, status)
            if target == FAIL:
                self._abort(f"step {st.id} {status.value}" + (f": {message}" if message else ""))
            elif target != END:
                self.step(target).active = True
                self.todo.append(target)
            if status in FAILED_ENDS and target != FAIL:
                st.handled = True
        self.todo.extend(self.g.dependents[st.id])

    @staticmethod
    def _route(stype: StepType, spec: Any, st: StepState, status: StepStatus) -> str:
        if status is StepStatus.SUCCEEDED:
            if stype is StepType.CONDITIONAL:
                cond = spec.conditional
                return str((cond.on_true if st.branch else cond.on_false) or END)
            return str(spec.on_success or END)
        return str(spec.on_failure or FAIL)

    def _abort(self, why: str) -> None:
        if not self.s.failing:
            self.s.failing = True
            self.s.message = why

    def _maybe_finish(self) -> None:
        s = self.s
        s.sync_index()
        if s.busy:
            return
        if s.pending_active and not (s.failing or s.killed):
            return  # waiting on dependencies, paused, or between retries
        for sid in self.g.order:
            st = s.steps.get(sid) or self.step(sid)
            if st.status is StepStatus.PENDING:
                self._touch(sid)
                st.status = StepStatus.KILLED if s.killed else StepStatus.SKIPPED
                st.finished_at = self.now
                st.wait_reason = None
                st.wake_at = None
                st.message = (
                    "instance killed"
                    if s.killed
                    else ("instance aborted" if s.failing and st.active else "not routed to")
                )
        if s.killed:
            s.status = InstanceStatus.KILLED
        elif s.failing:
            s.status = InstanceStatus.FAILED
        else:
            s.status = InstanceStatus.SUCCEEDED
        s.finished_at = self.now
        self.actions.append(Finished(s.status))

    def _live_status(self) -> InstanceStatus:
        s = self.s
        s.sync_index()
        if s.paused:
            return InstanceStatus.PAUSED
        busy = [s.steps[sid] for sid in s.busy]
        if any(st.status is StepStatus.RUNNING for st in busy):
            return InstanceStatus.RUNNING
        held = [s.steps[sid] for sid in s.held]
        if busy or any(st.wait_reason is not None for st in held):
            return InstanceStatus.WAITING
        if held:
            return InstanceStatus.PAUSED
        return InstanceStatus.RUNNING

    # -- events ----------------------------------------------------------------

    def _step_finished(self, event: StepFinished) -> None:
        st = self.step(event.step_id)
        if not on_hosts(st) or st.attempt != event.attempt:
            self._late(event)
            return
        st.wait_reason = None
        if event.hosts:
            st.hosts = dict(event.hosts)
        if event.lost:
            status = StepStatus.LOST
        else:
            status = StepStatus.SUCCEEDED if event.succeeded else StepStatus.FAILED
        if status is StepStatus.LOST:
            # Unknown outcome: never retried automatically; routes like a failure.
            st.status, st.finished_at, st.message = status, self.now, event.message
            spec = self.g.steps[st.id]
            target = spec.on_failure or FAIL
            if target == FAIL:
                self._abort(f"step {st.id} lost")
            else:
                st.handled = True
                if target != END:
                    self.step(target).active = True
                    self.todo.append(target)
            self.todo.extend(self.g.dependents[st.id])
            return
        self._end(st, status, event.message)

    def _step_held(self, event: StepHeld) -> None:
        st = self.s.steps.get(event.step_id)
        if st is None or not on_hosts(st) or st.attempt != event.attempt:
            return
        st = self.step(event.step_id)
        if event.held:
            st.status, st.wait_reason, st.message = (
                StepStatus.WAITING,
                WaitReason.WINDOW,
                event.message,
            )
        else:
            st.status, st.wait_reason, st.message = StepStatus.RUNNING, None, ""

    def _tick(self) -> None:
        s, now = self.s, self.now
        if s.paused and s.paused_until is not None and s.paused_until <= now:
            s.paused, s.paused_until = False, None
            self.todo.extend(self.g.order)
        for st in list(s.steps.values()):
            if st.paused and st.paused_until is not None and st.paused_until <= now:
                self.step(st.id).paused, st.paused_until = False, None
                self.todo.append(st.id)
            if st.wake_at is None or st.wake_at > now or st.status.terminal:
                continue
            if st.status is StepStatus.WAITING and st.wait_reason is WaitReason.DELAY:
                self._end(self.step(st.id), StepStatus.SUCCEEDED, "")
            elif st.status is StepStatus.WAITING and st.wait_reason is WaitReason.APPROVAL:
                self.actions.append(CloseApproval(st.id, "deadline passed"))
                self._end(self.step(st.id), StepStatus.FAILED, "approval deadline passed")
            elif st.status is StepStatus.PENDING:
                self.todo.append(st.id)

    def _pause(self, event: Pause) -> None:
        if event.until is not None and event.until <= self.now:
            raise ValidationError("pause until a time in the future", field="until")
        if event.step_id is None:
            self.s.paused, self.s.paused_until = True, event.until
            return
        st = self.step(event.step_id)
        if st.status is not StepStatus.PENDING:
            raise ConflictError(
                f"step {st.id} is {st.status.value}: only a step not yet started can be paused"
            )
        st.paused, st.paused_until = True, event.until

    def _resume(self, event: Resume) -> None:
        if event.step_id is None:
            if not self.s.paused:
                raise ConflictError("the instance is not paused")
            self.s.paused, self.s.paused_until = False, None
            self.todo.extend(self.g.order)
            return
        st = self.step(event.step_id)
        if not st.paused:
            raise ConflictError(f"step {st.id} is not paused")
        st.paused, st.paused_until = False, None
        self.todo.append(st.id)

    def _kill(self, sid: str | None) -> None:
        if sid is None:
            self.s.killed = True
            self.s.message = self.s.message or "killed"
            targets: Iterable[StepState] = list(self.s.steps.values())
        else:
            one = self.step(sid)
            if one.status.terminal:
                raise ConflictError(f"step {sid} already {one.status.value}")
            targets = [one]
        for st in targets:
            if st.status.terminal:
                continue
            if on_hosts(st):
                self.actions.append(CancelStep(st.id))
            elif st.status is StepStatus.WAITING and st.wait_reason is WaitReason.APPROVAL:
                self.actions.append(CloseApproval(st.id, "killed"))
            if sid is None and st.status is StepStatus.PENDING:
                continue  # skipped as killed when the instance finishes
            self.step(st.id)
            st.status, st.finished_at, st.wake_at, st.wait_reason = (
                StepStatus.KILLED,
                self.now,
                None,
                None,
            )
            st.message = "killed"
            if sid is not None:
                self._abort(f"step {sid} was killed")
                self.todo.extend(self.g.dependents[st.id])

    def _retry(self, sids: list[str]) -> None:
        s = self.s
        for sid in sids:
            st = self.step(sid)
            if st.status not in FAILED_ENDS:
                raise ConflictError(
                    f"step {sid} is {st.status.value}: "
                    "only a failed, killed or lost step can be retried"
                )
        again: set[str] = set()
        todo = deque(sids)
        while todo:
            sid = todo.popleft()
            if sid in again:
                continue
            again.add(sid)
            todo.extend(n for n in self.g.successors[sid] if self._skipped(n))
        for sid in again:
            st = self.step(sid)
            st.status, st.finished_at, st.wake_at, st.wait_reason = (
                StepStatus.PENDING,
                None,
                None,
                None,
            )
            st.message, st.handled, st.branch = "", False, None
            if sid in sids:
                st.active = st.active or st.attempt > 0
        if s.status.terminal:
            s.status, s.finished_at = InstanceStatus.RUNNING, None
        s.killed = False
        s.failing = any(st.status in FAILED_ENDS and not st.handled for st in s.steps.values())
        if not s.failing:
            s.message = ""
        # Steps skipped because the instance aborted go back too (they may be active).
        for st in s.steps.values():
            if st.status is StepStatus.SKIPPED and st.message in (
                "instance aborted",
                "instance killed",
            ):
                self.step(st.id)
                st.status, st.finished_at, st.message = StepStatus.PENDING, None, ""
        self.todo.extend(self.g.order)

    def _skipped(self, sid: str) -> bool:
        st = self.s.steps.get(sid)
        return st is not None and st.status is StepStatus.SKIPPED


def lookup_for(
    params: Mapping[str, Any], results: Mapping[str, StepResult], host: str | None
) -> Callable[[Reference], Any]:
    """A reference reader for ``host`` (used by previews and drivers)."""
    return lambda ref: resolve(ref, params=params, results=results, host=host)

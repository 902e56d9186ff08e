"""The in-process workflow driver: advances instances through the state machine,
runs host steps with the dispatcher, keeps state in a WorkflowStore.

The library (``muster.Engine``), ``muster workflow run`` and the tests drive
instances with it. It decides nothing itself: every event goes through
:func:`muster.domain.workflows.machine.advance` and every host step is
rendered by :func:`muster.domain.workflows.render.prepare_step`, the two
functions the server's durable driver uses too, so both faces give the
same results.

Per instance one asyncio lock serialises events; each is applied, then the
state is saved with a compare-and-set on its revision, then the actions are
carried out (a host step becomes a task running a
:class:`~muster.engine.dispatcher.Dispatcher`; an approval becomes a
pending :class:`~muster.domain.approvals.ApprovalRequest` decided by
:meth:`WorkflowEngine.approve` / :meth:`~WorkflowEngine.reject`). A timer
sends the machine a Tick when :func:`next_wakeup` says (delays, approval
deadlines, pauses with ``until``, retry back-off); tests on a FakeClock call
:meth:`WorkflowEngine.tick` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from muster.domain.approvals import ApprovalRequest, Decision, decide, open_request
from muster.domain.executions import Execution
from muster.domain.hosts import Host, TransportKind
from muster.domain.inventory import Inventory
from muster.domain.params import ParamValue, coerce_values
from muster.domain.scripts import Script, ScriptVersion
from muster.domain.states import FailureReason, HostRunState
from muster.domain.workflows import (
    InstanceState,
    ScriptRef,
    StepResult,
    StepStatus,
    Workflow,
    WorkflowError,
    judge_step,
    load_workflow_text,
    validate,
)
from muster.domain.workflows.machine import (
    Action,
    ApprovalDecided,
    CancelStep,
    CloseApproval,
    Event,
    Finished,
    Kill,
    OpenApproval,
    Pause,
    Resume,
    ResumeFailed,
    Retry,
    RunStep,
    Start,
    StepFinished,
    Tick,
    advance,
    next_wakeup,
)
from muster.domain.workflows.render import approval_title, prepare_step, step_hosts
from muster.domain.workflows.validate import Graph
from muster.engine.dispatcher import Dispatcher, DispatchPolicy, ExecutionListener
from muster.engine.workflow_run import WorkflowRun, step_result_from_execution
from muster.engine.workflow_store import WorkflowStore
from muster.errors import ConflictError, NotFoundError, ValidationError
from muster.transports.base import Transport

__all__ = [
    "NO_HOSTS",
    "ScriptResolver",
    "WorkflowEngine",
    "WorkflowRun",
    "library_resolver",
    "step_result_from_execution",
]

log = logging.getLogger(__name__)

#: Why a host step did not run: its targets select no host of the instance.
NO_HOSTS = "its targets match no host"

#: Finds the version a named script step runs (pinned by version or hash, else latest).
ScriptResolver = Callable[[ScriptRef], ScriptVersion]


def library_resolver(scripts: Iterable[Script]) -> ScriptResolver:
    """Resolve named script steps from ``scripts``: pinned ``version``, pinned
    ``hash`` (a unique prefix of at least 12 hex digits will do), else the latest."""
    by_name = {s.name: s for s in scripts}

    def resolve(ref: ScriptRef) -> ScriptVersion:
        script = by_name.get(ref.name or "")
        if script is None:
            raise NotFoundError(f"no script {ref.name!r}")
        if ref.version is not None:
            return script.get(ref.version)
        if ref.hash is not None:
            found = [v for v in script.versions if v.content_hash.startswith(ref.hash)]
            if len(ref.hash) < 12 or not found:
                raise NotFoundError(f"script {ref.name!r} has no version with hash {ref.hash}")
            return found[-1]
        latest = script.latest
        if latest is None:
            raise NotFoundError(f"script {ref.name!r} has no version")
        return latest

    return resolve


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(eq=False)
class _Live:
    id: str
    graph: Graph
    params: dict[str, ParamValue]
    #: Named script steps' versions, pinned when the instance started.
    scripts: dict[str, ScriptVersion]
    targets: str | None
    requester: str
    state: InstanceState
    revision: int
    results: dict[str, StepResult] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    dispatchers: dict[str, Dispatcher] = field(default_factory=dict)
    approvals: dict[str, ApprovalRequest] = field(default_factory=dict)
    timer: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: Where this instance's step targets select (None: the engine's inventory).
    inventory: Inventory | Sequence[Host] | None = None
    #: A host step whose targets select no host succeeds doing nothing (a rollout
    #: runs the whole workflow on a part of the fleet: a web step has nothing to do
    #: on a database wave).
    lenient: bool = False


class WorkflowEngine:
    """Runs workflow instances in this process (see the module docstring).

    ``inventory`` is where step targets are selected (a plain host list is
    used whole by steps without targets). ``store`` keeps definitions and
    instances (in-process faces pass a :class:`~muster.testing.InMemoryStore`;
    the engine may not import it). ``scripts`` resolves named script
    steps. ``role_members`` is given to approval requests (``all``/``majority``
    need it).
    """

    def __init__(
        self,
        transports: Mapping[TransportKind, Transport],
        inventory: Inventory | Sequence[Host],
        *,
        store: WorkflowStore,
        scripts: ScriptResolver | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        policy: DispatchPolicy | None = None,
        listener: ExecutionListener | None = None,
        role_members: Mapping[str, Sequence[str]] | None = None,
        timers: bool = True,
        observer: Callable[[str, InstanceState, frozenset[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.transports = transports
        self.inventory = inventory
        self.scripts = scripts
        self.clock = clock
        self.policy = policy or DispatchPolicy()
        self.listener = listener
        self.role_members = dict(role_members or {})
        self.timers = timers
        #: Hears (instance id, state, ids of the steps that moved) after every save.
        self.observer = observer
        self._live: dict[str, _Live] = {}

    # -- starting and waiting --------------------------------------------------

    async def start(
        self,
        workflow: Workflow | str,
        *,
        params: Mapping[str, object] | None = None,
        targets: str | None = None,
        created_by: str = "muster",
        inventory: Inventory | Sequence[Host] | None = None,
        lenient: bool = False,
    ) -> str:
        """Validate, coerce ``params``, save, start; return the instance id.

        Bad input (definition, parameters) raises before anything is stored.
        ``inventory`` restricts this instance to those hosts (a rollout's wave);
        with ``lenient`` a host step selecting none of them succeeds doing nothing.
        """
        if isinstance(workflow, str):
            workflow = load_workflow_text(workflow)
        graph = validate(workflow)
        values = coerce_values(workflow.parameters, dict(params or {}))
        pinned = self._pin_scripts(graph)
        record, _ = self.store.save_workflow(workflow, created_by=created_by)
        state = InstanceState.new(graph.order)
        instance = self.store.create_instance(
            record, state, params=values, targets=targets, created_by=created_by
        )
        live = _Live(
            id=instance.id,
            graph=graph,
            params=values,
            scripts=pinned,
            targets=targets,
            requester=created_by,
            state=state,
            revision=instance.revision,
            inventory=inventory,
            lenient=lenient,
        )
        self._live[instance.id] = live
        await self._apply(live, Start())
        return instance.id

    async def run(
        self,
        workflow: Workflow | str,
        *,
        params: Mapping[str, object] | None = None,
        targets: str | None = None,
        created_by: str = "muster",
        timeout: float | None = None,
    ) -> WorkflowRun:
        """Start an instance and wait for it to finish."""
        instance_id = await self.start(
            workflow, params=params, targets=targets, created_by=created_by
        )
        return await self.wait(instance_id, timeout=timeout)

    async def wait(self, instance_id: str, *, timeout: float | None = None) -> WorkflowRun:
        """Wait until the instance is finished and its step tasks have ended."""
        live = self._get(instance_id)
        async with asyncio.timeout(timeout):
            while True:
                await live.done.wait()
                tasks = [t for t in live.tasks.values() if not t.done()]
                if tasks:
                    await asyncio.wait(tasks)
                if live.state.status.terminal:
                    break
                live.done.clear()
        return self.get(instance_id)

    async def wait_for(
        self,
        instance_id: str,
        predicate: Callable[[InstanceState], bool],
        *,
        timeout: float | None = 60.0,
    ) -> WorkflowRun:
        """Wait until ``predicate(state)`` holds (checked after every event)."""
        live = self._get(instance_id)
        async with asyncio.timeout(timeout):
            while not predicate(live.state):
                changed = live.done
                await changed.wait()
                if changed is live.done and not live.state.status.terminal:
                    live.done.clear()
        return self.get(instance_id)

    def get(self, instance_id: str) -> WorkflowRun:
        record = self.store.get_instance(instance_id)
        return WorkflowRun(record=record, results=self.store.step_results(instance_id))

    # -- controls ----------------------------------------------------------------

    async def pause(
        self, instance_id: str, step: str | None = None, *, until: dt.datetime | None = None
    ) -> None:
        """Pause the instance (nothing new starts) or a step not yet started;
        ``until`` resumes it by itself ("pause for 5 minutes")."""
        await self._apply(self._get(instance_id), Pause(step, until))

    async def pause_for(self, instance_id: str, seconds: float, step: str | None = None) -> None:
        await self.pause(instance_id, step, until=self.clock() + dt.timedelta(seconds=seconds))

    async def resume(self, instance_id: str, step: str | None = None) -> None:
        await self._apply(self._get(instance_id), Resume(step))

    async def kill(self, instance_id: str, step: str | None = None) -> None:
        """Kill the instance (running steps are cancelled) or one step."""
        await self._apply(self._get(instance_id), Kill(step))

    async def retry(self, instance_id: str, step: str) -> None:
        """Run a failed (killed, lost) step again, and what was skipped behind it."""
        await self._apply(self._get(instance_id), Retry(step))

    async def resume_failed(self, instance_id: str) -> None:
        """Resume a failed instance from its failed steps (succeeded ones stay done)."""
        await self._apply(self._get(instance_id), ResumeFailed())

    async def tick(self, instance_id: str) -> None:
        """Let the machine see the clock now (delays, deadlines, pauses, retries)."""
        await self._apply(self._get(instance_id), Tick())

    async def approve(
        self,
        instance_id: str,
        step: str,
        user: str,
        roles: Sequence[str] = (),
        reason: str | None = None,
    ) -> ApprovalRequest:
        return await self._vote(instance_id, step, user, roles, Decision.APPROVE, reason)

    async def reject(
        self,
        instance_id: str,
        step: str,
        user: str,
        roles: Sequence[str] = (),
        reason: str | None = None,
    ) -> ApprovalRequest:
        return await self._vote(instance_id, step, user, roles, Decision.REJECT, reason)

    async def settle_approval(
        self, instance_id: str, step: str, approved: bool, by: str, reason: str = ""
    ) -> None:
        """Decide an approval step as the operator of a local run (``muster workflow run
        --approve``), where nobody else could vote: no policy applies, the decision
        and who made it are recorded in the step's message."""
        live = self._get(instance_id)
        async with live.lock:
            request = live.approvals.get(step)
            if request is None or request.status.terminal:
                raise ConflictError(f"step {step} has no pending approval")
            from dataclasses import replace

            from muster.domain.approvals import ApprovalStatus

            status = ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED
            live.approvals[step] = replace(
                request, status=status, decided_at=self.clock(), reason=reason or None
            )
        verb = "approved" if approved else "rejected"
        message = f"{verb} by {by} (operator of a local run)" + (f": {reason}" if reason else "")
        await self._apply(live, ApprovalDecided(step, approved, message))

    def pending_approvals(self, instance_id: str) -> dict[str, ApprovalRequest]:
        live = self._get(instance_id)
        return {k: v for k, v in live.approvals.items() if not v.status.terminal}

    async def close(self) -> None:
        """Kill what still runs and stop the timers."""
        for live in self._live.values():
            if not live.state.status.terminal:
                with contextlib.suppress(ConflictError):
                    await self._apply(live, Kill())
            if live.timer is not None:
                live.timer.cancel()
            tasks = [t for t in live.tasks.values() if not t.done()]
            if tasks:
                await asyncio.wait(tasks)

    # -- internals -----------------------------------------------------------------

    def _get(self, instance_id: str) -> _Live:
        live = self._live.get(instance_id)
        if live is None:
            raise NotFoundError(f"no running workflow instance {instance_id!r} in this engine")
        return live

    async def _vote(
        self,
        instance_id: str,
        step: str,
        user: str,
        roles: Sequence[str],
        decision: Decision,
        reason: str | None,
    ) -> ApprovalRequest:
        live = self._get(instance_id)
        async with live.lock:
            request = live.approvals.get(step)
            if request is None:
                raise NotFoundError(f"step {step} has no approval request")
            request = decide(request, user, roles, decision, reason, self.clock())
            live.approvals[step] = request
        if request.status.terminal:
            approved = request.status.value == "approved"
            voters = ", ".join(v.user for v in request.votes)
            message = f"{'approved' if approved else 'rejected'} by {voters}"
            if request.reason and not approved:
                message += f": {request.reason}"
            await self._apply(live, ApprovalDecided(step, approved, message))
        return request

    async def _apply(self, live: _Live, event: Event) -> None:
        async with live.lock:
            pending: list[Event] = [event]
            first = True
            while pending:
                current = pending.pop(0)
                try:
                    actions = advance(
                        live.graph,
                        live.state,
                        current,
                        now=self.clock(),
                        params=live.params,
                        results=live.results,
                    )
                except Exception:
                    if first:
                        raise
                    log.exception("workflow %s: event %r failed", live.id, current)
                    continue
                first = False
                for action in actions:
                    pending.extend(self._act(live, action))
            moved = frozenset(live.state.changed)
            live.revision = self.store.save_instance(live.id, live.state, revision=live.revision)
            if self.observer is not None:
                try:
                    self.observer(live.id, live.state, moved)
                except Exception:
                    log.exception("workflow observer failed")
            self._arm_timer(live)
            live.done.set()

    def _act(self, live: _Live, action: Action) -> list[Event]:
        if isinstance(action, RunStep):
            task = asyncio.ensure_future(self._run_step(live, action.step_id, action.attempt))
            live.tasks[f"{action.step_id}#{action.attempt}"] = task
            return []
        if isinstance(action, OpenApproval):
            return self._open_approval(live, action)
        if isinstance(action, CloseApproval):
            request = live.approvals.get(action.step_id)
            if request is not None and not request.status.terminal:
                from dataclasses import replace

                from muster.domain.approvals import ApprovalStatus

                status = (
                    ApprovalStatus.EXPIRED
                    if action.reason == "deadline passed"
                    else ApprovalStatus.REJECTED
                )
                live.approvals[action.step_id] = replace(
                    request, status=status, decided_at=self.clock(), reason=action.reason
                )
            return []
        if isinstance(action, CancelStep):
            dispatcher = live.dispatchers.get(action.step_id)
            if dispatcher is not None:
                dispatcher.cancel()
            else:  # still rendering: no host started yet
                for key, task in live.tasks.items():
                    if key.partition("#")[0] == action.step_id and not task.done():
                        task.cancel()
            return []
        assert isinstance(action, Finished)
        return []

    def _open_approval(self, live: _Live, action: OpenApproval) -> list[Event]:
        spec = live.graph.steps[action.step_id].approval
        assert spec is not None
        try:
            request = open_request(
                id=str(uuid.uuid4()),
                subject=approval_title(
                    live.graph, action.step_id, params=live.params, results=live.results
                ),
                policy=spec.policy,
                approvers=spec.approvers,
                requester=live.requester,
                now=self.clock(),
                deadline=action.deadline,
                role_members=self.role_members or None,
            )
        except ValidationError as exc:
            return [
                ApprovalDecided(action.step_id, False, f"cannot ask for approval: {exc.message}")
            ]
        live.approvals[action.step_id] = request
        return []

    def _arm_timer(self, live: _Live) -> None:
        if live.timer is not None and live.timer is not asyncio.current_task():
            live.timer.cancel()
        live.timer = None
        when = next_wakeup(live.state)
        if when is None or not self.timers:
            return
        delay = max(0.0, (when - self.clock()).total_seconds())
        live.timer = asyncio.ensure_future(self._timer(live, delay))

    async def _timer(self, live: _Live, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self._apply(live, Tick())
        except Exception:
            log.exception("workflow %s: timer tick failed", live.id)

    def _pin_scripts(self, graph: Graph) -> dict[str, ScriptVersion]:
        """Resolve every named script step now, so what runs is what was asked for
        when the instance started (a later save in the library changes nothing)."""
        pinned: dict[str, ScriptVersion] = {}
        for step in graph.workflow.steps:
            ref = step.script
            if ref is None or ref.body is not None:
                continue
            if self.scripts is None:
                raise WorkflowError(
                    f"script {ref.name!r}: no script library was given to the engine",
                    step=step.id,
                    field="script",
                )
            try:
                pinned[step.id] = self.scripts(ref)
            except NotFoundError as exc:
                raise WorkflowError(str(exc), step=step.id, field="script") from None
        return pinned

    async def _run_step(self, live: _Live, step_id: str, attempt: int) -> None:
        try:
            result, why = await self._execute(live, step_id, attempt)
        except asyncio.CancelledError:
            if live.state.steps[step_id].status is StepStatus.RUNNING:
                raise
            return  # killed before any host started
        except Exception as exc:  # a bug must not leave the step running forever
            log.exception("workflow %s: step %s failed to run", live.id, step_id)
            text = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            await self._apply(live, StepFinished(step_id, attempt, False, text))
            return
        finally:
            live.dispatchers.pop(step_id, None)
        if result is None and live.lenient and why == NO_HOSTS:
            message = "nothing to do: its targets select no host of this run"
            await self._apply(live, StepFinished(step_id, attempt, True, message))
            return
        if result is not None:
            self.store.record_step_result(live.id, result)
            live.results[step_id] = result
        hosts = {h: o.state for h, o in result.hosts.items()} if result is not None else None
        verdict = judge_step(result, no_hosts=why)
        await self._apply(
            live,
            StepFinished(
                step_id, attempt, verdict.succeeded, verdict.message, hosts=hosts, lost=verdict.lost
            ),
        )

    async def _execute(
        self, live: _Live, step_id: str, attempt: int
    ) -> tuple[StepResult | None, str]:
        graph = live.graph
        try:
            inventory = self.inventory if live.inventory is None else live.inventory
            hosts = step_hosts(graph, step_id, inventory, live.params, live.targets)
            if not hosts:
                return None, NO_HOSTS
            script = live.scripts.get(step_id)
            launch = prepare_step(
                graph,
                step_id,
                attempt,
                hosts=hosts,
                params=live.params,
                results=live.results,
                run_prefix=live.id[:8],
                script=script,
            )
        except (WorkflowError, ValidationError, NotFoundError) as exc:
            return None, getattr(exc, "message", str(exc))
        execution = Execution.create(
            id=f"{live.id}-{step_id}-{attempt}", description=launch.description, hosts=hosts
        )
        runnable = [h for h in hosts if h.name in launch.plans]
        for host in hosts:
            problem = launch.problems.get(host.name)
            if problem is not None:
                run = execution.add_host(host)
                run.transition(
                    HostRunState.FAILED, reason=FailureReason.PLAN_ERROR, message=problem
                )
        throttle = launch.throttle
        policy = DispatchPolicy(
            forks=throttle.forks or self.policy.forks,
            per_group=throttle.per_group
            if throttle.per_group is not None
            else self.policy.per_group,
            delay=throttle.delay or self.policy.delay,
            output_cap=self.policy.output_cap,
            output_budget=self.policy.output_budget,
            min_output_cap=self.policy.min_output_cap,
        )
        dispatcher = Dispatcher(self.transports, policy, self.listener)
        live.dispatchers[step_id] = dispatcher
        if runnable:
            await dispatcher.run(
                execution, launch.plans, runnable, required_shell=launch.shell.value
            )
        return step_result_from_execution(step_id, attempt, execution), ""

"""The durable workflow driver: the engine's state machine, advanced from the store.

Routing, retries, pauses, kills and deadlines are decided by
:func:`muster.domain.workflows.machine.advance`, the function the in-process
driver calls too; a host step is rendered by
:func:`muster.domain.workflows.render.prepare_step`, also shared. What this
module adds is durability:

* a host step's attempt becomes executions (kind ``plan``: the rendered plan
  itself, one execution per distinct plan, the host run's id standing in for
  the in-process run id) that the existing workers claim, so throttling,
  approval rules of scripts and groups, output capture, masking, leases and
  recovery all apply; while every unfinished host run of the attempt waits
  outside its maintenance window the step shows ``waiting`` (reason
  ``window``, the message naming the opening); when every execution of the
  attempt has ended, its host runs become the step's
  :class:`~muster.domain.workflows.StepResult` and a
  ``StepFinished`` event (a host run ``lost`` makes the step ``lost``);
* an approval step opens a request in the approvals book (the five policies,
  approvers, a deadline) with subject ``workflow:<instance>:<step>``; its
  decision becomes ``ApprovalDecided``; a deadline that passes fails the step;
* one pass over an instance (events in, actions out) is committed by
  :meth:`~muster.store.workflow_durable.DurableWorkflowStore.commit_progress`
  in one transaction at the revision it read. Several processes may run the
  loop (``muster serve``, ``muster worker``): an instance is claimed with a
  lease, and a pass that lost a race writes nothing, so no step is dispatched
  twice and a finished step never runs again, whatever is killed when;
* timers (delays, deadlines, pauses for N minutes, retry delays) are the
  instance's ``wake_at`` in the store: they survive restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from muster.domain.approval_rules import ApprovalNeed
from muster.domain.approvals import ApprovalStatus, open_request
from muster.domain.hosts import Host
from muster.domain.output import EventScanner
from muster.domain.scripts import ScriptVersion
from muster.domain.workflows import (
    Graph,
    HostOutcome,
    InstanceState,
    StepResult,
    StepState,
    StepStatus,
    WaitReason,
    WorkflowError,
    merge_events,
    validate,
)
from muster.domain.workflows.machine import (
    Action,
    ApprovalDecided,
    CancelStep,
    CloseApproval,
    Event,
    Finished,
    OpenApproval,
    RunStep,
    Start,
    StepFinished,
    StepHeld,
    Tick,
    advance,
    next_wakeup,
    on_hosts,
)
from muster.domain.workflows.render import prepare_step, step_targets
from muster.errors import ConflictError, MusterError, NotFoundError, ValidationError
from muster.security.rbac import Permission
from muster.services.actor import Actor
from muster.services.approvals import Approvals
from muster.services.local_hosts import local_names, require_local_permission
from muster.services.rollout_driver import ROLLOUT, RolloutDriver, definition_graph
from muster.services.rollout_reports import RolloutReportService
from muster.services.step_executions import step_executions
from muster.services.submission import resolve_hosts
from muster.store.protocols import ServerStore
from muster.store.workflow_durable import Dispatch, InstanceDetail, WindowHold

__all__ = ["WorkflowDriver", "actor_context", "workflow_subject"]

_log = logging.getLogger(__name__)
_CONFLICT_RETRIES = 5


def workflow_subject(instance_id: str, step_id: str) -> str:
    """The subject of a workflow approval step's request (the inbox shows it)."""
    return f"workflow:{instance_id}:{step_id}"


def actor_context(actor: Actor | None) -> dict[str, Any]:
    """The starter, as kept with the instance: its steps run with these permissions."""
    if actor is None:
        return {"name": "", "roles": [], "permissions": []}
    return {
        "name": actor.name,
        "roles": list(actor.roles),
        "permissions": sorted(p.value for p in actor.permissions),
    }


def _actor(data: Mapping[str, Any]) -> Actor:
    known = {p.value for p in Permission}
    perms = frozenset(Permission(p) for p in data.get("permissions", ()) if p in known)
    return Actor(
        name=str(data.get("name") or ""), roles=tuple(data.get("roles", ())), permissions=perms
    )


def _summary(result: StepResult) -> str:
    bad = [h for h in result.hosts.values() if not h.succeeded]
    if not result.hosts:
        return "ran on no host"
    if not bad:
        return f"succeeded on {len(result.hosts)} host(s)"
    shown = ", ".join(f"{h.host} {h.state}" for h in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"{len(bad)} of {len(result.hosts)} host(s) did not succeed: {shown}{more}"


@dataclass(slots=True)
class _Pass:
    """What one pass decided, committed together."""

    detail: InstanceDetail
    graph: Graph
    state: InstanceState
    params: dict[str, Any]
    results: dict[str, StepResult]
    events: deque[Event] = field(default_factory=deque)
    new_results: list[StepResult] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    approvals: list[tuple[str, Any]] = field(default_factory=list)
    closed: list[tuple[str, str]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    moved: bool = False
    #: The approval gate's answers in this pass, per (kind, hosts, script).
    needs: dict[tuple[Any, ...], Any] = field(default_factory=dict)


class WorkflowDriver:
    """Advances workflow instances from the store; see the module docstring.

    :meth:`tick` is one pass over the due instances (blocking: run it in a
    thread); :meth:`apply` applies a user's event (pause, resume, kill, retry)
    through the same path; :meth:`start`/:meth:`stop` run the loop as a task.
    """

    def __init__(
        self,
        store: ServerStore,
        approvals: Approvals,
        *,
        owner: str | None = None,
        lease_seconds: float = 30.0,
        interval: float = 0.5,
        batch: int = 50,
        poll: float = 0.5,
    ) -> None:
        self.store = store
        #: How soon an instance with steps in flight is looked at again.
        self.poll = dt.timedelta(seconds=poll)
        self.approvals = approvals
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.batch = batch
        self.passes = 0
        self._graphs: dict[tuple[str, int], Graph] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        reports = RolloutReportService(store, store)
        #: Instances that are rollouts are advanced by it (waves of these instances).
        self.rollouts = RolloutDriver(
            store, apply=self.apply, publish=lambda doc: reports.publish(None, doc), poll=poll
        )

    # -- the loop -------------------------------------------------------------------

    def tick(self) -> int:
        """Advance every due instance this process can claim; returns how many."""
        ids = self.store.claim_instances(
            self.owner, limit=self.batch, lease_seconds=self.lease_seconds
        )
        for iid in ids:
            wake: dt.datetime | None = self.store.clock() + self.poll
            try:
                wake = self.advance(iid)
            except Exception:
                _log.exception("workflow instance %s: a pass failed", iid)
                wake = self.store.clock() + dt.timedelta(seconds=5)
            finally:
                self.store.release_instance(iid, self.owner, wake_at=wake)
        self.passes += 1
        return len(ids)

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = await asyncio.to_thread(self.tick)
            except RuntimeError as exc:
                if "shutdown" in str(exc):
                    return  # the interpreter is exiting: no thread will run a pass again
                _log.exception("workflow driver: a tick failed")
                busy = 0
            except Exception:
                _log.exception("workflow driver: a tick failed")
                busy = 0
            if busy >= self.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="muster-workflows")
        return self._task

    async def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        task = self._task
        if task is None:
            return
        await asyncio.wait({task}, timeout=timeout)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- one instance ---------------------------------------------------------------

    def advance(self, instance_id: str) -> dt.datetime | None:
        """One pass: what happened since the last (executions ended, decisions,
        time), through the machine, committed; returns when to look again."""
        for _ in range(_CONFLICT_RETRIES):
            p = self._load(instance_id)
            if p.state.status.terminal:
                return None
            if ROLLOUT in p.detail.context:
                try:
                    return self.rollouts.advance(instance_id, p.params)
                except ConflictError:
                    continue
            self._observe(p)
            try:
                self._run(p)
            except ConflictError:
                continue
            return self._wake(p.state)
        return self.store.clock() + self.poll

    def apply(self, instance_id: str, event: Event) -> InstanceState:
        """Apply a user's event (Pause, Resume, Kill, Retry, ResumeFailed) now, through
        the same path as the loop; ConflictError/ValidationError when it does not apply."""
        for _ in range(_CONFLICT_RETRIES):
            p = self._load(instance_id)
            if p.state.status.value == "queued":
                # Not started by the loop yet: start it first, as the in-process engine
                # does at once (a pause must not find an instance with nothing active).
                p.events.append(Start())
            p.events.append(event)
            try:
                self._run(p, strict=True)
            except ConflictError as exc:
                if "moved (revision" in str(exc):
                    continue
                raise
            self.store.poke_instance(instance_id)
            return p.state
        raise ConflictError(f"instance {instance_id} is changing too fast; try again")

    def _graph(self, name: str, version: int, definition: Any = None) -> Graph:
        if definition is not None:
            # A rollout's part (a host's wave, a soak check, a rollback): its own
            # definition, derived from the version it belongs to.
            return definition_graph(definition)
        key = (name, version)
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._graphs[key] = validate(self.store.get_workflow(name, version).workflow)
        return graph

    def _load(self, instance_id: str) -> _Pass:
        detail = self.store.instance_detail(instance_id)
        rec = detail.record
        params: dict[str, Any] = dict(rec.params)
        params.update(self.store.open_instance_secrets(instance_id))
        return _Pass(
            detail=detail,
            graph=self._graph(rec.workflow, rec.version, detail.context.get("definition")),
            state=rec.state,
            params=params,
            results=dict(detail.results),
        )

    def _observe(self, p: _Pass) -> None:
        """The events that happened while nobody looked."""
        state, now = p.state, self.store.clock()
        if state.status.value == "queued":
            p.events.append(Start())
        in_flight = [
            eid
            for sid, st in state.steps.items()
            if on_hosts(st) and sid in p.detail.links
            for eid in p.detail.links[sid].execution_ids
        ]
        ended = self.store.executions_finished(in_flight) if in_flight else set()
        unfinished = [eid for eid in in_flight if eid not in ended]
        holds = self.store.window_holds(unfinished) if unfinished else {}
        for sid, st in state.steps.items():
            link = p.detail.links.get(sid)
            if on_hosts(st):
                ids = link.execution_ids if link else ()
                if ids and not all(eid in ended for eid in ids):
                    self._held(p, sid, st, [eid for eid in ids if eid not in ended], holds)
                    continue
                finished = self._finished_step(p, sid, st.attempt, ids)
                if finished is not None:
                    p.events.append(finished)
            elif (
                st.status is StepStatus.WAITING
                and st.wait_reason is WaitReason.APPROVAL
                and link is not None
                and link.approval_id
            ):
                try:
                    request = self.store.get_approval(link.approval_id).request
                except NotFoundError:
                    p.events.append(ApprovalDecided(sid, False, "approval request deleted"))
                    continue
                if request.status.terminal:
                    approved = request.status is ApprovalStatus.APPROVED
                    why = request.reason or ("approved" if approved else request.status.value)
                    p.events.append(ApprovalDecided(sid, approved, why))
        due = next_wakeup(state)
        if due is not None and due <= now:
            p.events.append(Tick())

    @staticmethod
    def _held(
        p: _Pass,
        sid: str,
        st: StepState,
        unfinished: Sequence[str],
        holds: Mapping[str, WindowHold],
    ) -> None:
        """``StepHeld`` when the step's window hold changed: held while every unfinished
        execution is held (the earliest opening named), running again once one is not."""
        mine = [holds[eid] for eid in unfinished if eid in holds]
        held = bool(unfinished) and len(mine) == len(unfinished)
        message = min(mine, key=lambda h: h.opens_at).reason if held else ""
        waiting = st.status is StepStatus.WAITING
        if held != waiting or (held and message != st.message):
            p.events.append(StepHeld(sid, st.attempt, held, message))

    def _finished_step(
        self, p: _Pass, sid: str, attempt: int, execution_ids: Sequence[str]
    ) -> StepFinished | None:
        """``StepFinished`` once every execution of the attempt has ended (else None)."""
        if not execution_ids:
            return StepFinished(sid, attempt, False, "its dispatch was not recorded")
        records = []
        for eid in execution_ids:
            try:
                ex = self.store.get_execution(eid)
            except NotFoundError:
                return StepFinished(sid, attempt, False, f"execution {eid} was deleted")
            if not ex.status.terminal:
                return None
            records.append(ex)
        hosts: dict[str, HostOutcome] = {}
        for ex in records:
            problems = ((ex.policy.get("workflow") or {}).get("problems")) or {}
            for name, why in problems.items():
                hosts[name] = HostOutcome(host=name, state="failed", message=str(why))
            for run in ex.host_runs:
                stdout = stderr = ""
                if run.stdout_bytes:
                    stdout = "".join(c.data for c in self.store.iter_output(run.id, "stdout"))
                if run.stderr_bytes:
                    stderr = "".join(c.data for c in self.store.iter_output(run.id, "stderr"))
                scanner = EventScanner()
                events = [*scanner.feed(stdout), *scanner.close()]
                hosts[run.host_name] = HostOutcome(
                    host=run.host_name,
                    state=run.state.value,
                    exit_code=run.exit_code,
                    stdout=stdout,
                    stderr=stderr,
                    json=merge_events(events),
                    message=run.message or "",
                    duration=run.duration,
                )
        result = StepResult(sid, attempt, hosts)
        p.new_results.append(result)
        p.results[sid] = result
        lost = any(h.state == "lost" for h in hosts.values())
        return StepFinished(
            sid,
            attempt,
            result.succeeded,
            _summary(result),
            hosts={h: o.state for h, o in hosts.items()},
            lost=lost,
        )

    def _run(self, p: _Pass, *, strict: bool = False) -> None:
        """Feed the events through the machine, carry out its actions, commit."""
        now = self.store.clock()
        while p.events:
            event = p.events.popleft()
            try:
                actions = advance(
                    p.graph, p.state, event, now=now, params=p.params, results=p.results
                )
            except (ConflictError, ValidationError, NotFoundError):
                if strict:
                    raise
                _log.warning("workflow %s: %s does not apply", p.detail.record.id, event)
                continue
            p.moved = True
            for action in actions:
                self._act(p, action, now)
        if not p.moved and not p.new_results:
            return
        _, dispatched = self.store.commit_progress(
            p.detail.record.id,
            p.state,
            revision=p.detail.record.revision,
            results=p.new_results,
            dispatches=p.dispatches,
            approvals=p.approvals,
            closed_approvals=p.closed,
        )
        self._after_commit(p, dispatched)

    def _act(self, p: _Pass, action: Action, now: dt.datetime) -> None:
        iid = p.detail.record.id
        if isinstance(action, RunStep):
            self._dispatch(p, action)
        elif isinstance(action, OpenApproval):
            spec = p.graph.steps[action.step_id].approval
            assert spec is not None
            try:
                request = open_request(
                    id=str(uuid.uuid4()),
                    subject=workflow_subject(iid, action.step_id),
                    policy=spec.policy,
                    approvers=spec.approvers,
                    requester=p.detail.record.created_by or "unknown",
                    now=now,
                    deadline=action.deadline,
                    role_members=self.approvals.role_members(),
                )
            except MusterError as exc:
                p.events.append(
                    ApprovalDecided(action.step_id, False, f"cannot ask for approval: {exc}")
                )
                return
            p.approvals.append((action.step_id, request))
        elif isinstance(action, CloseApproval):
            link = p.detail.links.get(action.step_id)
            ids = [r.id for s, r in p.approvals if s == action.step_id]
            if link is not None and link.approval_id:
                ids.append(link.approval_id)
            p.closed.extend((aid, action.reason) for aid in ids)
        elif isinstance(action, CancelStep):
            link = p.detail.links.get(action.step_id)
            if link is not None:
                p.cancels.extend(link.execution_ids)
        else:
            assert isinstance(action, Finished)

    def _dispatch(self, p: _Pass, action: RunStep) -> None:
        """Render the attempt per host and turn it into executions (or fail it now)."""
        sid, attempt = action.step_id, action.attempt
        rec = p.detail.record
        step = p.graph.steps[sid]
        actor = _actor(p.detail.context.get("actor") or {})
        try:
            selector = step_targets(p.graph, step, p.params, rec.targets)
            only = p.detail.context.get("hosts")
            try:
                hosts = resolve_hosts(self.store, [selector])
            except ValidationError:
                if only is None:
                    raise
                hosts = []
            if only is not None:
                # One host's part of a rollout: the step runs on that host alone, and
                # a step selecting none of it succeeds doing nothing (as in-process).
                hosts = [h for h in hosts if h.name in only]
                if not hosts:
                    message = "nothing to do: its targets select no host of this run"
                    p.events.append(StepFinished(sid, attempt, True, message))
                    return
            require_local_permission(actor, local_names(hosts), doing="run a workflow step on")
            script = self._pinned(p, sid)
            launch = prepare_step(
                p.graph,
                sid,
                attempt,
                hosts=hosts,
                params=p.params,
                results=p.results,
                run_prefix=f"wf{rec.id[:8]}",
                script=script,
            )
        except (WorkflowError, ValidationError, NotFoundError, MusterError) as exc:
            message = getattr(exc, "message", str(exc))
            if "matching nothing" in message:
                message = "its targets match no host"
            p.events.append(StepFinished(sid, attempt, False, message))
            return
        executions = step_executions(
            launch,
            hosts,
            record=p.detail.record,
            pin=(p.detail.context.get("pins") or {}).get(launch.step_id) or {},
            step_type=step.type,
            idempotent=step.idempotent,
            actor=actor,
            script=script,
            need=lambda kind, members, script_id: self._need(p, kind, members, script_id),
        )
        if not executions:
            result = StepResult(
                sid,
                attempt,
                {
                    h: HostOutcome(host=h, state="failed", message=m)
                    for h, m in launch.problems.items()
                },
            )
            p.new_results.append(result)
            p.results[sid] = result
            p.events.append(
                StepFinished(
                    sid,
                    attempt,
                    False,
                    _summary(result),
                    hosts={h: o.state for h, o in result.hosts.items()},
                )
            )
            return
        p.dispatches.append(Dispatch(sid, executions))

    def _pinned(self, p: _Pass, sid: str) -> ScriptVersion | None:
        pin = (p.detail.context.get("pins") or {}).get(sid)
        if pin is None:
            return None
        return self.store.get_version(pin["script_id"], int(pin["number"])).domain()

    def _need(
        self, p: _Pass, kind: str, members: Sequence[Host], script_id: str | None
    ) -> ApprovalNeed | None:
        """The approval gate's answer, asked once per (kind, hosts, script) in a pass."""
        asked = (kind, tuple(h.name for h in members), script_id)
        if asked not in p.needs:
            p.needs[asked] = self.approvals.need_for(kind, members, script_id)
        need: ApprovalNeed | None = p.needs[asked]
        return need

    def _after_commit(self, p: _Pass, dispatched: Mapping[str, tuple[str, ...]]) -> None:
        requester = p.detail.record.created_by
        for ids in dispatched.values():
            for eid in ids:
                try:
                    execution = self.store.get_execution(eid)
                    self.approvals.open_for(execution, requester=requester)
                except MusterError as exc:
                    self.store.reject_execution(eid, f"approval request not possible: {exc}")
        for eid in p.cancels:
            with contextlib.suppress(ConflictError, NotFoundError):
                self.store.cancel_execution(eid)

    def _wake(self, state: InstanceState) -> dt.datetime | None:
        """When to look again: soon while steps are in flight, else at its next timer."""
        if state.status.terminal:
            return None
        now = self.store.clock()
        soon = now + self.poll
        due = next_wakeup(state)
        busy = any(
            on_hosts(st)
            or (st.status is StepStatus.WAITING and st.wait_reason is WaitReason.APPROVAL)
            for st in state.steps.values()
        )
        if busy:
            return min(soon, due) if due is not None else soon
        return due

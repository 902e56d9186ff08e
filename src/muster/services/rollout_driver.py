"""Progressive rollouts run durably by the server: waves, gates, soak, rollback.

A rollout is a workflow instance whose context holds the rollout's state
(:mod:`muster.services.rollout_state`). Each pass of the workflow loop over it
(:meth:`RolloutDriver.advance`, called by
:class:`~muster.services.workflow_driver.WorkflowDriver` for such instances)
decides from the store alone what happens next, as the in-process
:class:`~muster.engine.rollout.RolloutEngine` does in memory, with the same
pure functions: waves from :func:`~muster.domain.rollout_plan.plan_rollout`,
each host's part of a wave as its own workflow instance of the definition with
its verification captures woven in
(:func:`~muster.domain.workflows.rollout_steps.with_captures`; the durable
driver turns its steps into executions the workers claim, so windows,
throttling, approvals, leases and recovery apply), the gate from
:func:`~muster.domain.rollout_gate.judge_wave`, the soak as a timer
(``wake_at``) and :func:`~muster.domain.rollout_gate.judge_soak`, and on a
stop each step's rollback as a one-step instance per host, newest wave first
(:func:`~muster.engine.rollout_rollback.steps_to_undo` and the step decisions
the in-process runner uses).

A pass writes the new state and the instances it starts in one
compare-and-set (:meth:`~muster.store.workflow_durable.DurableWorkflowStore.commit_rollout`):
killed before it commits, it wrote nothing and the next pass decides again;
after, the instances exist and the state names them. So no wave starts twice
on a host, and no decision is lost.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from muster.domain.rollout import host_windows
from muster.domain.rollout_plan import plan_rollout
from muster.domain.throttle import group_key
from muster.domain.workflows import (
    Graph,
    HostOutcome,
    InstanceState,
    InstanceStatus,
    StepResult,
    Workflow,
    parse_workflow,
    validate,
)
from muster.domain.workflows.machine import Event, Kill, Pause, Resume
from muster.domain.workflows.rollout_parse import window_objects
from muster.engine.dispatcher import DispatchPolicy
from muster.engine.rollout_report import report_document
from muster.engine.rollout_result import RolloutStatus
from muster.engine.workflow_store import InstanceRecord, WorkflowRecord
from muster.errors import ConflictError, MusterError, NotFoundError, ValidationError
from muster.services.rollout_state import (
    ROLLOUT,
    begin_rollback,
    iso,
    new_rollout,
    rollout_run,
    when,
)
from muster.services.rollout_undo import run_rollback
from muster.services.rollout_waves import RolloutPass, run_wave
from muster.store.protocols import ServerStore
from muster.store.workflow_durable import InstanceDetail

__all__ = ["ROLLOUT", "ROLLOUT_ACTIONS", "RolloutDriver", "definition_graph"]

_log = logging.getLogger(__name__)

#: What a user may do to a rollout (``kill`` is ``abort``: no rollback).
ROLLOUT_ACTIONS = ("pause", "resume", "abort", "kill", "rollback")

#: The instance status a rollout's status shows as.
_INSTANCE_STATUS = {
    RolloutStatus.RUNNING: InstanceStatus.RUNNING,
    RolloutStatus.PAUSED: InstanceStatus.PAUSED,
    RolloutStatus.SUCCEEDED: InstanceStatus.SUCCEEDED,
    RolloutStatus.FAILED: InstanceStatus.FAILED,
    RolloutStatus.ROLLED_BACK: InstanceStatus.FAILED,
    RolloutStatus.ROLLBACK_FAILED: InstanceStatus.FAILED,
    RolloutStatus.ABORTED: InstanceStatus.KILLED,
}
_graphs: dict[str, Graph] = {}


def definition_graph(definition: Mapping[str, Any]) -> Graph:
    """The validated graph of a definition kept with an instance (a rollout's woven,
    soak or rollback workflow), cached by content."""
    key = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    graph = _graphs.get(key)
    if graph is None:
        if len(_graphs) > 256:
            _graphs.clear()
        graph = _graphs[key] = validate(parse_workflow(dict(definition)))
    return graph


@dataclass
class _Load:
    detail: InstanceDetail
    workflow: Workflow
    rollout: dict[str, Any]
    before: str = field(default="")


class RolloutDriver:
    """Starts rollouts, advances them one pass at a time, applies users' actions.

    ``apply`` applies an event to another instance (a host's part: pause, resume,
    kill) through the workflow driver; ``publish`` publishes the finished rollout's
    report as ``muster rollout publish`` does (the console's drift report reads it).
    """

    def __init__(
        self,
        store: ServerStore,
        *,
        apply: Callable[[str, Event], object],
        publish: Callable[[dict[str, Any]], object] | None = None,
        poll: float = 0.5,
    ) -> None:
        self.store = store
        self.apply = apply
        self.publish = publish
        self.poll = dt.timedelta(seconds=poll)

    # -- starting ---------------------------------------------------------------------

    def start(
        self,
        record: WorkflowRecord,
        params: Mapping[str, Any],
        *,
        targets: str | None,
        created_by: str | None,
        context: Mapping[str, Any],
    ) -> InstanceRecord:
        """Plan the waves (strictly: a selector matching nothing is refused now) and
        store the rollout, queued: the loop starts its first wave."""
        workflow = record.workflow
        hosts = [h.to_host() for h in self.store.list_hosts()]
        plan = plan_rollout(
            workflow, validate(workflow), hosts, params, targets, self.store.clock()
        )
        groups = {h.name: group_key(h.groups) for h in plan.target}
        covering: dict[str, list[str]] = {}
        for selector, text in workflow.windows.items():
            one = host_windows({selector: window_objects(selector, text)}, hosts, plan.target)
            for host, found in one.items():
                if found:
                    covering.setdefault(host, []).append(selector)
        rollout = new_rollout(
            str(uuid.uuid4()), f"MUSTER-CAPTURE-{secrets.token_hex(12)}", plan, groups, covering
        )
        return self.store.create_instance(
            record,
            InstanceState.new([s.id for s in workflow.steps]),
            params=params,
            targets=targets,
            created_by=created_by,
            context={**context, ROLLOUT: rollout},
        )

    # -- one pass ---------------------------------------------------------------------

    def _load(self, instance_id: str) -> _Load:
        detail = self.store.instance_detail(instance_id)
        rec = detail.record
        workflow = self.store.get_workflow(rec.workflow, rec.version).workflow
        rollout = copy.deepcopy(dict(detail.context[ROLLOUT]))
        return _Load(detail, workflow, rollout, json.dumps(rollout, sort_keys=True))

    def advance(self, instance_id: str, params: Mapping[str, Any]) -> dt.datetime | None:
        """One pass over a rollout (ConflictError when another writer moved it first);
        returns when to look again."""
        ld = self._load(instance_id)
        now = self.store.clock()
        p = RolloutPass(
            rollout=ld.rollout,
            workflow=ld.workflow,
            detail=ld.detail,
            params=dict(params),
            now=now,
            policy=DispatchPolicy(),
            status_of=self._child_status,
            results_of=self._results,
        )
        state = ld.detail.record.state
        shown = (state.status, state.message)
        r = p.rollout
        if state.status is InstanceStatus.QUEUED or r["started_at"] is None:
            r["started_at"] = r["started_at"] or iso(now)
        self._control(p)
        if r["phase"] == "waves":
            run_wave(p)
        if r["phase"] == "rollback":
            run_rollback(p)
        published = None
        if r["phase"] == "done" and r.get("finished_at") is None:
            r["finished_at"] = iso(now)
            published = self._report(p)
        self._show(state, r, now)
        changed = json.dumps(r, sort_keys=True) != ld.before or bool(p.children)
        if changed or (state.status, state.message) != shown:
            context = {**ld.detail.context, ROLLOUT: r}
            self.store.commit_rollout(
                instance_id,
                state,
                revision=ld.detail.record.revision,
                context=context,
                children=p.children,
            )
        if published is not None:
            _log.info("rollout %s: report %s published", instance_id, published)
        if r["phase"] == "done":
            return None
        if p.wake is not None and not p.busy:
            return p.wake
        if r["paused"] and not p.busy:
            return now + dt.timedelta(seconds=5)
        # Hosts run: look again after the poll, or sooner for a timer (a delayed start).
        return now + self.poll if p.wake is None else min(p.wake, now + self.poll)

    def _results(self, instance_id: str) -> dict[str, StepResult]:
        """A host's instance's step results, and for a step killed while it ran (an
        abort) what its host runs did: a host where it started has something to roll
        back, though the killed step recorded no result of its own."""
        try:
            detail = self.store.instance_detail(instance_id)
        except NotFoundError:
            return {}
        results = dict(detail.results)
        for sid, link in detail.links.items():
            if sid in results or not link.execution_ids:
                continue
            hosts: dict[str, HostOutcome] = {}
            for eid in link.execution_ids:
                with contextlib.suppress(NotFoundError):
                    for run in self.store.get_execution(eid).host_runs:
                        started = run.started_at is not None
                        hosts[run.host_name] = HostOutcome(
                            host=run.host_name,
                            state=run.state.value if started else "skipped",
                            exit_code=run.exit_code,
                            message=run.message or ("" if started else "never started"),
                        )
            if hosts:
                results[sid] = StepResult(sid, link.attempt, hosts)
        return results

    def _child_status(self, instance_id: str) -> InstanceRecord | None:
        with contextlib.suppress(NotFoundError):
            return self.store.get_instance(instance_id)
        return None

    def _control(self, p: RolloutPass) -> None:
        """The hosts' own instances follow the rollout: killed on an abort, paused
        while it is paused, resumed after (each applied through the workflow driver;
        one already there is left alone)."""
        r = p.rollout
        for iid in active_children(r):
            child = self._child_status(iid)
            if child is None or child.state.status.terminal:
                continue
            event: Event | None = None
            if r["aborted"]:
                event = Kill()
            elif r["paused"] and child.state.status is not InstanceStatus.PAUSED:
                event = Pause()
            elif not r["paused"] and child.state.status is InstanceStatus.PAUSED:
                event = Resume()
            if event is not None:
                with contextlib.suppress(ConflictError, ValidationError, NotFoundError):
                    self.apply(iid, event)

    @staticmethod
    def _show(state: InstanceState, r: Mapping[str, Any], now: dt.datetime) -> None:
        """The instance's own status and message follow the rollout's."""
        status = RolloutStatus(r["status"])
        shown = _INSTANCE_STATUS[status]
        if r["phase"] != "done" and shown.terminal:
            shown = InstanceStatus.RUNNING  # rolling back
        state.status = shown
        state.paused = status is RolloutStatus.PAUSED
        state.message = r.get("message", "")
        state.started_at = state.started_at or when(r.get("started_at")) or now
        state.finished_at = when(r.get("finished_at")) if r["phase"] == "done" else None

    def _report(self, p: RolloutPass) -> str | None:
        """Publish the rollout's report (its id: the rollout's, ``.rollback`` after a
        rollback on request); a report already published under it is left as it is."""
        r = p.rollout
        rid = r["id"] if not r["reports"] else f"{r['id']}.rollback"
        if rid in r["reports"] or self.publish is None:
            return None
        run = rollout_run(r, p.workflow, p.params, self._results)
        run.id = rid
        doc = report_document(run, workflow=p.workflow, params=p.params)
        try:
            self.publish(doc)
        except ConflictError:
            _log.warning("rollout %s: a different report %s exists; kept", r["id"], rid)
        except MusterError:
            _log.exception("rollout %s: the report could not be published", r["id"])
            return None
        r["reports"].append(rid)
        return rid

    # -- users' actions -----------------------------------------------------------------

    def act(self, instance_id: str, action: str) -> None:
        """Pause (no new wave, host or step starts), resume, abort (``kill``: running
        hosts are killed, nothing rolled back), or roll back a failed or aborted
        rollout on request. ConflictError when it does not apply now."""
        if action not in ROLLOUT_ACTIONS:
            raise ValidationError(
                f"unknown action {action!r} for a rollout (one of {', '.join(ROLLOUT_ACTIONS)})",
                field="action",
            )
        for _ in range(5):
            ld = self._load(instance_id)
            r, state = ld.rollout, ld.detail.record.state
            status = RolloutStatus(r["status"])
            if action == "pause":
                if status is not RolloutStatus.RUNNING or r["phase"] != "waves":
                    raise ConflictError(f"the rollout is {status.value}: nothing to pause")
                r["paused"], r["status"] = True, RolloutStatus.PAUSED.value
            elif action == "resume":
                if status is not RolloutStatus.PAUSED:
                    raise ConflictError(f"the rollout is {status.value}, not paused")
                r["paused"], r["status"] = False, RolloutStatus.RUNNING.value
            elif action in ("abort", "kill"):
                if status.terminal or r["phase"] != "waves" or r["aborted"]:
                    raise ConflictError(f"the rollout is {status.value}: nothing to abort")
                r["aborted"], r["paused"] = True, False
                r["status"] = RolloutStatus.RUNNING.value
            else:
                if status not in (RolloutStatus.FAILED, RolloutStatus.ABORTED) or (
                    r["phase"] != "done"
                ):
                    raise ConflictError(
                        f"the rollout is {status.value}: only a failed or aborted rollout "
                        "can be rolled back"
                    )
                begin_rollback(r)
                r["finished_at"] = None
            self._show(state, r, self.store.clock())
            try:
                self.store.commit_rollout(
                    instance_id,
                    state,
                    revision=ld.detail.record.revision,
                    context={**ld.detail.context, ROLLOUT: r},
                )
            except ConflictError as exc:
                if "moved (revision" in str(exc):
                    continue
                raise
            self.store.poke_instance(instance_id)
            return
        raise ConflictError(f"instance {instance_id} is changing too fast; try again")


def active_children(r: Mapping[str, Any]) -> list[str]:
    """The instances of the current wave (its hosts, its soak check) and of the
    rollback in progress that may still be running."""
    out: list[str] = []
    if r["phase"] == "waves" and r["current"] < len(r["waves"]):
        wave = r["waves"][r["current"]]
        out += list(wave["children"].values()) + list(wave["soak_children"].values())
    elif r["phase"] == "rollback":
        out += [h["child"] for h in r["rollback"]["hosts"].values() if h.get("child")]
    return out

"""The rollout driver: a workflow run wave by wave, gated, soaked, rolled back.

For each wave (planned by :func:`muster.domain.rollout.plan_waves`):

1. wait until every host of the wave is inside an open maintenance window with
   the wave's estimated duration left (:func:`~muster.domain.rollout.fit_wave`;
   the wave shows ``waiting_window`` with until when and why);
2. run the workflow, with its verification captures woven in, on each host of
   the wave as its own instance of the one
   :class:`~muster.engine.workflow.WorkflowEngine` (so a host that fails does
   not hold the others back, and the failure threshold means what it says),
   at most ``forks`` hosts at once, ``per_group`` per group, ``delay`` apart;
3. judge the gate: which hosts failed (a task, unreachable included, a
   verification task, or a gating verification's evidence) and whether the
   failure threshold is breached;
4. soak, then run the verification tasks again on the wave.

A stop rolls back (with ``auto_rollback``, or later on request) the hosts
already changed, newest wave first: each step's rollback command, in reverse
dependency order, on the hosts where the step ran. A host whose rollback fails,
or stays unreachable through the retry period, is flagged.

A workflow without a rollout runs as one wave of one instance over its
targets, exactly as :class:`WorkflowEngine` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence

from muster.domain.hosts import Host, TransportKind
from muster.domain.inventory import Inventory
from muster.domain.params import coerce_values
from muster.domain.rollout_gate import judge_soak, judge_wave, merge_results
from muster.domain.rollout_plan import plan_rollout
from muster.domain.rollout_spec import RetrySpec, RolloutSpec
from muster.domain.windows import MaintenanceWindow
from muster.domain.workflows import (
    StepResult,
    Workflow,
    load_workflow_text,
    validate,
)
from muster.domain.workflows.rollout_steps import verification_task_workflow, with_captures
from muster.engine.dispatcher import DispatchPolicy, ExecutionListener
from muster.engine.rollout_approvals import Approver, RolloutApprovals
from muster.engine.rollout_limits import HostLimiter
from muster.engine.rollout_result import (
    RolloutRun,
    RolloutStatus,
    WaveResult,
    WaveStatus,
    settle,
)
from muster.engine.rollout_rollback import RollbackRunner
from muster.engine.rollout_windows import WindowWait
from muster.engine.workflow import ScriptResolver, WorkflowEngine, WorkflowRun
from muster.engine.workflow_store import WorkflowStore
from muster.errors import ConflictError
from muster.transports.base import Transport

__all__ = ["RolloutEngine"]

log = logging.getLogger(__name__)

#: The key of the one instance of a workflow run without a rollout.
_ALL = "*"
#: Longest single sleep while waiting for a window (controls stay responsive).
_WAIT_SLICE = 30.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RolloutEngine:
    """Drives one rollout at a time (see the module docstring).

    ``clock`` and ``sleep`` are injectable so that window waits and soaks can be
    tested on a clock the test controls; host commands always run in real time.
    ``observer`` hears the :class:`RolloutRun` after every change.
    """

    def __init__(
        self,
        transports: Mapping[TransportKind, Transport],
        inventory: Inventory | Sequence[Host],
        *,
        store: WorkflowStore,
        scripts: ScriptResolver | None = None,
        policy: DispatchPolicy | None = None,
        listener: ExecutionListener | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: Callable[[RolloutRun], None] | None = None,
        window_wait: bool = True,
        approver: Approver | None = None,
    ) -> None:
        self.inventory = inventory
        self.policy = policy or DispatchPolicy()
        self.clock = clock
        self.sleep = sleep
        self.observer = observer
        #: False: a wave outside its hosts' windows stops the rollout instead of
        #: waiting for them (``muster run --window-policy fail``).
        self.window_wait = window_wait
        #: Where a paused run is held, once it is ("before wave 2"); empty while it
        #: runs (or is paused but still finishing what had started).
        self.holding = ""
        #: Decides approval steps once per rollout (see :mod:`.rollout_approvals`).
        self.approvals = RolloutApprovals(approver) if approver is not None else None
        self.workflows = WorkflowEngine(
            transports, inventory, store=store, scripts=scripts, policy=policy, listener=listener
        )
        self.run_state: RolloutRun | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._aborted = False
        self._active: set[str] = set()
        self._paused_instances: set[str] = set()
        self._wakeup = asyncio.Event()
        # What a later rollback on request needs.
        self._workflow: Workflow | None = None
        self._params: Mapping[str, object] = {}
        self._spec: RolloutSpec | None = None
        self._ran: list[tuple[WaveResult, dict[str, StepResult]]] = []

    # -- the run ---------------------------------------------------------------------

    async def run(
        self,
        workflow: Workflow | str,
        *,
        params: Mapping[str, object] | None = None,
        targets: str | None = None,
    ) -> RolloutRun:
        """Run ``workflow`` to its end (or its stop, and rollback) and return the result."""
        if isinstance(workflow, str):
            workflow = load_workflow_text(workflow)
        graph = validate(workflow)
        raw = dict(params or {})
        values = coerce_values(workflow.parameters, raw)
        spec = workflow.rollout
        plan = plan_rollout(workflow, graph, self.inventory, values, targets, self.clock())
        waves, by_host = plan.waves, plan.windows
        planned = {h.name for w in waves for h in w}
        state = RolloutRun(
            id=str(uuid.uuid4()),
            workflow=workflow.name,
            unplanned=plan.unplanned,
            started_at=self.clock(),
        )
        state.waves = [WaveResult(i, tuple(h.name for h in w)) for i, w in enumerate(waves)]
        self.run_state = state
        self._workflow, self._params, self._spec = workflow, raw, spec
        state.forecast = list(plan.forecast)
        marker = f"MUSTER-CAPTURE-{secrets.token_hex(12)}"
        woven, captures = with_captures(workflow, marker)
        total = len(planned)
        failed_so_far = 0
        stopped = ""
        previous: float | None = None
        for wave, hosts in zip(state.waves, waves, strict=True):
            if self._aborted:
                break
            await self._hold(f"before wave {wave.index + 1}")
            if self._aborted:
                break
            estimate = (spec.wave_duration if spec is not None else None) or previous or 0.0
            if not await self._wait_window(wave, by_host, estimate):
                stopped = stopped or wave.wait_reason
                break
            wave.status = WaveStatus.RUNNING
            wave.started_at = self.clock()
            self._notify()
            results, runs = await self._run_wave(woven, hosts, raw, targets, spec is not None)
            state.runs.update(runs)
            self._ran.append((wave, results))
            state.task_results = merge_results([state.task_results, results], skip=captures.ids)
            whole = runs.get(_ALL)
            verdict = judge_wave(
                workflow,
                captures,
                marker,
                wave.hosts,
                results,
                values,
                not_succeeded={
                    h: r.message for h, r in runs.items() if r.status.value != "succeeded"
                },
                failed_before=failed_so_far,
                total=total,
                instance_ok=whole is None or whole.status.value == "succeeded",
                instance_message=whole.message if whole is not None else "",
            )
            for ev in verdict.evidence:
                state.verification_results.setdefault(ev.verification, {})[ev.host] = ev
            failures = verdict.failures
            wave.failed_hosts = failures
            failed_so_far += len(failures)
            if self._aborted:
                wave.status = WaveStatus.ABORTED
                wave.finished_at = self.clock()
                break
            wave.gate = verdict.gate
            if wave.gate.passed and spec is not None and spec.soak and wave is not state.waves[-1]:
                wave.status = WaveStatus.SOAKING
                self._notify()
                await self._soak(workflow, spec, wave, hosts, raw)
                failed_so_far += len(wave.failed_hosts) - len(failures)
            wave.finished_at = self.clock()
            previous = wave.duration
            wave.status = WaveStatus.SUCCEEDED if wave.gate.passed else WaveStatus.FAILED
            self._notify()
            if not wave.gate.passed:
                stopped = f"stopped at wave {wave.index + 1}: {wave.gate.why}"
                break
        settle(state, aborted=self._aborted, stopped=stopped, total=total)
        if state.status is RolloutStatus.FAILED and stopped and spec and spec.auto_rollback:
            await self._rollback()
        state.finished_at = self.clock()
        self._notify()
        return state

    # -- controls -------------------------------------------------------------------------

    async def pause(self) -> None:
        """Nothing new starts: no next wave, no next host, no next step on a host."""
        if self.run_state is None or self.run_state.status.terminal:
            raise ConflictError("no running rollout to pause")
        self._resumed.clear()
        self.run_state.status = RolloutStatus.PAUSED
        for iid in list(self._active):
            with contextlib.suppress(ConflictError):
                await self.workflows.pause(iid)
                self._paused_instances.add(iid)
        self._notify()

    async def resume(self) -> None:
        if self.run_state is None or self.run_state.status is not RolloutStatus.PAUSED:
            raise ConflictError("the rollout is not paused")
        self.run_state.status = RolloutStatus.RUNNING
        for iid in list(self._paused_instances):
            with contextlib.suppress(ConflictError):
                await self.workflows.resume(iid)
        self._paused_instances.clear()
        self._resumed.set()
        self._notify()

    async def abort(self) -> None:
        """Stop now without rollback: running hosts are killed, no wave starts."""
        if self.run_state is None or self.run_state.status.terminal:
            raise ConflictError("no running rollout to abort")
        self._aborted = True
        for iid in list(self._active):
            with contextlib.suppress(ConflictError):
                await self.workflows.kill(iid)
        self._resumed.set()
        self._wakeup.set()

    async def rollback(self) -> RolloutRun:
        """Roll back a rollout that stopped (failed or aborted) without auto-rollback."""
        state = self.run_state
        if state is None or state.status not in (RolloutStatus.FAILED, RolloutStatus.ABORTED):
            raise ConflictError("only a failed or aborted rollout can be rolled back")
        await self._rollback()
        state.finished_at = self.clock()
        self._notify()
        return state

    async def close(self) -> None:
        await self.workflows.close()

    # -- pieces ------------------------------------------------------------------------------

    async def _hold(self, where: str) -> None:
        """Wait out a pause at a safe point, saying where (the observer hears it)."""
        if self._resumed.is_set():
            return
        self.holding = where
        self._notify()
        try:
            await self._resumed.wait()
        finally:
            self.holding = ""

    def _notify(self) -> None:
        if self.observer is not None and self.run_state is not None:
            try:
                self.observer(self.run_state)
            except Exception:
                log.exception("rollout observer failed")

    def _all_hosts(self) -> list[Host]:
        inv = self.inventory
        return inv.all_hosts() if isinstance(inv, Inventory) else list(inv)

    async def _wait_window(
        self, wave: WaveResult, by_host: Mapping[str, Sequence[MaintenanceWindow]], estimate: float
    ) -> bool:
        """Wait until the wave fits its hosts' windows; False when it never will."""
        if not by_host:
            return True
        return await WindowWait(
            {h: by_host.get(h, ()) for h in wave.hosts},
            clock=self.clock,
            sleep=self.sleep,
            wakeup=self._wakeup,
            resumed=self._resumed,
            aborted=lambda: self._aborted,
            notify=self._notify,
            wait=self.window_wait,
        ).until_fit(wave, estimate)

    def _throttle(self, workflow: Workflow) -> tuple[int, int | None, float]:
        t = workflow.throttle
        forks = t.forks or self.policy.forks
        per_group = t.per_group if t.per_group is not None else self.policy.per_group
        return forks, per_group, t.delay or self.policy.delay

    async def _run_wave(
        self,
        woven: Workflow,
        hosts: Sequence[Host],
        params: Mapping[str, object],
        targets: str | None,
        per_host: bool,
    ) -> tuple[dict[str, StepResult], dict[str, WorkflowRun]]:
        """Run the wave; return the merged step results and the instances by key."""
        if not per_host:
            run = await self._instance(woven, params, targets=targets)
            return dict(run.results), {_ALL: run}
        forks, per_group, delay = self._throttle(woven)
        limiter = HostLimiter(forks, per_group, delay, self.sleep, self._resumed)

        async def one(host: Host) -> WorkflowRun | None:
            async with limiter.slot(host):
                if self._aborted:
                    return None
                return await self._instance(woven, params, inventory=[host], lenient=True)

        finished = await asyncio.gather(*(one(h) for h in hosts))
        runs = {h.name: r for h, r in zip(hosts, finished, strict=True) if r is not None}
        return merge_results(r.results for r in runs.values()), runs

    async def _instance(
        self,
        workflow: Workflow,
        params: Mapping[str, object],
        *,
        targets: str | None = None,
        inventory: Sequence[Host] | None = None,
        lenient: bool = False,
    ) -> WorkflowRun:
        iid = await self.workflows.start(
            workflow, params=params, targets=targets, inventory=inventory, lenient=lenient
        )
        self._active.add(iid)
        try:
            if not self._resumed.is_set():
                with contextlib.suppress(ConflictError):
                    await self.workflows.pause(iid)
                    self._paused_instances.add(iid)
            if self.approvals is not None:
                await self.approvals.settle(self.workflows, iid, workflow)
            return await self.workflows.wait(iid)
        finally:
            self._active.discard(iid)
            self._paused_instances.discard(iid)

    async def _soak(
        self,
        workflow: Workflow,
        spec: RolloutSpec,
        wave: WaveResult,
        hosts: Sequence[Host],
        params: Mapping[str, object],
    ) -> None:
        """Wait ``soak`` seconds, then run the verification tasks again on the wave."""
        await self.sleep(spec.soak)
        await self._resumed.wait()
        if not spec.verification_tasks or self._aborted:
            return
        check = verification_task_workflow(workflow, spec.verification_tasks)
        healthy = [h for h in hosts if h.name not in wave.failed_hosts]
        results, _ = await self._run_wave(check, healthy, params, None, per_host=True)
        wave.soak_results = dict(results)
        assert wave.gate is not None
        again, wave.gate = judge_soak(
            wave.gate, [h.name for h in healthy], results, spec.verification_tasks
        )
        wave.failed_hosts.update(again)

    # -- rollback -------------------------------------------------------------------------

    async def _rollback(self) -> None:
        """Roll back every wave that ran, newest first (see :mod:`.rollout_rollback`)."""
        state, workflow = self.run_state, self._workflow
        assert state is not None and workflow is not None
        forks, per_group, delay = self._throttle(workflow)
        self._aborted = False
        self._resumed.set()

        async def run_on_host(undo: Workflow, host: Host) -> WorkflowRun:
            return await self._instance(undo, self._params, inventory=[host])

        runner = RollbackRunner(
            workflow,
            run_on_host,
            retry=self._spec.rollback_retry if self._spec is not None else RetrySpec(tries=1),
            limiter=lambda: HostLimiter(forks, per_group, delay, self.sleep, self._resumed),
            sleep=self.sleep,
            clock=self.clock,
            hosts={h.name: h for h in self._all_hosts()},
            notify=self._notify,
        )
        await runner.waves(self._ran, state.rollback)
        if state.flagged_hosts:
            state.status = RolloutStatus.ROLLBACK_FAILED
            state.message += f"; rollback failed on {', '.join(state.flagged_hosts)} (flagged)"
        else:
            state.status = RolloutStatus.ROLLED_BACK
            state.message += "; rolled back"

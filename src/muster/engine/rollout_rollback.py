"""Rolling back a stopped rollout: newest wave first, each host on its own.

On each host, the rollback command of every step that ran there (its host run
started: succeeded, failed, timed out, lost) runs in reverse dependency order,
one at a time; a failing one does not stop the others (each is recorded). A
host that cannot be reached is tried again after the spec's retry delays
(``rollback_retry``: the host may come back); when it stays unreachable the
remaining rollback steps are not attempted and the host is flagged. Flagged
hosts are listed in the result, never hidden.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence

from muster.domain.hosts import Host
from muster.domain.rollout_spec import RetrySpec
from muster.domain.states import FailureReason
from muster.domain.workflows import HostOutcome, StepResult, Workflow, validate
from muster.domain.workflows.rollout_steps import rollback_workflow
from muster.engine.rollout_limits import HostLimiter
from muster.engine.rollout_result import RollbackOutcome, RollbackState, WaveResult, WaveStatus
from muster.engine.workflow import WorkflowRun
from muster.errors import MusterError

__all__ = [
    "RollbackRunner",
    "end_rollback_step",
    "finish_rollback",
    "retry_rollback",
    "steps_to_undo",
]

#: A host run that ended for one of these never reached the host: its rollback waits.
UNREACHED = frozenset({FailureReason.UNREACHABLE.value, FailureReason.CONNECT_TIMEOUT.value})
#: States of a step on a host that mean it did not start there (nothing to undo).
_NOT_STARTED = frozenset({"skipped", "rejected", "queued", "pending_approval"})

#: Runs a one-step workflow on one host and returns the finished instance.
RunOnHost = Callable[[Workflow, Host], Awaitable[WorkflowRun]]


def steps_to_undo(workflow: Workflow, results: Mapping[str, StepResult], host: str) -> list[str]:
    """Steps with a rollback command that started on ``host``, newest (in dependency
    order) first."""
    order = validate(workflow).order
    out: list[str] = []
    for sid in reversed(order):
        if workflow.step(sid).rollback is None or sid not in results:
            continue
        outcome = results[sid].hosts.get(host)
        if outcome is not None and outcome.state not in _NOT_STARTED:
            out.append(sid)
    return out


class RollbackRunner:
    def __init__(
        self,
        workflow: Workflow,
        run_on_host: RunOnHost,
        *,
        retry: RetrySpec,
        limiter: Callable[[], HostLimiter],
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], dt.datetime],
        hosts: Mapping[str, Host],
        notify: Callable[[], None],
    ) -> None:
        self.workflow = workflow
        self._run = run_on_host
        self._retry = retry
        self._limiter = limiter
        self._sleep = sleep
        self._clock = clock
        self._hosts = hosts
        self._notify = notify

    async def waves(
        self,
        ran: Sequence[tuple[WaveResult, Mapping[str, StepResult]]],
        into: dict[str, RollbackOutcome],
    ) -> None:
        """Roll back each wave in ``ran``, newest first; outcomes go ``into`` by host."""
        for wave, results in reversed(ran):
            wave.status = WaveStatus.ROLLING_BACK
            self._notify()
            limiter = self._limiter()

            async def undo(
                name: str,
                wave: WaveResult,
                results: Mapping[str, StepResult],
                limiter: HostLimiter,
            ) -> None:
                host = self._hosts.get(name, Host(name))
                steps = steps_to_undo(self.workflow, results, name)
                async with limiter.slot(host):
                    into[name] = await self.host(host, wave.index, steps)
                self._notify()

            await asyncio.gather(*(undo(h, wave, results, limiter) for h in wave.hosts))
            flagged = any(into[h].state.flagged for h in wave.hosts)
            wave.status = WaveStatus.ROLLBACK_FAILED if flagged else WaveStatus.ROLLED_BACK
            self._notify()

    async def host(self, host: Host, wave: int, steps: Sequence[str]) -> RollbackOutcome:
        """Run ``steps``' rollback commands on ``host``, in order."""
        outcome = RollbackOutcome(
            host.name, wave, RollbackState.NOTHING_TO_DO, started_at=self._clock()
        )
        if not steps:
            outcome.message = "no step with a rollback command ran on this host"
            outcome.finished_at = self._clock()
            return outcome
        failed: list[str] = []
        for done, sid in enumerate(steps):
            undo = rollback_workflow(self.workflow, self.workflow.step(sid))
            waits = self._retry.delays()
            while True:
                outcome.attempts += 1
                try:
                    run = await self._run(undo, host)
                except MusterError as exc:  # e.g. a parameter no longer valid: recorded
                    why, got = str(exc), None
                    break
                result = run.results.get("rollback")
                got = result.hosts.get(host.name) if result is not None else None
                why = run.message
                if got is not None:
                    outcome.steps[sid] = got
                if not retry_rollback(got, bool(waits)):
                    break
                await self._sleep(waits.pop(0))
            if end_rollback_step(outcome, steps, done, got, why, failed, self._clock()):
                return outcome
        finish_rollback(outcome, steps, failed, self._clock())
        return outcome


def retry_rollback(got: HostOutcome | None, waits_left: bool) -> bool:
    """Whether a rollback step's attempt is tried again: the host was not reached,
    and the retry period is not over."""
    return got is not None and got.reason in UNREACHED and waits_left


def end_rollback_step(
    outcome: RollbackOutcome,
    steps: Sequence[str],
    done: int,
    got: HostOutcome | None,
    why: str,
    failed: list[str],
    now: dt.datetime,
) -> bool:
    """Record the last attempt of ``steps[done]``; True when the host's rollback ends
    here (unreachable through the retry period: the rest is not attempted, flagged)."""
    sid = steps[done]
    if got is not None and got.reason in UNREACHED:
        outcome.state = RollbackState.UNREACHABLE
        outcome.message = (
            f"unreachable through {outcome.attempts} attempt(s) while rolling back "
            f"{sid} ({got.message}); not attempted: "
            f"{', '.join(steps[done + 1 :]) or 'nothing'}"
        )
        outcome.finished_at = now
        return True
    if got is None or not got.succeeded:
        failed.append(sid)
        if got is None:
            outcome.message = f"{sid}: {why}"
    return False


def finish_rollback(
    outcome: RollbackOutcome, steps: Sequence[str], failed: Sequence[str], now: dt.datetime
) -> None:
    """The host's rollback once every step was attempted: rolled back, or failed
    (flagged) naming the steps whose rollback failed."""
    if failed:
        outcome.state = RollbackState.FAILED
        outcome.message = f"rollback of {', '.join(failed)} failed" + (
            f" ({outcome.message})" if outcome.message else ""
        )
    else:
        outcome.state = RollbackState.ROLLED_BACK
        outcome.message = f"rolled back {', '.join(steps)}"
    outcome.finished_at = now

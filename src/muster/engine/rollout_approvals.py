"""Approval steps inside a rollout run in this process: one question per step.

A rollout runs one workflow instance per host, so an approval step would ask
once per host, and in a local run nobody else could answer it anyway. With an
``approver`` (the command line gives one: a prompt on a terminal, ``--approve``
/ ``--yes``, or a refusal that names the step), the operator decides each
approval step once for the whole rollout and every host's instance gets that
answer, recorded with who decided. Without one, approval steps wait for a vote
as in any workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from muster.domain.workflows import Workflow
from muster.engine.workflow import WorkflowEngine
from muster.errors import ConflictError

__all__ = ["ApprovalAnswer", "Approver", "RolloutApprovals"]


@dataclass(frozen=True, slots=True)
class ApprovalAnswer:
    approved: bool
    #: Who decided (recorded in the step's message).
    by: str
    reason: str = ""


#: Asked with an approval step's id and its title (the step's name, else its id).
Approver = Callable[[str, str], Awaitable[ApprovalAnswer]]


class RolloutApprovals:
    """One rollout's answers: asked at most once per step, shared by every host."""

    def __init__(self, approver: Approver) -> None:
        self._approver = approver
        self._answers: dict[str, asyncio.Future[ApprovalAnswer]] = {}

    async def decide(self, step: str, title: str) -> ApprovalAnswer:
        """The answer for ``step``, asked the first time any host reaches it."""
        answer = self._answers.get(step)
        if answer is None:
            answer = asyncio.ensure_future(self._approver(step, title))
            self._answers[step] = answer
        return await asyncio.shield(answer)

    async def settle(self, workflows: WorkflowEngine, instance_id: str, workflow: Workflow) -> None:
        """Answer every approval the instance of ``workflow`` asks for, until it ends."""
        while True:
            for step in list(workflows.pending_approvals(instance_id)):
                answer = await self.decide(step, _title(workflow, step))
                with contextlib.suppress(ConflictError):  # decided meanwhile (killed)
                    await workflows.settle_approval(
                        instance_id, step, answer.approved, answer.by, answer.reason
                    )
            await workflows.wait_for(
                instance_id,
                lambda s: s.status.terminal or bool(workflows.pending_approvals(instance_id)),
                timeout=None,
            )
            if workflows.get(instance_id).status.terminal:
                return


def _title(workflow: Workflow, step: str) -> str:
    try:
        found = workflow.step(step)
    except KeyError:
        return step
    if found.approval is not None and found.approval.title:
        return found.approval.title
    return found.name or step

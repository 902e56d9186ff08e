"""Approval steps in a rollout run from the command line: the operator decides.

Nobody else can vote in a local run, so each approval step is decided once for
the whole rollout (:mod:`muster.engine.rollout_approvals`) by whoever runs the
command: ``--approve STEP`` or ``--yes`` decide ahead; otherwise, on a
terminal, ``Approve step STEP (TITLE)? [y/N]`` asks when the first host
reaches it; without a terminal the step is refused with a reason that names it
and says how to pre-approve, and the hosts' gate fails on it.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Collection

from muster.cli.rollout_control import RolloutControl
from muster.engine.rollout_approvals import ApprovalAnswer, Approver

__all__ = ["cli_approver"]


def cli_approver(
    control: Callable[[], RolloutControl | None],
    approved: Collection[str],
    *,
    yes: bool,
    operator: str | None = None,
) -> Approver:
    """The approver of one command: pre-approved steps, else the terminal, else no.

    ``control`` returns the run's :class:`RolloutControl` (it owns the terminal).
    """
    who = operator or getpass.getuser()

    async def decide(step: str, title: str) -> ApprovalAnswer:
        if yes or step in approved:
            flag = "--yes" if yes and step not in approved else f"--approve {step}"
            return ApprovalAnswer(True, who, f"approved ahead with {flag}")
        terminal = control()
        shown = f" ({title})" if title and title != step else ""
        line = None
        if terminal is not None and terminal.interactive:
            line = await terminal.ask(f"Approve step {step}{shown}? [y/N] ")
            if line is None:
                return ApprovalAnswer(
                    False, who, f"approval step {step!r} was not answered (aborted, or input ended)"
                )
        if line is None:
            return ApprovalAnswer(
                False,
                who,
                f"approval step {step!r} needs the operator's decision and there is no "
                f"terminal to ask; pre-approve it with --approve {step} or --yes",
            )
        if line.strip().lower() in ("y", "yes"):
            return ApprovalAnswer(True, who, "approved at the prompt")
        return ApprovalAnswer(False, who, f"approval step {step!r} refused at the prompt")

    return decide

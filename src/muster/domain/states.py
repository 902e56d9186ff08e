"""HostRun and Execution states, their legal transitions, and the roll-up.

The execution's status is a pure function of its host runs' states, so it is
never stored independently of them and can never disagree with them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = [
    "TERMINAL_STATES",
    "ExecutionStatus",
    "FailureReason",
    "HostRunState",
    "Priority",
    "check_transition",
    "host_answered",
    "rollup",
]


class HostRunState(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    LOST = "lost"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[HostRunState] = frozenset(
    {
        HostRunState.SUCCEEDED,
        HostRunState.FAILED,
        HostRunState.TIMED_OUT,
        HostRunState.CANCELLED,
        HostRunState.SKIPPED,
        HostRunState.REJECTED,
        HostRunState.LOST,
    }
)

_S = HostRunState
_ALLOWED: dict[HostRunState, frozenset[HostRunState]] = {
    _S.PENDING_APPROVAL: frozenset({_S.QUEUED, _S.REJECTED, _S.CANCELLED, _S.SKIPPED}),
    # queued -> failed covers "nobody picked it up within 30 minutes" and
    # pre-flight failures (unreachable host) decided before the run started.
    _S.QUEUED: frozenset({_S.RUNNING, _S.CANCELLED, _S.SKIPPED, _S.FAILED, _S.TIMED_OUT}),
    # running -> queued is a lease expiry before the command was sent.
    _S.RUNNING: frozenset(
        {_S.SUCCEEDED, _S.FAILED, _S.TIMED_OUT, _S.CANCELLED, _S.LOST, _S.QUEUED}
    ),
}


def check_transition(current: HostRunState, new: HostRunState) -> None:
    """Raise :class:`StateTransitionError` unless ``current -> new`` is legal."""
    from muster.errors import StateTransitionError

    if new not in _ALLOWED.get(current, frozenset()):
        raise StateTransitionError(f"host run cannot go from {current.value} to {new.value}")


class ExecutionStatus(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self not in {
            ExecutionStatus.PENDING_APPROVAL,
            ExecutionStatus.QUEUED,
            ExecutionStatus.RUNNING,
        }


def rollup(states: Iterable[HostRunState]) -> ExecutionStatus:
    """The execution status implied by its host runs' states.

    First match wins: any host pending approval -> pending_approval; any
    running, or queued beside finished ones -> running; all queued -> queued.
    With every host terminal: all skipped -> skipped; all rejected ->
    rejected; any failed or lost -> failed (seed 000: "any-failed -> failed");
    any timed out -> timed_out; any cancelled -> cancelled; else succeeded.
    Skipped hosts never fail a run: they were never dispatched.
    """
    counts: dict[HostRunState, int] = {}
    for s in states:
        counts[s] = counts.get(s, 0) + 1
    total = sum(counts.values())
    if not total:
        return ExecutionStatus.SUCCEEDED
    if counts.get(_S.PENDING_APPROVAL):
        return ExecutionStatus.PENDING_APPROVAL
    if counts.get(_S.RUNNING):
        return ExecutionStatus.RUNNING
    queued = counts.get(_S.QUEUED, 0)
    if queued:
        return ExecutionStatus.QUEUED if queued == total else ExecutionStatus.RUNNING
    if counts.get(_S.SKIPPED, 0) == total:
        return ExecutionStatus.SKIPPED
    if counts.get(_S.REJECTED, 0) == total:
        return ExecutionStatus.REJECTED
    if counts.get(_S.FAILED) or counts.get(_S.LOST) or counts.get(_S.REJECTED):
        return ExecutionStatus.FAILED
    if counts.get(_S.TIMED_OUT):
        return ExecutionStatus.TIMED_OUT
    if counts.get(_S.CANCELLED):
        return ExecutionStatus.CANCELLED
    return ExecutionStatus.SUCCEEDED


class Priority(enum.IntEnum):
    """Claim order: higher value is picked first."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


class FailureReason(enum.StrEnum):
    """Why a host run did not succeed; precise so operators can act on it."""

    UNREACHABLE = "unreachable"
    CONNECT_TIMEOUT = "connect_timeout"
    AUTH_FAILED = "auth_failed"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    COMMAND_FAILED = "command_failed"
    TIMED_OUT = "timed_out"
    CONNECTION_LOST = "connection_lost"
    SHELL_UNAVAILABLE = "shell_unavailable"
    CANCELLED = "cancelled"
    #: The transport failed on its own (raised, or none is configured for the host).
    TRANSPORT_ERROR = "transport_error"
    #: The plan could not be built (a pinned version gone, a value no shell can carry).
    PLAN_ERROR = "plan_error"
    #: The host was deleted between queueing and running.
    HOST_DELETED = "host_deleted"
    WORKER_LOST = "worker_lost"
    NOT_PICKED_UP = "not_picked_up"
    #: No maintenance window covering the host was open (an in-process run told to fail).
    OUTSIDE_WINDOW = "outside_window"


#: Reasons that say the host was reached even though no exit code came back.
_ANSWERED_REASONS = frozenset(
    {FailureReason.COMMAND_FAILED, FailureReason.TIMED_OUT, FailureReason.CONNECTION_LOST}
)


def host_answered(exit_code: int | None, reason: FailureReason | str | None) -> bool:
    """Whether a finished run shows that its host answered (its ``last_contact``).

    An exit code means the command ran there; a command that ran past its
    timeout or a connection lost mid-run had reached the host too. A refused
    or timed-out connection, a failed login, a plan that was never sent: no.
    """
    if exit_code is not None:
        return True
    return reason is not None and str(reason) in _ANSWERED_REASONS

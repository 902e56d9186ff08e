"""Execution records: one request and its host runs, as plain data.

A :class:`HostRun` changes state only through :meth:`HostRun.transition`,
which applies the one transition table in :mod:`muster.domain.states`, so a
terminal state never changes and every timestamp is set by the move that
implies it. An :class:`Execution`'s status is never stored: it is the roll-up
of its host runs' states, computed on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from muster.domain.hosts import Host
from muster.domain.states import (
    ExecutionStatus,
    FailureReason,
    HostRunState,
    check_transition,
    rollup,
)

__all__ = ["Execution", "HostRun"]

_UNSUCCESSFUL = frozenset({HostRunState.FAILED, HostRunState.TIMED_OUT, HostRunState.LOST})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True, eq=False)
class HostRun:
    """One host's part of an execution (mutable, but only through ``transition``)."""

    host: str
    host_id: str | None = None
    state: HostRunState = HostRunState.QUEUED
    attempt: int = 1
    exit_code: int | None = None
    #: Captured output, already masked and bounded (see ``muster.domain.output``).
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    #: Bytes each stream produced in total, stored or not.
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: FailureReason | None = None
    message: str = ""
    #: Structured ``@@{json}`` events the host printed on stdout, in order.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Events printed but not kept: past the capture's count or byte budget.
    events_dropped: int = 0

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish; ``None`` until both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    def transition(
        self,
        new_state: HostRunState,
        *,
        at: datetime | None = None,
        exit_code: int | None = None,
        reason: FailureReason | None = None,
        message: str | None = None,
    ) -> None:
        """Move to ``new_state`` or raise ``StateTransitionError``.

        Entering ``running`` stamps ``started_at``; entering a terminal state
        stamps ``finished_at``; going back to ``queued`` (a lease expired
        before the command was sent) clears the start.
        """
        check_transition(self.state, new_state)
        when = at or _now()
        self.state = new_state
        if new_state is HostRunState.RUNNING:
            self.started_at = when
        elif new_state is HostRunState.QUEUED:
            self.queued_at = when
            self.started_at = None
        elif new_state.terminal:
            self.finished_at = when
        if exit_code is not None:
            self.exit_code = exit_code
        if reason is not None:
            self.reason = reason
        if message is not None:
            self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "host_id": self.host_id,
            "state": self.state.value,
            "attempt": self.attempt,
            "exit_code": self.exit_code,
            "reason": self.reason.value if self.reason else None,
            "message": self.message,
            "queued_at": _iso(self.queued_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration": self.duration,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "stdout_bytes": self.stdout_bytes,
            "stderr_bytes": self.stderr_bytes,
            "events": list(self.events),
            "events_dropped": self.events_dropped,
        }


@dataclass(slots=True, eq=False)
class Execution:
    """One request: what runs (``description`` and the pinned identity) and where."""

    id: str
    description: str
    host_runs: dict[str, HostRun] = field(default_factory=dict)
    created_at: datetime = field(default_factory=_now)
    script_name: str | None = None
    script_version: int | None = None
    content_hash: str | None = None
    command: str | None = None

    @classmethod
    def create(
        cls,
        *,
        id: str,
        description: str,
        hosts: Iterable[Host] = (),
        created_at: datetime | None = None,
        **identity: Any,
    ) -> Execution:
        """A new execution with one queued host run per distinct host name.

        A host named twice runs once: host runs are keyed by host name.
        """
        when = created_at or _now()
        execution = cls(id=id, description=description, created_at=when, **identity)
        for host in hosts:
            execution.add_host(host, at=when)
        return execution

    def add_host(self, host: Host, *, at: datetime | None = None) -> HostRun:
        """The host run for ``host``, created queued when there is none yet."""
        run = self.host_runs.get(host.name)
        if run is None:
            run = HostRun(host=host.name, host_id=host.id, queued_at=at or _now())
            self.host_runs[host.name] = run
        return run

    @property
    def status(self) -> ExecutionStatus:
        return rollup(r.state for r in self.host_runs.values())

    @property
    def finished_at(self) -> datetime | None:
        """When the last host run ended, once every one has."""
        runs = self.host_runs.values()
        if not runs or not all(r.state.terminal for r in runs):
            return None
        return max((r.finished_at for r in runs if r.finished_at), default=None)

    @property
    def successful_hosts(self) -> list[str]:
        return self._named(lambda s: s is HostRunState.SUCCEEDED)

    @property
    def failed_hosts(self) -> list[str]:
        """Hosts that failed, timed out or were lost."""
        return self._named(lambda s: s in _UNSUCCESSFUL)

    @property
    def skipped_hosts(self) -> list[str]:
        return self._named(lambda s: s is HostRunState.SKIPPED)

    @property
    def counts(self) -> Mapping[str, int]:
        out: dict[str, int] = {}
        for r in self.host_runs.values():
            out[r.state.value] = out.get(r.state.value, 0) + 1
        return out

    def _named(self, keep: Any) -> list[str]:
        return [name for name, r in self.host_runs.items() if keep(r.state)]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document: status, counts, and every host run."""
        runs = self.host_runs.values()
        return {
            "id": self.id,
            "description": self.description,
            "script_name": self.script_name,
            "script_version": self.script_version,
            "content_hash": self.content_hash,
            "command": self.command,
            "status": self.status.value,
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "counts": dict(self.counts),
            "hosts": [r.to_dict() for r in runs],
            "skipped_hosts": [
                {"host": r.host, "reason": r.message or (r.reason.value if r.reason else "")}
                for r in runs
                if r.state is HostRunState.SKIPPED
            ],
        }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None

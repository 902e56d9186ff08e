"""An instance's state: per step, and for the whole, as plain serialisable data.

The state machine (:mod:`.machine`) is the only writer; drivers persist it
(``to_dict``/``from_dict``, or per step with :attr:`InstanceState.changed`
telling which steps moved since the last save) and read it to show progress.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["InstanceState", "InstanceStatus", "StepState", "StepStatus", "WaitReason"]


class StepStatus(enum.StrEnum):
    #: Not started: not yet routed to, waiting for dependencies, paused, or between retries.
    PENDING = "pending"
    #: Running on its hosts.
    RUNNING = "running"
    #: Waiting for an approval or a delay (``wait_reason`` says which).
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Never ran: its route was not taken, a dependency did not succeed, or the instance aborted.
    SKIPPED = "skipped"
    KILLED = "killed"
    #: Its worker died after the command was sent; the outcome on the host is unknown.
    LOST = "lost"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
        StepStatus.KILLED,
        StepStatus.LOST,
    }
)
#: Ends that count as a failure of the step (routing to ``on_failure``, or aborting).
FAILED_ENDS = frozenset({StepStatus.FAILED, StepStatus.KILLED, StepStatus.LOST})


class WaitReason(enum.StrEnum):
    APPROVAL = "approval"
    DELAY = "delay"
    WINDOW = "window"
    PAUSED = "paused"
    RETRY = "retry"


class InstanceStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def terminal(self) -> bool:
        return self in (InstanceStatus.SUCCEEDED, InstanceStatus.FAILED, InstanceStatus.KILLED)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(slots=True)
class StepState:
    """One step's progress. ``attempt`` counts starts (0: never started)."""

    id: str
    status: StepStatus = StepStatus.PENDING
    #: Routed to (or active from the start): it runs once its dependencies succeed.
    active: bool = False
    attempt: int = 0
    wait_reason: WaitReason | None = None
    #: When a delay ends, an approval's deadline passes, or a retry is due.
    wake_at: datetime | None = None
    paused: bool = False
    paused_until: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str = ""
    #: A conditional's outcome (the branch taken).
    branch: bool | None = None
    #: A failure that its ``on_failure`` route handled (the instance does not fail for it).
    handled: bool = False
    #: Per host: the host run's state, for display (outputs live in StepResult).
    hosts: dict[str, str] = field(default_factory=dict)
    #: What the driver runs the step as (the server's execution id); opaque here.
    execution_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "active": self.active,
            "attempt": self.attempt,
            "wait_reason": self.wait_reason.value if self.wait_reason else None,
            "wake_at": _iso(self.wake_at),
            "paused": self.paused,
            "paused_until": _iso(self.paused_until),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "message": self.message,
            "branch": self.branch,
            "handled": self.handled,
            "hosts": dict(self.hosts),
            "execution_id": self.execution_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepState:
        return cls(
            id=data["id"],
            status=StepStatus(data["status"]),
            active=bool(data.get("active", False)),
            attempt=int(data.get("attempt", 0)),
            wait_reason=WaitReason(data["wait_reason"]) if data.get("wait_reason") else None,
            wake_at=_when(data.get("wake_at")),
            paused=bool(data.get("paused", False)),
            paused_until=_when(data.get("paused_until")),
            started_at=_when(data.get("started_at")),
            finished_at=_when(data.get("finished_at")),
            message=data.get("message", ""),
            branch=data.get("branch"),
            handled=bool(data.get("handled", False)),
            hosts=dict(data.get("hosts") or {}),
            execution_id=data.get("execution_id"),
        )


@dataclass(slots=True)
class InstanceState:
    """The whole instance. ``changed`` (not serialised) lists the steps moved since a
    driver last cleared it, so a store can write only those."""

    steps: dict[str, StepState]
    status: InstanceStatus = InstanceStatus.QUEUED
    paused: bool = False
    paused_until: datetime | None = None
    #: A step failed with no route for it (or routed to ``fail``): nothing new starts.
    failing: bool = False
    killed: bool = False
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    changed: set[str] = field(default_factory=set)
    #: Index kept by the state machine (not serialised): steps running or waiting,
    #: pending steps held by a pause or a retry delay, pending steps that are active.
    #: ``dirty`` names the steps whose membership must be looked at again.
    busy: set[str] = field(default_factory=set, repr=False, compare=False)
    held: set[str] = field(default_factory=set, repr=False, compare=False)
    pending_active: set[str] = field(default_factory=set, repr=False, compare=False)
    dirty: set[str] = field(default_factory=set, repr=False, compare=False)
    indexed: bool = field(default=False, repr=False, compare=False)

    def sync_index(self) -> None:
        """Bring ``busy``/``held``/``pending_active`` up to date in O(dirty steps), so
        the machine never scans every step per event (10,000-step workflows)."""
        todo: Iterable[str] = self.dirty if self.indexed else list(self.steps)
        for sid in todo:
            st = self.steps[sid]
            pending = st.status is StepStatus.PENDING
            for bucket, member in (
                (self.busy, st.status in (StepStatus.RUNNING, StepStatus.WAITING)),
                (self.held, pending and (st.paused or st.wait_reason is not None)),
                (self.pending_active, pending and st.active),
            ):
                if member:
                    bucket.add(sid)
                else:
                    bucket.discard(sid)
        self.dirty.clear()
        self.indexed = True

    @classmethod
    def new(cls, step_ids: list[str] | tuple[str, ...]) -> InstanceState:
        return cls(steps={sid: StepState(id=sid) for sid in step_ids})

    @property
    def wait_reason(self) -> WaitReason | None:
        """Why a ``waiting``/``paused`` instance waits (the first waiting step's reason)."""
        if self.status is InstanceStatus.PAUSED:
            return WaitReason.PAUSED
        if self.status is not InstanceStatus.WAITING:
            return None
        for st in self.steps.values():
            if st.status is StepStatus.WAITING or (
                st.status is StepStatus.PENDING and st.wait_reason
            ):
                return st.wait_reason
        return None

    def to_dict(self) -> dict[str, Any]:
        return {**self.fields_dict(), "steps": [s.to_dict() for s in self.steps.values()]}

    def fields_dict(self) -> dict[str, Any]:
        """The instance-level fields alone (a store that keeps a row per step writes
        these plus the ``changed`` steps)."""
        return {
            "status": self.status.value,
            "paused": self.paused,
            "paused_until": _iso(self.paused_until),
            "failing": self.failing,
            "killed": self.killed,
            "message": self.message,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstanceState:
        steps = [StepState.from_dict(s) for s in data.get("steps", [])]
        return cls(
            steps={s.id: s for s in steps},
            status=InstanceStatus(data.get("status", "queued")),
            paused=bool(data.get("paused", False)),
            paused_until=_when(data.get("paused_until")),
            failing=bool(data.get("failing", False)),
            killed=bool(data.get("killed", False)),
            message=data.get("message", ""),
            started_at=_when(data.get("started_at")),
            finished_at=_when(data.get("finished_at")),
        )

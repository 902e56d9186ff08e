"""What a host step left behind, per host: the values ``{{step_X...}}`` reads.

A driver records one :class:`StepResult` per step attempt (the in-process
driver from the dispatcher's host runs, the server from an execution's host
runs); both render later steps from them with the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HostOutcome", "StepResult", "StepVerdict", "judge_step", "merge_events"]


@dataclass(frozen=True, slots=True)
class HostOutcome:
    """One host's result of a step (output already masked and bounded)."""

    host: str
    #: The host run's state (a HostRunState value: ``succeeded``, ``failed`` ...).
    state: str
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    #: The ``@@{json}`` events merged in order (later keys win).
    json: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    duration: float | None = None
    #: Why it did not succeed (a FailureReason value: ``unreachable`` ...), when known.
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "json": dict(self.json),
            "message": self.message,
            "duration": self.duration,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostOutcome:
        return cls(
            host=data["host"],
            state=data["state"],
            exit_code=data.get("exit_code"),
            stdout=data.get("stdout", ""),
            stderr=data.get("stderr", ""),
            json=dict(data.get("json") or {}),
            message=data.get("message", ""),
            duration=data.get("duration"),
            reason=data.get("reason"),
        )


@dataclass(frozen=True, slots=True)
class StepResult:
    """Every host's outcome of one attempt of a host step."""

    step_id: str
    attempt: int
    hosts: Mapping[str, HostOutcome]

    @property
    def succeeded(self) -> bool:
        """A host step succeeds when it ran somewhere and succeeded everywhere it ran."""
        return bool(self.hosts) and all(h.succeeded for h in self.hosts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "attempt": self.attempt,
            "hosts": [h.to_dict() for h in self.hosts.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        hosts = [HostOutcome.from_dict(h) for h in data.get("hosts", [])]
        return cls(
            step_id=data["step_id"], attempt=data["attempt"], hosts={h.host: h for h in hosts}
        )


def merge_events(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge ``@@{json}`` events in order: later keys win (top level only)."""
    merged: dict[str, Any] = {}
    for event in events:
        if isinstance(event, Mapping):
            merged.update(event)
    return merged


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """How a host step's attempt ended, as both drivers tell the state machine."""

    succeeded: bool
    lost: bool
    message: str


def judge_step(
    result: StepResult | None, *, no_hosts: str = "its targets match no host"
) -> StepVerdict:
    """The one rule for a host step's outcome (every face uses it):

    * it succeeded when it ran on at least one host and succeeded on every one;
    * a host that did not run it (skipped: the shell is missing; rejected;
      cancelled), or failed or timed out, fails it;
    * when the only hosts that did not succeed are ``lost`` (their worker died
      after sending the command), the step is lost: its outcome is unknown,
      it is never retried automatically and it routes like a failure.
    """
    if result is None or not result.hosts:
        return StepVerdict(False, False, no_hosts)
    bad = [h for h in result.hosts.values() if not h.succeeded]
    total = len(result.hosts)
    if not bad:
        return StepVerdict(True, False, f"succeeded on {total} host(s)")
    shown = ", ".join(f"{h.host} {h.state}" for h in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    message = f"{len(bad)} of {total} host(s) did not succeed: {shown}{more}"
    lost = all(h.state == "lost" for h in bad)
    return StepVerdict(False, lost, message)

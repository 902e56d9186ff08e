"""What a progressive rollout asks for: waves, gates, soak, failure threshold, rollback retry.

A :class:`RolloutSpec` is part of a workflow definition (``Workflow.rollout``,
YAML key ``rollout:``, seed 004's ``set_progressive_execution``). It is data
only; :mod:`muster.domain.rollout` plans waves and judges gates from it and
:mod:`muster.engine.rollout` drives it.

Waves are cumulative: ``[1, "10%", "50%", "100%"]`` means one host, then up
to a tenth of the target, then half, then the rest; a list of selectors
(hosts, groups, globs) picks hosts by name. A host already in an earlier wave
is never repeated, and hosts no wave reaches are left alone (only ``"100%"``
takes what is left).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["RetrySpec", "RolloutSpec", "Threshold", "ThresholdScope", "WaveSpec"]


class ThresholdScope(StrEnum):
    #: Failed hosts are counted per wave (each wave judged on its own hosts).
    WAVE = "wave"
    #: Failed hosts are counted over every wave run so far, against the whole target.
    ROLLOUT = "rollout"


@dataclass(frozen=True, slots=True)
class WaveSpec:
    """One wave: selectors, or a cumulative host count, or a cumulative percent."""

    selectors: tuple[str, ...] = ()
    count: int | None = None
    percent: float | None = None

    def text(self) -> str | int | list[str]:
        """How a definition writes it (the YAML form)."""
        if self.count is not None:
            return self.count
        if self.percent is not None:
            return f"{self.percent:g}%"
        return list(self.selectors)


@dataclass(frozen=True, slots=True)
class Threshold:
    """How many failed hosts are tolerated before the rollout stops: a count, or a
    percent of the hosts counted (strictly more than this stops it). The default,
    zero, stops at the first failed host."""

    count: int | None = 0
    percent: float | None = None

    def breached(self, failed: int, total: int) -> bool:
        if failed <= 0:
            return False
        if self.percent is not None:
            return total <= 0 or failed * 100.0 > self.percent * total
        return failed > (self.count or 0)

    def text(self) -> int | str:
        return f"{self.percent:g}%" if self.percent is not None else (self.count or 0)


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """How long a rollback waits for an unreachable host: ``tries`` attempts,
    the first retry ``delay`` seconds later, each next one ``backoff`` times longer."""

    tries: int = 4
    delay: float = 5.0
    backoff: float = 2.0

    def delays(self) -> list[float]:
        """The waits between attempts (``tries - 1`` of them)."""
        return [self.delay * self.backoff**i for i in range(max(0, self.tries - 1))]


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    waves: tuple[WaveSpec, ...]
    #: Steps that gate each wave: a host where one failed fails the gate.
    verification_tasks: tuple[str, ...] = ()
    auto_rollback: bool = False
    #: Seconds to wait after a wave passed its gate, before the verification
    #: tasks run again on it and the next wave may start.
    soak: float = 0.0
    failure_threshold: Threshold = Threshold()
    threshold_scope: ThresholdScope = ThresholdScope.WAVE
    #: Expected seconds per wave, to fit waves in windows (else the previous
    #: wave's measured duration).
    wave_duration: float | None = None
    rollback_retry: RetrySpec = RetrySpec()

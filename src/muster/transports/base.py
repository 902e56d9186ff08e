"""The Transport protocol: the one interface the engine knows for running plans.

A transport never raises for a per-host failure: unreachable hosts, bad auth,
non-zero exits and timeouts all come back as a :class:`TransportOutcome` with
a precise :class:`FailureReason`. Cancelling the awaiting task kills whatever
the plan started (process group locally, the channel and remote process over
SSH) before the cancellation propagates.

Output is never accumulated by the transport: every chunk goes to the sink as
soon as it arrives, so memory stays flat whatever the output size.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from muster.domain.hosts import Host
from muster.domain.plans import Plan
from muster.domain.states import FailureReason, HostRunState

__all__ = ["OutputSink", "Stream", "Transport", "TransportOutcome"]


class Stream(enum.StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


#: Called with each decoded chunk of output as it is produced.
OutputSink = Callable[[Stream, str], None]


@dataclass(frozen=True, slots=True)
class TransportOutcome:
    state: HostRunState
    exit_code: int | None = None
    reason: FailureReason | None = None
    message: str = ""
    #: True once the first command was handed to the host: from then on, a
    #: lost connection means the outcome on the host is unknown.
    started: bool = True


class Transport(Protocol):
    async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
        """Run ``plan`` on ``host``; stream output to ``sink``."""
        ...

    async def close(self) -> None:
        """Release pooled connections and processes."""
        ...

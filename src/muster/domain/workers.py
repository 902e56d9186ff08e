"""Worker presence: the states a worker process reports, and the one it is seen in.

A worker writes its own state with every heartbeat (``running``, ``draining``
while it finishes what it holds after a drain was asked, ``drained`` once it
holds nothing, ``stopped`` when it shut down cleanly). Whether it is still
there is not something it can report: :func:`observed_state` reads ``lost``
from a heartbeat older than the worker's lease, so a worker killed without a
word stays listed, marked lost, instead of silently disappearing or showing
``running`` forever.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Final

__all__ = ["REPORTED_STATES", "WorkerState", "observed_state", "reported_state"]


class WorkerState(enum.StrEnum):
    RUNNING = "running"
    #: Asked to drain: claims nothing new, still finishing runs it holds.
    DRAINING = "draining"
    #: Asked to drain and holding nothing: idle until resumed.
    DRAINED = "drained"
    #: Shut down cleanly (SIGTERM, end of ``muster serve``).
    STOPPED = "stopped"
    #: Never stored: its heartbeat is older than its lease, so its process is gone or cut off.
    LOST = "lost"


#: What a worker may write about itself (``lost`` is only ever read into a listing).
REPORTED_STATES: Final = frozenset(
    {WorkerState.RUNNING, WorkerState.DRAINING, WorkerState.DRAINED, WorkerState.STOPPED}
)


def reported_state(*, draining: bool, held: int) -> WorkerState:
    """What a live worker reports: drain asked or not, and whether it still holds runs."""
    if not draining:
        return WorkerState.RUNNING
    return WorkerState.DRAINING if held else WorkerState.DRAINED


def observed_state(
    stored: WorkerState, last_heartbeat: dt.datetime, lease_seconds: float, now: dt.datetime
) -> WorkerState:
    """The state a listing shows: the stored one, or ``lost`` once the heartbeat is stale.

    A heartbeat is stale when more than one lease has passed since it: the
    reaper then treats the runs the worker held the same way.
    """
    if stored is WorkerState.STOPPED:
        return stored
    if now - last_heartbeat > dt.timedelta(seconds=lease_seconds):
        return WorkerState.LOST
    return stored

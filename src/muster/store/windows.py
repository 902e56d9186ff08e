"""Maintenance windows in the store: the :class:`WindowStore` protocol and its report.

The windows are data; the gate is in the queue's claim, so it holds across
workers: a claim starts a run only while a window covers its host (or no
window restricts it, or someone overrode the windows for its execution),
and puts every other run it picked back in the queue with
``available_at`` = the next opening and a reason that names it. A run
that starts under a window leaves a hold (when its period closes, whether
the window stops it); :meth:`WindowStore.sweep_windows`, run with every
reap, acts on closes: unstarted claims go back to the queue, deferred;
started runs of a ``stop`` window are asked to stop and end ``cancelled``
with the reason :meth:`WindowStore.stop_reasons` gives their worker.

SQLAlchemy-free: the in-memory store, the worker and the services import it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from muster.domain.windows import OUTSIDE_WINDOW, MaintenanceWindow, stop_message

__all__ = ["DEFERRED_PREFIX", "WindowStore", "WindowSweep", "stop_message"]

#: Every waiting reason the gate writes starts so (windows changing re-checks these runs).
DEFERRED_PREFIX: Final = OUTSIDE_WINDOW


@dataclass(frozen=True, slots=True)
class WindowSweep:
    """What one sweep did at the windows that closed."""

    #: Claimed, not started, window closed: back in the queue for the next opening.
    deferred: tuple[str, ...] = ()
    #: Started under a ``stop`` window that closed: asked to stop.
    stopping: tuple[str, ...] = ()


class WindowStore(Protocol):
    """Maintenance windows, the overrides, and the sweep at their closes."""

    def create_window(
        self, window: MaintenanceWindow, *, created_by: str | None = None
    ) -> MaintenanceWindow: ...
    def list_windows(self) -> list[MaintenanceWindow]: ...
    def get_window(self, window_id: str) -> MaintenanceWindow: ...
    def delete_window(self, window_id: str) -> None: ...
    def override_windows(self, execution_id: str, by: str | None = None) -> int:
        """Let ``execution_id`` run outside its windows from now on; the runs released."""
        ...

    def windows_overridden(self, execution_id: str) -> bool: ...
    def sweep_windows(self, now: dt.datetime | None = None) -> WindowSweep: ...
    def stop_reasons(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Why each of these runs was asked to stop, when a window's close did it."""
        ...

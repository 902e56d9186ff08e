"""Maintenance windows in memory, as ``store/window_ops.py`` keeps them: the windows,
the claim's gate, the holds of runs started under a window, overrides, the sweep."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from muster.domain.states import HostRunState
from muster.domain.throttle import groups_of_key
from muster.domain.windows import MaintenanceWindow, WindowGate
from muster.errors import NotFoundError
from muster.store.notify import QUEUE_KEY, execution_key
from muster.store.windows import DEFERRED_PREFIX, WindowSweep, stop_message
from muster.testing._memory_core import MemoryCore, new_id
from muster.testing._memory_rows import RunRow

__all__ = ["WindowOps", "gate_picked"]

S = HostRunState


@dataclass(slots=True)
class _Hold:
    epoch: int
    closes_at: dt.datetime
    stop: bool
    window: str | None
    done: bool = False
    stop_reason: str | None = None


def _windows(core: MemoryCore) -> list[MaintenanceWindow]:
    return [w for w, _ in sorted(core._mwindows.values(), key=lambda p: (p[1], p[0].name, p[0].id))]


def gate_picked(
    core: MemoryCore, now: dt.datetime, picked: list[RunRow]
) -> tuple[list[RunRow], int]:
    """Keep the picked runs whose window is open (they get a hold, for the epoch their
    claim will take); defer the others in place. (kept, deferred)"""
    windows = _windows(core)
    if not windows or not picked:
        return picked, 0
    gate = WindowGate(windows, now)
    kept: list[RunRow] = []
    deferred = 0
    for run in picked:
        if run.execution_id in core._overrides:
            kept.append(run)
            continue
        d = gate.decide(run.host_name, groups_of_key(run.group_key))
        if not d.open:
            assert d.available_at is not None
            run.available_at = d.available_at
            run.waiting_reason = d.reason
            deferred += 1
            continue
        kept.append(run)
        if d.closes_at is not None:
            core._holds[run.id] = _Hold(run.epoch + 1, d.closes_at, d.stop_at_close, d.window)
        else:
            core._holds.pop(run.id, None)
    return kept, deferred


class WindowOps(MemoryCore):
    """:class:`~muster.store.windows.WindowStore` of ``InMemoryStore``."""

    def create_window(
        self, window: MaintenanceWindow, *, created_by: str | None = None
    ) -> MaintenanceWindow:
        with self._tx(QUEUE_KEY):
            stored = replace(window, id=new_id())
            self._mwindows[stored.id] = (stored, self.clock())
            self._recheck_deferred()
            return stored

    def list_windows(self) -> list[MaintenanceWindow]:
        with self._tx():
            return _windows(self)

    def get_window(self, window_id: str) -> MaintenanceWindow:
        with self._tx():
            found = self._mwindows.get(window_id)
            if found is None:
                raise NotFoundError(f"no maintenance window {window_id}")
            return found[0]

    def delete_window(self, window_id: str) -> None:
        with self._tx(QUEUE_KEY):
            if self._mwindows.pop(window_id, None) is None:
                raise NotFoundError(f"no maintenance window {window_id}")
            self._recheck_deferred()

    def _recheck_deferred(self) -> None:
        now = self.clock()
        for run in self._queued():
            if (run.waiting_reason or "").startswith(DEFERRED_PREFIX):
                run.available_at = now

    def override_windows(self, execution_id: str, by: str | None = None) -> int:
        with self._tx(QUEUE_KEY, execution_key(execution_id)):
            now = self.clock()
            self._overrides.setdefault(execution_id, (by, now))
            released = 0
            for run in self._queued():
                if run.execution_id == execution_id and (run.waiting_reason or "").startswith(
                    DEFERRED_PREFIX
                ):
                    run.available_at = now
                    run.waiting_reason = "maintenance window overridden; waiting for a free worker"
                    released += 1
            return released

    def windows_overridden(self, execution_id: str) -> bool:
        with self._tx():
            return execution_id in self._overrides

    def stop_reasons(self, run_ids: Sequence[str]) -> dict[str, str]:
        with self._tx():
            return {
                i: h.stop_reason
                for i in run_ids
                if (h := self._holds.get(i)) is not None and h.stop_reason is not None
            }

    def sweep_windows(self, now: dt.datetime | None = None) -> WindowSweep:
        deferred: list[str] = []
        stopping: list[str] = []
        with self._tx(QUEUE_KEY) as changes:
            now = now or self.clock()
            due = sorted(
                ((i, h) for i, h in self._holds.items() if not h.done and h.closes_at <= now),
                key=lambda p: p[1].closes_at,
            )[:500]
            if not due:
                return WindowSweep()
            gate = WindowGate(_windows(self), now)
            for run_id, hold in due:
                run = self._runs.get(run_id)
                hold.done = True
                if run is None or run.state is not S.RUNNING or run.epoch != hold.epoch:
                    continue
                if run.started_at is None:
                    d = gate.decide(run.host_name, groups_of_key(run.group_key))
                    if not d.open and self._move(
                        changes,
                        run,
                        S.RUNNING,
                        S.QUEUED,
                        epoch=hold.epoch,
                        values={
                            "owner": None,
                            "epoch": run.epoch + 1,
                            "claimed_at": None,
                            "lease_expires_at": None,
                            "available_at": d.available_at,
                            "waiting_reason": d.reason,
                        },
                    ):
                        deferred.append(run_id)
                elif hold.stop:
                    hold.stop_reason = stop_message(hold.window, hold.closes_at)
                    run.cancel_requested = True
                    stopping.append(run_id)
                    changes.notify(execution_key(run.execution_id))
        return WindowSweep(tuple(deferred), tuple(stopping))

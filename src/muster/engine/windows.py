"""Maintenance windows for in-process runs (the library and ``muster run``).

A server keeps windows in its queue's claim; an in-process
:class:`~muster.engine.dispatcher.Dispatcher` keeps them with a
:class:`WindowRule`: before each host starts, the rule's windows that cover
it are asked (:class:`~muster.domain.windows.WindowGate`, the same rules as
the server's). Outside, by ``mode``:

- ``wait`` (the CLI's default): the host waits for the opening (the rule's
  ``on_wait`` hears the reason and the time, e.g. for a countdown), then starts;
- ``fail``: the host fails at once with reason ``outside_window`` and the
  message naming the next opening;
- ``ignore``: windows are not looked at.

A host started under a ``stop`` window is cancelled when that window
closes, with the window's reason; under ``finish`` it runs to its end.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from muster.domain.windows import GateDecision, MaintenanceWindow, WindowGate

__all__ = ["WindowMode", "WindowRule"]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WindowMode(enum.StrEnum):
    WAIT = "wait"
    FAIL = "fail"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class WindowRule:
    """Which windows hold an in-process run, and what a host outside them does."""

    windows: Sequence[MaintenanceWindow]
    mode: WindowMode = WindowMode.WAIT
    clock: Callable[[], dt.datetime] = _utcnow
    #: Told ``(host, reason, opens_at)`` when a host starts waiting for a window.
    on_wait: Callable[[str, str, dt.datetime], None] | None = None

    @property
    def active(self) -> bool:
        return self.mode is not WindowMode.IGNORE and bool(self.windows)

    def decide(self, host: str, groups: Sequence[str]) -> GateDecision:
        return WindowGate(self.windows, self.clock()).decide(host, groups)

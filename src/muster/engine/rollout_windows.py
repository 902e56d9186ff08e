"""A rollout wave waiting for its hosts' maintenance windows, visibly.

The wave shows ``waiting_window`` with until when and why (the same
:func:`~muster.domain.rollout.fit_wave` the forecast uses), sleeps in slices
(so an abort or a pause is heard), and looks again when it wakes: a wave whose
estimate no longer fits waits for the next opening.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence

from muster.domain.rollout import FitStatus, fit_wave
from muster.domain.windows import MaintenanceWindow
from muster.engine.rollout_result import WaveResult, WaveStatus

__all__ = ["WindowWait"]

#: Longest single sleep while waiting for a window (controls stay responsive).
_WAIT_SLICE = 30.0


class WindowWait:
    def __init__(
        self,
        windows: Mapping[str, Sequence[MaintenanceWindow]],
        *,
        clock: Callable[[], dt.datetime],
        sleep: Callable[[float], Awaitable[None]],
        wakeup: asyncio.Event,
        resumed: asyncio.Event,
        aborted: Callable[[], bool],
        notify: Callable[[], None],
        wait: bool = True,
    ) -> None:
        self.windows = windows
        self._clock = clock
        self._sleep = sleep
        self._wakeup = wakeup
        self._resumed = resumed
        self._aborted = aborted
        self._notify = notify
        self._wait = wait

    async def until_fit(self, wave: WaveResult, estimate: float) -> bool:
        """True once the wave fits now; False when it never will (or on abort), or,
        without ``wait``, when it does not fit now."""
        while not self._aborted():
            fit = fit_wave(self.windows, self._clock(), estimate)
            if fit.status is FitStatus.NOW:
                return True
            if fit.status is FitStatus.WILL_NOT_FIT:
                wave.status = WaveStatus.FAILED
                wave.wait_reason = f"wave {wave.index + 1} will not fit: {fit.reason}"
                self._notify()
                return False
            assert fit.starts_at is not None
            if not self._wait:
                wave.status = WaveStatus.FAILED
                wave.wait_reason = (
                    f"wave {wave.index + 1} is outside its maintenance window and the "
                    f"window policy is fail: {fit.reason}"
                )
                self._notify()
                return False
            if wave.waited_for_window_until != fit.starts_at:
                wave.status = WaveStatus.WAITING_WINDOW
                wave.waited_for_window_until = fit.starts_at
                wave.wait_reason = fit.reason
                self._notify()
            left = (fit.starts_at - self._clock()).total_seconds()
            self._wakeup.clear()
            sleeper = asyncio.ensure_future(self._sleep(min(max(left, 0.0), _WAIT_SLICE)))
            woken = asyncio.ensure_future(self._wakeup.wait())
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, woken):
                task.cancel()
            await self._resumed.wait()
        return False

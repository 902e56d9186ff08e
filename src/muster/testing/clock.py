"""A clock tests move by hand, so lease, timeout and delay paths run without sleeping."""

from __future__ import annotations

import datetime as dt
import threading

__all__ = ["FakeClock"]

#: Far from today, so a test that reads the real clock by mistake stands out.
DEFAULT_START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class FakeClock:
    """A ``Callable[[], datetime]`` (what stores take as ``clock``) that moves only
    when told; :meth:`advance` is safe from any thread."""

    def __init__(self, start: dt.datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime: stores keep UTC times")
        self._now = start
        self._lock = threading.Lock()

    @property
    def now(self) -> dt.datetime:
        return self._now

    def __call__(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float) -> dt.datetime:
        """Move forward ``seconds`` (never back: stores assume time does not reverse)."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back (asked to move {seconds:g}s)")
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)
            return self._now

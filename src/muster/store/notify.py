"""Wake-ups for live output and new work, so nobody polls in a tight loop.

The store publishes a key after every commit that a waiter may care about:
``execution:<id>`` (new output or a state change of that execution) and
``queue`` (work became claimable). A wake-up carries no data: the waiter
re-reads the store from where it left off, so a lost or duplicated wake-up
costs one query, never a missed chunk.

In one process (SQLite), :class:`Notifier` fans out directly. Across
processes (PostgreSQL), the store also sends ``NOTIFY muster, '<key>'`` in
the committing transaction, and a :class:`PostgresListener` thread in each
process feeds what it hears into that process's Notifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable
from types import TracebackType

__all__ = ["CHANNEL", "QUEUE_KEY", "Notifier", "PostgresListener", "Subscription", "execution_key"]

CHANNEL = "muster"
QUEUE_KEY = "queue"

_log = logging.getLogger(__name__)


def execution_key(execution_id: str) -> str:
    return f"execution:{execution_id}"


class Subscription:
    """One waiter's interest in one key; use as a context manager."""

    def __init__(self, hub: Notifier, key: str, loop: asyncio.AbstractEventLoop) -> None:
        self._hub = hub
        self.key = key
        self._loop = loop
        self._event = asyncio.Event()

    def _fire(self) -> None:
        self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> bool:
        """True when woken since the last wait, False when ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True

    def close(self) -> None:
        self._hub._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Notifier:
    """In-process fan-out; thread-safe, so store calls in worker threads may publish."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, set[Subscription]] = {}
        self._closers: list[PostgresListener] = []

    def subscribe(self, key: str) -> Subscription:
        """Subscribe from inside a running event loop."""
        sub = Subscription(self, key, asyncio.get_running_loop())
        with self._lock:
            self._subs.setdefault(key, set()).add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.key]

    def publish(self, key: str) -> None:
        with self._lock:
            subs = list(self._subs.get(key, ()))
        for sub in subs:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                sub._fire()

    def publish_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.publish(key)

    def attach(self, listener: PostgresListener) -> None:
        self._closers.append(listener)

    def close(self) -> None:
        for listener in self._closers:
            listener.stop()
        self._closers.clear()


class PostgresListener:
    """A thread that LISTENs on PostgreSQL and republishes into a Notifier."""

    def __init__(self, conninfo: str, notifier: Notifier, *, poll: float = 1.0) -> None:
        self._conninfo = conninfo
        self._notifier = notifier
        self._poll = poll
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="muster-listen", daemon=True)
        notifier.attach(self)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("PostgreSQL LISTEN did not start in time")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self._poll * 3)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    # A reconnect may have missed notifications: wake everyone once.
                    self._notifier.publish_many(list(self._notifier._subs))
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self._poll):
                            self._notifier.publish(note.payload)
            except Exception as exc:  # reconnect: a listener must outlive a DB restart
                _log.warning("PostgreSQL listener lost its connection: %s", exc)
                self._ready.set()
                self._stop.wait(self._poll)

"""Wait for a store condition with a deadline, woken by the store's notifications."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from muster.store.notify import execution_key
from muster.store.sqlalchemy_store import SqlStore

T = TypeVar("T")


async def wait_until(
    store: SqlStore,
    execution_id: str,
    check: Callable[[], T],
    *,
    timeout: float = 30.0,
    what: str = "condition",
) -> T:
    """Re-evaluate ``check`` on every change of the execution until it is truthy."""
    deadline = time.monotonic() + timeout
    with store.notifier.subscribe(execution_key(execution_id)) as sub:
        while True:
            value = await asyncio.to_thread(check)
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            # A wake-up is the normal path; the short cap covers other processes' writes.
            await sub.wait(min(left, 0.5))

"""Webhook delivery: signed JSON POSTs, retried with bounded exponential backoff.

The body is signed with the webhook's own secret: ``X-Muster-Signature:
sha256=<hex HMAC-SHA256 of the exact body bytes>``, so a receiver verifies
what it got, byte for byte. Publishing never blocks the caller: events go to
a bounded queue, and when it is full the oldest pressure is shed by dropping
the new event with a log line (state is always readable from the API).
Every attempt's outcome is recorded through the recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx

from muster.domain.webhooks import WebhookTarget

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryRecorder",
    "WebhookDispatcher",
    "WebhookTarget",
    "sign",
]

SIGNATURE_HEADER = "X-Muster-Signature"
_log = logging.getLogger(__name__)


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class DeliveryRecorder(Protocol):
    async def record_delivery(
        self,
        *,
        webhook_id: str,
        event: str,
        status_code: int | None,
        attempts: int,
        delivered: bool,
        error: str | None,
    ) -> None: ...


class WebhookDispatcher:
    """Fans events out to the webhooks that want them; one task per delivery."""

    def __init__(
        self,
        targets: Callable[[], Awaitable[Sequence[WebhookTarget]]],
        recorder: DeliveryRecorder,
        *,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout: float = 10.0,
        queue_size: int = 10_000,
        concurrency: int = 16,
    ) -> None:
        self._targets = targets
        self._recorder = recorder
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._timeout = timeout
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(queue_size)
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def publish(self, event: str, payload: Mapping[str, Any]) -> None:
        try:
            self._queue.put_nowait((event, dict(payload)))
        except asyncio.QueueFull:
            _log.warning("webhook queue full; dropping %s event", event)

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout)
        self._runner = asyncio.create_task(self._run(), name="muster-webhooks")

    async def stop(self, grace: float = 5.0) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))

    async def _run(self) -> None:
        while True:
            event, payload = await self._queue.get()
            try:
                targets = [t for t in await self._targets() if t.wants(event)]
            except Exception:
                _log.exception("cannot list webhooks; dropping %s event", event)
                continue
            if not targets:
                continue
            body = json.dumps(
                {"event": event, **payload}, sort_keys=True, separators=(",", ":"), default=str
            ).encode("utf-8")
            for target in targets:
                task = asyncio.create_task(self._deliver(target, event, body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, target: WebhookTarget, event: str, body: bytes) -> None:
        assert self._client is not None
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(target.secret, body),
            "X-Muster-Event": event,
            "User-Agent": "muster-webhooks",
        }
        status: int | None = None
        error: str | None = None
        attempt = 0
        async with self._slots:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    resp = await self._client.post(target.url, content=body, headers=headers)
                    status = resp.status_code
                    error = None if resp.is_success else f"HTTP {status}"
                except httpx.HTTPError as exc:
                    status, error = None, f"{type(exc).__name__}: {exc}"
                if error is None:
                    break
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.backoff(attempt))
        try:
            await self._recorder.record_delivery(
                webhook_id=target.id,
                event=event,
                status_code=status,
                attempts=attempt,
                delivered=error is None,
                error=error,
            )
        except Exception:
            _log.exception("cannot record webhook delivery to %s", target.url)

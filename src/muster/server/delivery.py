"""Webhook delivery: signed JSON POSTs, retried with bounded exponential backoff.

The body is signed with the webhook's own secret: ``X-Muster-Signature:
sha256=<hex HMAC-SHA256 of the exact body bytes>``, so a receiver verifies
what it got, byte for byte. Publishing never blocks the caller: events go to
a bounded queue, and when it is full the oldest pressure is shed by dropping
the new event with a log line (state is always readable from the API).
Every attempt's outcome is recorded through the recorder.

Where a webhook may point is checked twice by the :class:`EgressGuard`
(rules in :mod:`muster.domain.egress`): when it is created, and at every
delivery, where the name is resolved again, every address it resolves to
is checked, and the request goes to the checked address itself (the name
stays in ``Host`` and in TLS SNI and certificate checks), so a name that
answers differently the second time (DNS rebinding) cannot reach the
server's own network. Redirects are not followed. A failed delivery is
recorded as ``connection failed``, ``timed out`` or ``HTTP <status>``:
never the socket error, which would tell an admin which ports are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx

from muster.domain.egress import EgressPolicy, IPAddress
from muster.domain.webhooks import WebhookTarget
from muster.errors import ValidationError

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryRecorder",
    "EgressGuard",
    "EgressRefused",
    "WebhookDispatcher",
    "WebhookTarget",
    "sign",
]

#: (host, port) -> the addresses it resolves to, as text.
Resolver = Callable[[str, int], Sequence[str]]

SIGNATURE_HEADER = "X-Muster-Signature"
_log = logging.getLogger(__name__)


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class EgressRefused(Exception):
    """A webhook URL that may not be requested (the message says why, for its admin)."""


def resolve_host(host: str, port: int) -> Sequence[str]:
    """Every address ``host`` resolves to (numeric forms such as ``2130706433`` included)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class EgressGuard:
    """Checks webhook URLs against an :class:`EgressPolicy`, resolving names itself."""

    def __init__(self, policy: EgressPolicy, *, resolver: Resolver = resolve_host) -> None:
        self.policy = policy
        self._resolve = resolver

    @classmethod
    def from_setting(cls, allow: str, *, resolver: Resolver = resolve_host) -> EgressGuard:
        """From ``MUSTER_WEBHOOK_ALLOW`` text (see :meth:`EgressPolicy.parse`)."""
        return cls(EgressPolicy.parse(allow), resolver=resolver)

    def pinned_address(self, url: str) -> tuple[httpx.URL, IPAddress]:
        """The parsed URL and the checked address to connect to; :class:`EgressRefused`
        if the URL is malformed, does not resolve, or any of its addresses is refused."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise EgressRefused(f"not a valid URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise EgressRefused("give an http:// or https:// URL with a host")
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            found = self._resolve(host, port)
        except (OSError, UnicodeError):
            raise EgressRefused(f"{host} does not resolve") from None
        addresses: list[IPAddress] = []
        for text in found:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            reason = self.policy.refusal(host, ip)
            if reason is not None:
                raise EgressRefused(reason)
            addresses.append(ip)
        if not addresses:
            raise EgressRefused(f"{host} does not resolve")
        return parsed, addresses[0]

    def check_url(self, url: str) -> None:
        """For creating a webhook: a refused URL is a ``ValidationError`` on ``url``."""
        try:
            self.pinned_address(url)
        except EgressRefused as exc:
            raise ValidationError(f"url: {exc}", field="url") from None


def _pinned_request(
    url: httpx.URL, ip: IPAddress, headers: dict[str, str]
) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """The request aimed at ``ip``, still naming the URL's host for HTTP and TLS."""
    default_port = 443 if url.scheme == "https" else 80
    host_header = url.host if url.port in (None, default_port) else f"{url.host}:{url.port}"
    if ":" in url.host:  # an IPv6 literal in the URL keeps its brackets in Host
        host_header = host_header.replace(url.host, f"[{url.host}]", 1)
    target = url.copy_with(host=str(ip))
    extensions: dict[str, Any] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.host
    return target, {**headers, "Host": host_header}, extensions


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
        guard: EgressGuard | None = None,
    ) -> None:
        """``guard``: where deliveries may go; by default public addresses only."""
        self._targets = targets
        self.guard = guard or EgressGuard(EgressPolicy())
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
        # No redirects: a 3xx is an answer, never a way to another address.
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
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

    async def _post(
        self, url: httpx.URL, ip: IPAddress, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        """(status, error) of one attempt; errors say only what kind of failure it was."""
        assert self._client is not None
        target, pinned, extensions = _pinned_request(url, ip, headers)
        try:
            resp = await self._client.post(
                target, content=body, headers=pinned, extensions=extensions
            )
        except httpx.TimeoutException:
            return None, "timed out"
        except httpx.HTTPError:
            return None, "connection failed"
        return resp.status_code, None if resp.is_success else f"HTTP {resp.status_code}"

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
                    url, ip = await asyncio.to_thread(self.guard.pinned_address, target.url)
                except EgressRefused as exc:
                    # Policy, not luck: trying again would not change the answer.
                    status, error = None, f"refused: {exc}"
                    break
                status, error = await self._post(url, ip, body, headers)
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

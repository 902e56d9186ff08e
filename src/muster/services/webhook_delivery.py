"""Webhook delivery from the outbox: signed JSON POSTs, retried with bounded exponential
backoff, each attempt recorded on its outbox row.

The body is signed with the webhook's own secret: ``X-Muster-Signature:
sha256=<hex HMAC-SHA256 of the exact body bytes>``, so a receiver verifies
what it got, byte for byte. ``X-Muster-Delivery`` is the outbox row's id: the
same on every attempt of one event for one webhook (and after a restart), so
a receiver that saw it already can drop the repeat. Delivery is at least
once: an attempt whose answer was lost (a crash, a timeout after the
receiver acted) is made again under the same id.

Rows are claimed from the store (several processes may run this loop on one
PostgreSQL database: claims never overlap) and held for a lease longer than
one attempt, so a row whose claimer died is due again when the lease ends.
A failed attempt puts the row back, due after :meth:`WebhookDelivery.backoff`;
after ``max_attempts`` it is given up (``failed``).

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
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

import httpx

from muster.domain.egress import EgressPolicy, IPAddress
from muster.errors import ValidationError
from muster.store.notify import Notifier, Subscription
from muster.store.outbox import ClaimedDelivery, WebhookStore

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "EgressGuard",
    "EgressRefused",
    "WebhookDelivery",
    "resolve_host",
    "sign",
]

#: (host, port) -> the addresses it resolves to, as text.
Resolver = Callable[[str, int], Sequence[str]]

SIGNATURE_HEADER: Final = "X-Muster-Signature"
DELIVERY_HEADER: Final = "X-Muster-Delivery"
EVENT_HEADER: Final = "X-Muster-Event"
#: The store's wake-up key for new or re-scheduled outbox rows (``store.webhooks``).
WEBHOOKS_KEY: Final = "webhooks"
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


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WebhookDelivery:
    """The delivery loop for one process: claims due outbox rows, one task per attempt."""

    def __init__(
        self,
        store: WebhookStore,
        notifier: Notifier | None = None,
        *,
        guard: EgressGuard | None = None,
        max_attempts: int = 20,
        base_delay: float = 0.5,
        max_delay: float = 600.0,
        timeout: float = 10.0,
        concurrency: int = 16,
        poll: float = 1.0,
        lease_margin: float = 10.0,
        owner: str | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        """``guard``: where deliveries may go (default: public addresses only).
        ``notifier``: the store's wake-ups, so a new event goes out without waiting
        for the next ``poll``. ``clock``: the store's, for retry times."""
        self._store = store
        self._notifier = notifier
        self.guard = guard or EgressGuard(EgressPolicy())
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._timeout = timeout
        self._concurrency = concurrency
        self._poll = poll
        #: A claim outlives the slowest attempt: name resolution plus the request.
        self.lease_seconds = timeout + lease_margin
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._freed = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        # No redirects: a 3xx is an answer, never a way to another address.
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        self._runner = asyncio.create_task(self._run(), name="muster-webhooks")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; attempts in flight get ``grace`` seconds, the rest are put back."""
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
        return float(min(self.max_delay, self.base_delay * (2 ** min(attempt - 1, 40))))

    async def _run(self) -> None:
        wake = self._notifier.subscribe(WEBHOOKS_KEY) if self._notifier is not None else None
        try:
            while True:
                free = self._concurrency - len(self._tasks)
                claimed: list[ClaimedDelivery] = []
                if free > 0:
                    try:
                        claimed = await asyncio.to_thread(
                            self._store.claim_webhook_deliveries,
                            self.owner,
                            free,
                            self.lease_seconds,
                        )
                    except Exception:
                        _log.exception("cannot claim webhook deliveries; trying again")
                for claim in claimed:
                    task = asyncio.create_task(self._deliver(claim))
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
                if claimed and len(claimed) == free:
                    continue  # more may be due: claim again at once
                await self._idle(wake)
        finally:
            if wake is not None:
                wake.close()

    async def _idle(self, wake: Subscription | None) -> None:
        """Until rows may be claimable: a wake-up or a freed slot, at most one ``poll``
        (retries fall due by time, with no wake-up)."""
        if len(self._tasks) >= self._concurrency:
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), self._poll)
        elif wake is not None:
            await wake.wait(self._poll)
        else:
            await asyncio.sleep(self._poll)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._freed.set()

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

    async def _attempt(self, claim: ClaimedDelivery) -> tuple[int | None, str | None, bool]:
        """(status, error, retry?) of one attempt."""
        body = claim.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(claim.target.secret, body),
            DELIVERY_HEADER: claim.id,
            EVENT_HEADER: claim.event,
            "User-Agent": "muster-webhooks",
        }
        try:
            url, ip = await asyncio.to_thread(self.guard.pinned_address, claim.target.url)
        except EgressRefused as exc:
            # Policy, not luck: trying again would not change the answer.
            return None, f"refused: {exc}", False
        status, error = await self._post(url, ip, body, headers)
        return status, error, error is not None

    async def _deliver(self, claim: ClaimedDelivery) -> None:
        try:
            status, error, retry = await self._attempt(claim)
        except asyncio.CancelledError:
            # Stopping: put it back now rather than one lease later (the attempt counts).
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    self._store.finish_webhook_delivery,
                    claim.id,
                    self.owner,
                    claim.attempt,
                    delivered=False,
                    error="interrupted: the server stopped",
                    retry_at=self._clock(),
                )
            raise
        retry_at = None
        if retry and claim.attempt < self.max_attempts:
            retry_at = self._clock() + dt.timedelta(seconds=self.backoff(claim.attempt))
        try:
            await asyncio.to_thread(
                self._store.finish_webhook_delivery,
                claim.id,
                self.owner,
                claim.attempt,
                delivered=error is None,
                status_code=status,
                error=error,
                retry_at=retry_at,
            )
        except Exception:
            # The claim's lease ends and the row is due again: delivered twice at
            # worst, under the same delivery id.
            _log.exception("cannot record webhook delivery %s", claim.id)

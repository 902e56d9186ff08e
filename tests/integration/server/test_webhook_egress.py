"""Webhooks cannot be aimed at the server's own network: loopback, link-local, private,
unique-local, multicast, unspecified and reserved addresses (and IPv4 hidden in IPv6
forms) are refused when a webhook is created and again when it is delivered, unless
``MUSTER_WEBHOOK_ALLOW`` names them; delivery errors do not tell whether a port is open.

Creation is tested against a running server; delivery with the real delivery loop over
the in-memory store's outbox, real sockets and a real HTTP receiver, and a name
resolver the test controls (DNS rebinding: the name that was public at creation
resolves to 127.0.0.1 at delivery).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from muster.services.webhook_delivery import EgressGuard, WebhookDelivery
from muster.store.outbox import DeliveryRecord, DeliveryState, WebhookEvent
from muster.testing import InMemoryStore
from tests.integration.server.harness import LiveServer, server_settings, wait_for
from tests.integration.server.test_webhooks_api import Receiver

SECRET = "whsec-0123456789"

REFUSED = [
    "http://127.0.0.1:9/hook",
    "http://127.1.2.3/hook",
    "http://localhost:8080/hook",
    "http://[::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://[fd00::1]/hook",
    "http://224.0.0.1/hook",
    "http://[ff02::1]/hook",
    "http://240.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[2002:7f00:1::]/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://017700000001/hook",
    "https://127.0.0.1/hook",
    "http://no-such-host.invalid/hook",
]


@pytest.fixture
def strict_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(server_settings(tmp_path / "data", database_url)).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def allowing_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = server_settings(
        tmp_path / "data", database_url, webhook_allow="127.0.0.0/8, hooks.internal"
    )
    live = LiveServer(settings).start()
    try:
        yield live
    finally:
        live.stop()


def test_webhooks_to_internal_addresses_are_refused(strict_server: LiveServer) -> None:
    with strict_server.client() as api:
        for url in REFUSED:
            resp = api.post("/api/v1/webhooks", json={"url": url, "secret": SECRET})
            assert resp.status_code == 422, (url, resp.text)
            assert [d["field"] for d in resp.json()["detail"]] == ["url"], resp.json()
        assert api.get("/api/v1/webhooks").json() == []


def test_the_allow_list_admits_what_it_names_and_nothing_else(
    allowing_server: LiveServer,
) -> None:
    with allowing_server.client() as api:
        for url in ("http://127.0.0.1:9/hook", "http://127.9.9.9/x", "http://localhost:9/x"):
            resp = api.post("/api/v1/webhooks", json={"url": url, "secret": SECRET})
            assert resp.status_code == 201, (url, resp.text)
        for url in ("http://10.1.2.3/hook", "http://[::1]/hook", "http://169.254.169.254/"):
            resp = api.post("/api/v1/webhooks", json={"url": url, "secret": SECRET})
            assert resp.status_code == 422, (url, resp.text)


def test_a_bad_allow_list_is_a_clear_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"(?s)webhook_allow.*'10.0.0.0/33' is not a valid"):
        server_settings(tmp_path / "data", webhook_allow="10.0.0.0/33")


# --- delivery ----------------------------------------------------------------


def _resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host in table:
            return table[host]
        return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]

    return resolve


async def _deliver_once(guard: EgressGuard, url: str) -> DeliveryRecord:
    """One event through the outbox to ``url``, until it is delivered or given up."""
    store = InMemoryStore()
    hook = store.create_webhook(url, SECRET, ["*"])
    event = WebhookEvent("k1", "execution.succeeded", '{"execution_id":"e1"}')
    assert store.enqueue_webhook_events([event]) == 1
    delivery = WebhookDelivery(
        store, store.notifier, guard=guard, max_attempts=2, base_delay=0.01, timeout=5.0
    )
    delivery.start()
    try:
        async with asyncio.timeout(30):
            while (done := store.list_webhook_deliveries(hook.id)[0]).state is (
                DeliveryState.PENDING
            ):
                await asyncio.sleep(0.01)
    finally:
        await delivery.stop()
    return done


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=0)
    r.thread.start()
    try:
        yield r
    finally:
        r.httpd.shutdown()
        r.httpd.server_close()


async def test_dns_rebinding_to_loopback_is_refused_at_delivery(receiver: Receiver) -> None:
    port = receiver.httpd.server_address[1]
    # Public when the webhook was made; the server's own loopback when it is delivered.
    guard = EgressGuard.from_setting("", resolver=_resolver({"hook.example": ["127.0.0.1"]}))
    record = await _deliver_once(guard, f"http://hook.example:{port}/hook")
    assert record.state is DeliveryState.FAILED and record.status_code is None
    assert record.attempts == 1, record  # policy: not retried
    assert (record.last_error or "").startswith("refused"), record
    assert receiver.calls == 0


async def test_delivery_connects_to_the_address_it_checked(receiver: Receiver) -> None:
    port = receiver.httpd.server_address[1]
    # The name does not exist in real DNS: only the checked, pinned address can be reached.
    guard = EgressGuard.from_setting(
        "127.0.0.1/32", resolver=_resolver({"hook.example": ["127.0.0.1"]})
    )
    record = await _deliver_once(guard, f"http://hook.example:{port}/hook")
    assert record.delivered, record
    wait_for(lambda: receiver.accepted, timeout=10, what="the delivery")
    headers, _body = receiver.accepted[0]
    assert headers["Host"] == f"hook.example:{port}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Hangup:
    """A TCP listener that accepts and closes at once: an open port that speaks no HTTP."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self.sock.close()


async def test_delivery_errors_do_not_tell_whether_a_port_is_open() -> None:
    guard = EgressGuard.from_setting("127.0.0.1/32")
    hangup = _Hangup()
    try:
        closed = await _deliver_once(guard, f"http://127.0.0.1:{_closed_port()}/hook")
        open_ = await _deliver_once(guard, f"http://127.0.0.1:{hangup.port}/hook")
    finally:
        hangup.close()
    assert closed.last_error == open_.last_error == "connection failed", (closed, open_)
    assert closed.attempts == open_.attempts == 2


async def test_http_errors_are_reported_by_status_only() -> None:
    failing = Receiver(fail_first=10)
    failing.thread.start()
    try:
        guard = EgressGuard.from_setting("127.0.0.1/32")
        record = await _deliver_once(guard, failing.url)
    finally:
        failing.httpd.shutdown()
        failing.httpd.server_close()
    assert record.last_error == "HTTP 503" and record.status_code == 503

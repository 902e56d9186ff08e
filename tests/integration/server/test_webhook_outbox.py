"""Webhook outbox: ``kill -9`` a ``muster serve`` holding 100+ undelivered events, start
it again, and every event reaches the receiver, once per delivery id, none lost.

Real processes and sockets: two ``muster serve`` in turn on one database (SQLite
file or PostgreSQL), simulated SSH hosts, and a real HTTP receiver in this
process. The receiver first holds every request it gets (it has read and
recorded it, so a real receiver could have acted on it) and never answers, so
the first server's attempts stay in flight or pending. After the restart it
answers 204. An event may arrive twice only as a repeat: the same
``X-Muster-Delivery`` id and the same signed bytes.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import wait_for
from tests.integration.server.helpers import save_script, wait_terminal
from tests.integration.server.test_restart_crash import ServeProcess, serve_factory

__all__ = ["serve_factory"]  # the fixture, re-used from the crash test

SECRET = "whsec-outbox-0123456789"
EXECUTIONS = 20  # x 5 hosts: at least 6 terminal events each, 120 in all


class HoldingReceiver:
    """Records every POST on arrival; holds its answer until :meth:`release`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                receiver.released.wait(300)
                with contextlib.suppress(OSError):  # the sender may be dead by now
                    self.send_response(204)
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def release(self) -> None:
        self.released.set()

    def snapshot(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[HoldingReceiver]:
    r = HoldingReceiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.release()
        r.httpd.shutdown()
        r.httpd.server_close()


def _serve(data: Path, database_url: str, fleet: SimFleet) -> ServeProcess:
    proc = ServeProcess(data, database_url, fleet)
    proc.env["MUSTER_WEBHOOK_ALLOW"] = "127.0.0.1/32"
    # A short request timeout: an attempt the dead server left in flight is due
    # again one lease (timeout plus a margin) after it was claimed.
    proc.env["MUSTER_WEBHOOK_TIMEOUT"] = "2"
    return proc


def _identity(body: bytes) -> tuple[str, str, str | None]:
    event = json.loads(body)
    return event["event"], event["execution_id"], event.get("host_run_id")


def test_kill9_with_undelivered_events_loses_none(
    serve_factory: list[ServeProcess],
    receiver: HoldingReceiver,
    tmp_path: Path,
    database_url: str,
    fleet: SimFleet,
) -> None:
    data = tmp_path / "data"
    first = _serve(data, database_url, fleet).start()
    serve_factory.append(first)
    api = first.client()
    hosts = register_fleet(api, fleet)
    created = api.post(
        "/api/v1/webhooks", json={"url": receiver.url, "secret": SECRET, "events": ["*"]}
    )
    assert created.status_code == 201, created.text
    hook = created.json()["id"]
    script = save_script(api, name="noisy", body="echo hi\n")
    ids = [
        api.post(
            f"/api/v1/automation/scripts/{script['id']}/execute", json={"host_ids": hosts}
        ).json()["id"]
        for _ in range(EXECUTIONS)
    ]
    expected: set[tuple[str, str, str | None]] = set()
    for eid in ids:
        final = wait_terminal(api, eid)
        assert final["status"] == "succeeded", final
        expected.add(("execution.succeeded", eid, None))
        expected |= {("host_run.succeeded", eid, run["id"]) for run in final["hosts"]}
    assert len(expected) == EXECUTIONS * (len(hosts) + 1) >= 100

    def deliveries() -> list[dict[str, Any]]:
        resp = api.get(f"/api/v1/webhooks/{hook}/deliveries", params={"limit": 1000})
        assert resp.status_code == 200, resp.text
        return list(resp.json())

    def backlog() -> list[dict[str, Any]] | None:
        pending = [d for d in deliveries() if d["state"] == "pending"]
        return pending if len(pending) >= 100 and receiver.snapshot() else None

    wait_for(backlog, timeout=60, what="100 pending deliveries, some in flight")
    held = receiver.snapshot()
    assert all(d["state"] != "delivered" for d in deliveries())
    api.close()

    first.kill9()
    second = _serve(data, database_url, fleet).start()
    serve_factory.append(second)
    api = second.client()
    receiver.release()

    def all_delivered() -> list[dict[str, Any]] | None:
        rows = deliveries()
        seen = {_identity(body) for _, body in receiver.snapshot()}
        done = all(d["state"] == "delivered" for d in rows) and expected <= seen
        return rows if done else None

    rows = wait_for(all_delivered, timeout=120, interval=0.2, what="every event delivered")
    api.close()
    assert second.terminate() == 0

    received = receiver.snapshot()
    bodies: dict[str, set[bytes]] = collections.defaultdict(set)
    ids_per_event: dict[tuple[str, str, str | None], set[str]] = collections.defaultdict(set)
    for headers, body in received:
        delivery = headers["X-Muster-Delivery"]
        bodies[delivery].add(body)
        ids_per_event[_identity(body)].add(delivery)
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Muster-Signature"] == signature
        assert headers["X-Muster-Event"] == json.loads(body)["event"]
    # Exactly once per delivery id: every stored event delivered, nothing else sent.
    assert set(bodies) == {d["id"] for d in rows}
    assert all(d["delivered"] and d["attempts"] >= 1 for d in rows)
    # A repeat is the same delivery: same id, same bytes; no event under two ids.
    assert all(len(b) == 1 for b in bodies.values()), "a delivery id carried two bodies"
    assert all(len(i) == 1 for i in ids_per_event.values()), "an event came under two ids"
    assert expected <= set(ids_per_event)
    # What the first server had in flight when it died came again after the restart.
    held_ids = {headers["X-Muster-Delivery"] for headers, _ in held}
    counts = collections.Counter(headers["X-Muster-Delivery"] for headers, _ in received)
    assert held_ids and all(counts[i] >= 2 for i in held_ids)

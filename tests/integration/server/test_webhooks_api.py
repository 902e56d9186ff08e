"""Webhooks: a real local HTTP receiver gets signed state changes, retried after failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.integration.server.harness import wait_for
from tests.integration.server.helpers import save_script, wait_terminal

SECRET = "whsec-0123456789"


class Receiver:
    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.calls = 0
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.calls += 1
                    failing = receiver.calls <= receiver.fail_first
                    if not failing:
                        receiver.accepted.append((dict(self.headers), body))
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.accepted]


@pytest.fixture(autouse=True)
def allow_loopback_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver listens on 127.0.0.1, which webhooks may target only when allowed
    (the server's settings read this before it starts)."""
    monkeypatch.setenv("MUSTER_WEBHOOK_ALLOW", "127.0.0.1/32")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    r.thread.start()
    try:
        yield r
    finally:
        r.httpd.shutdown()
        r.httpd.server_close()


def test_signed_deliveries_with_retries(api: httpx.Client, receiver: Receiver) -> None:
    created = api.post(
        "/api/v1/webhooks", json={"url": receiver.url, "secret": SECRET, "events": ["*"]}
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert "secret" not in hook
    assert [w["id"] for w in api.get("/api/v1/webhooks").json()] == [hook["id"]]

    script = save_script(
        api,
        name="hooked",
        body="echo ok\n",
        parameters=[{"name": "token", "type": "secret", "required": True}],
    )
    eid = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute",
        json={"host_ids": ["localhost"], "parameter_values": {"token": "hunter2-secret"}},
    ).json()["id"]
    assert wait_terminal(api, eid)["status"] == "succeeded"

    def finals_delivered() -> bool:
        # Deliveries are concurrent and retried: no order between events is promised.
        got = {(e["event"], e["execution_id"]) for e in receiver.events()}
        return {("execution.succeeded", eid), ("host_run.succeeded", eid)} <= got

    wait_for(finals_delivered, timeout=60, what="the final execution and host-run webhooks")
    with receiver.lock:
        accepted = list(receiver.accepted)
        calls = receiver.calls
    assert calls >= len(accepted) + 2  # the first two attempts were refused, then retried
    for headers, body in accepted:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Muster-Signature"] == expected
        assert b"hunter2-secret" not in body
    names = [e["event"] for e in receiver.events()]
    assert "host_run.succeeded" in names
    runs = [e for e in receiver.events() if e["event"] == "host_run.succeeded"]
    assert runs[0]["host"] == "localhost" and runs[0]["exit_code"] == 0

    def recorded() -> list[dict[str, Any]] | None:
        items = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
        return items if all(d["delivered"] for d in items) else None

    deliveries = wait_for(recorded, timeout=30, what="every delivery delivered")
    assert any(d["attempts"] > 1 for d in deliveries)  # the refused ones, retried
    assert len({d["id"] for d in deliveries}) == len(deliveries)
    ids = {headers["X-Muster-Delivery"] for headers, _ in accepted}
    assert ids <= {d["id"] for d in deliveries}
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    assert api.get("/api/v1/webhooks").json() == []

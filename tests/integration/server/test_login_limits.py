"""Login throttling against a running server, with real concurrent requests.

Each test starts a real uvicorn server (SQLite file or PostgreSQL) and sends
logins over real sockets. The client address is varied by binding the
client's socket to another loopback address (127.0.0.2, ...), which the
server sees as a different peer; ``X-Forwarded-For`` is honoured only from a
configured trusted proxy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest

from muster.security.passwords import Passwords
from muster.server.auth import security_store
from muster.store.security_ops import SecurityOps
from tests.integration.server.harness import LiveServer, fresh_postgres, server_settings

PW = "plum-orbit-cactus-42"
WRONG = "not-the-password-1"
FLOOD = 40


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Cheap but real argon2id: 40 concurrent default-cost hashes would need 2.5 GB.
    monkeypatch.setattr(
        SecurityOps, "passwords", Passwords(time_cost=1, memory_cost=1024, parallelism=1)
    )


def start(tmp_path: Path, database_url: str, **settings: Any) -> LiveServer:
    live = LiveServer(
        server_settings(tmp_path / "data", database_url, **settings), embedded_worker=False
    ).start()
    sec = security_store(live.app)
    if not any(u.name == "ada" for u in sec.list_users()):
        sec.create_user("ada", roles=["admin"], password=PW)
    return live


@pytest.fixture
def live(database_url: str, tmp_path: Path, cheap_hashes: None) -> Iterator[LiveServer]:
    server = start(tmp_path, database_url)
    try:
        yield server
    finally:
        server.stop()


def client_from(live: LiveServer, address: str = "127.0.0.1", **kw: Any) -> httpx.Client:
    """An anonymous client whose connections come from loopback ``address``."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=live.url, timeout=60.0, transport=transport, **kw)


def login(client: httpx.Client, user: str, password: str, **kw: Any) -> httpx.Response:
    return client.post("/api/v1/auth/login", json={"username": user, "password": password}, **kw)


def concurrent_logins(
    live: LiveServer, attempts: list[tuple[str, str]], address: str = "127.0.0.1"
) -> list[int]:
    """Send every (user, password) at once, each on its own connection; their statuses."""
    start_together = threading.Barrier(len(attempts))

    def one(attempt: tuple[str, str]) -> int:
        with client_from(live, address) as client:
            client.get("/health")  # the connection is open before the barrier
            start_together.wait(timeout=60)
            return login(client, *attempt).status_code

    with ThreadPoolExecutor(len(attempts)) as pool:
        return list(pool.map(one, attempts))


def audit(live: LiveServer, action: str) -> list[dict[str, Any]]:
    with live.client() as api:
        page = api.get("/api/v1/audit", params={"action": action, "limit": 1000}).json()
    return list(page["items"])


def test_concurrent_wrong_passwords_lock_the_flooding_address_not_the_account(
    live: LiveServer,
) -> None:
    statuses = concurrent_logins(live, [("ada", WRONG)] * FLOOD)
    assert set(statuses) <= {401, 429}, statuses
    with client_from(live, "127.0.0.1") as flooder:
        refused = login(flooder, "ada", PW)
    assert refused.status_code in (401, 429), "the right password got in while locked"
    with client_from(live, "127.0.0.2") as elsewhere:
        ok = login(elsewhere, "ada", PW)
    assert ok.status_code == 200, "a flood from one address locked the account everywhere"


def test_repeated_failures_are_aggregated_in_the_audit_log(live: LiveServer) -> None:
    concurrent_logins(live, [("ada", WRONG)] * FLOOD)
    failed = audit(live, "auth.login_failed")
    throttled = audit(live, "auth.login_throttled")
    assert 1 <= len(failed) + len(throttled) <= 8, (failed, throttled)
    assert all(r["address"] == "127.0.0.1" for r in failed + throttled)
    counted = sum(int(r["details"]["failures"]) for r in failed if r["target"] == "user:ada")
    assert max(int(r["details"]["failures"]) for r in failed) >= 8, failed
    assert counted >= 8
    shown = [r for r in throttled if r["details"].get("attempts")]
    assert all(int(r["details"]["attempts"]) > 1 for r in shown)


def test_one_address_spraying_user_names_is_paused(live: LiveServer) -> None:
    with client_from(live, "127.0.0.3") as sprayer:
        answers = [login(sprayer, f"user{i}", WRONG).status_code for i in range(30)]
        assert set(answers) <= {401, 429} and answers[-1] == 429, answers
        paused = login(sprayer, "ada", PW)
        assert paused.status_code == 429
        assert int(paused.headers["retry-after"]) >= 1
        assert "too many" in paused.json()["message"]
    with client_from(live, "127.0.0.4") as other:
        assert login(other, "ada", PW).status_code == 200


def test_forwarded_for_is_ignored_unless_from_a_trusted_proxy(
    database_url: str, tmp_path: Path, cheap_hashes: None
) -> None:
    live = start(tmp_path, database_url)
    try:
        with client_from(live, "127.0.0.5") as client:
            answers = [
                login(client, f"u{i}", WRONG, headers={"X-Forwarded-For": f"198.51.100.{i}"})
                for i in range(30)
            ]
        assert answers[-1].status_code == 429, "a forged X-Forwarded-For escaped the limit"
        recorded = {r["address"] for r in audit(live, "auth.login_failed")}
        assert recorded == {"127.0.0.5"}, recorded
    finally:
        live.stop()

    with fresh_postgres() if database_url else nullcontext("") as other_db:
        proxied = start(tmp_path / "proxied", other_db, trusted_proxies=["127.0.0.6"])
        try:
            _proxied_logins(proxied)
        finally:
            proxied.stop()


def _proxied_logins(proxied: LiveServer) -> None:
    """Behind trusted proxy 127.0.0.6 the client is the nearest untrusted hop; a
    direct caller still cannot name an address."""
    with client_from(proxied, "127.0.0.6") as proxy:
        login(proxy, "ada", WRONG, headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.6"})
    with client_from(proxied, "127.0.0.7") as direct:
        login(direct, "ada", WRONG, headers={"X-Forwarded-For": "203.0.113.10"})
    failed = audit(proxied, "auth.login_failed")
    recorded = {r["address"] for r in failed if r["target"] == "user:ada"}
    assert recorded == {"203.0.113.9", "127.0.0.7"}, recorded

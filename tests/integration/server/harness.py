"""A real muster server for tests: uvicorn on a free loopback port, in a thread or a process.

Databases: a fresh SQLite file per server, or a fresh PostgreSQL database
(created and dropped here) on the server named by MUSTER_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from muster.config import Settings, normalise_database_url
from muster.errors import NotFoundError
from muster.server.app import create_app
from muster.store.protocols import SecurityStore
from muster.store.sqlalchemy_store import open_store

__all__ = [
    "PG_ENV",
    "LiveServer",
    "admin_token_for",
    "free_port",
    "fresh_postgres",
    "issue_token",
    "pg_base_url",
    "server_settings",
    "wait_for",
]

PG_ENV = "MUSTER_TEST_POSTGRES_URL"


def pg_base_url() -> str | None:
    url = os.environ.get(PG_ENV, "").strip()
    return url or None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new empty database on the test PostgreSQL server; dropped afterwards."""
    import psycopg

    base = pg_base_url()
    assert base is not None
    name = "muster_srv_" + uuid.uuid4().hex[:12]
    admin = normalise_database_url(base).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = admin.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class LiveServer:
    """``create_app`` served by uvicorn in a background thread."""

    def __init__(self, settings: Settings, **app_kwargs: Any) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, **app_kwargs)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
            # As ``muster serve``: the app, not uvicorn, decides whom X-Forwarded-For may name.
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="muster-test-server")
        self.admin_token = ""

    def start(self) -> LiveServer:
        self._thread.start()
        wait_for(
            lambda: self.server.started or not self._thread.is_alive(),
            timeout=60,
            what="server start",
        )
        if not self.server.started:
            raise RuntimeError("the test server did not start (see the log above)")
        try:
            self.admin_token = self._admin_token()
        except BaseException:
            self.stop()  # never leave a server running behind a failed start
            raise
        return self

    def _admin_token(self) -> str:
        """A token for ``test-admin``, made on the first start on this database; a
        server started again on the same database gets a new token for it."""
        sec = self.ctx.store
        try:
            sec.get_user("test-admin")
        except NotFoundError:
            return issue_token(sec, "test-admin", ["admin"])
        issued, _ = sec.create_token("test-admin", "tests")
        return issued.token.reveal()

    def issue_token(self, user: str, roles: list[str]) -> str:
        """A token for a new token-only user with ``roles`` (made directly in the store)."""
        return issue_token(self.ctx.store, user, roles)

    @property
    def ctx(self) -> Any:
        return self.app.state.muster

    def client(self, *, token: str | None = "admin", **kwargs: Any) -> httpx.Client:
        """An HTTP client authenticated as the test admin (``token=None``: anonymous)."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            bearer = self.admin_token if token == "admin" else token
            headers.setdefault("Authorization", f"Bearer {bearer}")
        return httpx.Client(base_url=self.url, timeout=30.0, headers=headers, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(30)


def issue_token(sec: SecurityStore, user: str, roles: list[str]) -> str:
    sec.create_user(user, roles=roles)
    issued, _ = sec.create_token(user, "tests")
    return issued.token.reveal()


def admin_token_for(settings: Settings) -> str:
    """An admin token on the database ``settings`` name (for servers run as processes)."""
    sec = open_store(settings, open_vault=False, listen=False)
    try:
        return issue_token(sec, f"admin-{uuid.uuid4().hex[:8]}", ["admin"])
    finally:
        sec.close()


def server_settings(data_dir: Path, database_url: str = "", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "lease_seconds": 4.0,
        "heartbeat_seconds": 1.0,
        "shutdown_grace": 3.0,
        "worker_concurrency": 8,
    }
    values.update(overrides)
    return Settings(**values)

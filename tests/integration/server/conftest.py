"""Server fixtures: a running server per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server.harness import (
    PG_ENV,
    LiveServer,
    fresh_postgres,
    pg_base_url,
    server_settings,
)

PG_SKIP = f"{PG_ENV} is not set: PostgreSQL server tests skipped"


def pytest_report_header() -> str:
    where = pg_base_url()
    return f"muster server: PostgreSQL at {where}" if where else f"muster server: {PG_SKIP}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    if pg_base_url() is None:
        print(PG_SKIP)
        pytest.skip(PG_SKIP)
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(server_settings(tmp_path / "data", database_url), localhost=True).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client

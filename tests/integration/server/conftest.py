"""Server fixtures: a running server per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from muster.app import SshOptions, default_transports
from muster.server.embedded import embedded_worker_factory
from muster.testing.simfleet import SimFleet
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


@pytest.fixture(scope="session")
def fleet() -> Iterator[SimFleet]:
    """Five simulated SSH hosts (asyncssh in a thread), shared by the session."""
    sim = SimFleet(5, groups=("web", "db")).start_in_thread()
    try:
        yield sim
    finally:
        sim.stop_thread()


@pytest.fixture
def server(database_url: str, tmp_path: Path, fleet: SimFleet) -> Iterator[LiveServer]:
    transports = default_transports(SshOptions(known_hosts=str(fleet.known_hosts_path)))
    live = LiveServer(
        server_settings(tmp_path / "data", database_url),
        localhost=True,
        worker_factory=embedded_worker_factory(transports),
    ).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def register_fleet(api: httpx.Client, fleet: SimFleet) -> list[str]:
    """Register the simulated hosts through the API; returns their names."""
    names = []
    for host in fleet.hosts():
        body = {
            "name": host.name,
            "address": host.address,
            "port": host.port,
            "user": host.user,
            "groups": list(host.groups),
            "labels": dict(host.labels),
            "key_file": str(fleet.client_key_path),
        }
        resp = api.post("/api/v1/hosts", json=body)
        assert resp.status_code == 201, resp.text
        names.append(host.name)
    return names

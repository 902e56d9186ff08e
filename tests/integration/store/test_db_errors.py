"""Database errors leave the store as muster errors, translated once (issue 10)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from muster.domain.hosts import Host, TransportKind
from muster.errors import ConflictError, StoreUnavailable
from muster.server.errors import install_error_handlers
from muster.store._core import make_engine
from muster.store.sqlalchemy_store import SqlStore


def test_an_unreachable_database_is_store_unavailable() -> None:
    # Nothing listens on port 1: the connection is refused at once.
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    store = SqlStore(engine)
    try:
        with pytest.raises(StoreUnavailable) as err:
            store.list_hosts()
        assert "cannot be reached" in str(err.value)
        assert err.value.retry_after > 0
        assert err.value.__cause__ is not None  # the driver's error kept for the log
    finally:
        engine.dispose()


def test_a_unique_rule_is_a_conflict_naming_the_host(store) -> None:
    store.create_host(Host(name="dup", transport=TransportKind.SSH))
    with pytest.raises(ConflictError, match="a host named 'dup' already exists"):
        store.create_host(Host(name="dup", transport=TransportKind.SSH))


def test_the_api_answers_503_with_retry_after_and_no_driver_text() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    store = SqlStore(engine)
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/hosts")
    def hosts() -> list[str]:
        return [h.name for h in store.list_hosts()]

    try:
        response = TestClient(app).get("/hosts")
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
        assert "psycopg" not in response.text and "127.0.0.1:1" not in response.text
    finally:
        engine.dispose()

"""Importing hosts writes in batches (statements grow with batches, not hosts: SQL
only) and stops between batches when asked, keeping nothing (every store)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

from muster.domain.hosts import Host
from muster.errors import ConflictError, OperationCancelledError
from muster.store.base import Store
from muster.store.sqlalchemy_store import SqlStore


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent to the database inside the block (executemany counts once)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _fleet(n: int, **fields: Any) -> list[Host]:
    return [
        Host(name=f"web{i:05d}", address=f"10.0.{i // 256}.{i % 256}", **fields) for i in range(n)
    ]


def test_statements_grow_with_batches_not_with_hosts(store: SqlStore, engine: Engine) -> None:
    with statements(engine) as small:
        store.upsert_hosts(_fleet(1000))
    with statements(engine) as large:
        created, updated = store.upsert_hosts(_fleet(2000, port=2222))
    assert len(created) == 1000 and len(updated) == 1000
    # One lookup and one insert (or update) per batch of hundreds, plus the
    # transaction's own statements: a host-by-host loop sends thousands.
    assert len(small) <= 12, small[:5]
    assert len(large) <= 24, large[:5]
    assert store.get_host("web01999").port == 2222
    assert store.get_host("web00000").port == 2222
    assert store.get_host("web00000").address == "10.0.0.0"
    assert len(store.list_hosts()) == 2000


def test_a_name_twice_in_one_import_is_one_host(store: Store) -> None:
    created, updated = store.upsert_hosts([Host(name="a", port=1), Host(name="a", port=2)])
    assert created == ["a"] and updated == []
    assert store.get_host("a").port == 2


def test_refusing_existing_hosts_keeps_nothing(store: Store) -> None:
    store.upsert_hosts([Host(name="web00700")])
    with pytest.raises(ConflictError, match="web00700"):
        store.upsert_hosts(_fleet(1000), update_existing=False)
    assert [h.name for h in store.list_hosts()] == ["web00700"]


def test_a_stop_request_between_batches_keeps_nothing(store: Store) -> None:
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) >= 2  # after the first batch was written

    with pytest.raises(OperationCancelledError, match="nothing was stored"):
        store.upsert_hosts(_fleet(1500), should_stop=should_stop)
    assert len(asked) == 2
    assert store.list_hosts() == []


def test_a_name_repeated_in_a_later_batch_updates_the_row_just_created(store: Store) -> None:
    fleet = [*_fleet(600), Host(name="web00001", port=2200)]
    created, updated = store.upsert_hosts(fleet)
    assert len(created) == 600 and updated == []
    assert store.get_host("web00001").port == 2200

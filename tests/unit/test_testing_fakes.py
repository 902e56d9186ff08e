"""The fakes muster ships for tests: what they promise beyond the Store contract
(which ``tests/integration/store`` checks against the SQL store)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from muster.domain.hosts import Host
from muster.testing import FakeClock, InMemoryStore


def test_fake_clock_moves_only_forward_and_only_when_told() -> None:
    clock = FakeClock()
    start = clock()
    assert start.tzinfo is not None and clock() == start == clock.now
    assert clock.advance(1.5) == start + dt.timedelta(seconds=1.5) == clock()
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)
    assert clock() == start + dt.timedelta(seconds=1.5)
    with pytest.raises(ValueError, match="aware"):
        FakeClock(dt.datetime(2030, 1, 1))  # a naive time


def test_importing_the_fakes_loads_no_database_or_web_stack() -> None:
    """Users' unit tests import ``muster.testing`` without SQLAlchemy, Alembic or FastAPI."""
    code = (
        "import sys, muster.testing as t; t.InMemoryStore(); "
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'fastapi', 'psycopg') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_reset_forgets_everything_and_the_store_keeps_working() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    store.create_host(Host(name="a"))
    store.reset()
    assert store.list_hosts() == []
    assert store.create_host(Host(name="a")).created_at == clock.now
    store.close()

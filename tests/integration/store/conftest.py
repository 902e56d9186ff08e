"""Every store test runs on real SQLite and real PostgreSQL.

PostgreSQL comes from ``MUSTER_TEST_POSTGRES_URL`` (plain ``postgresql://``
accepted); each test gets a fresh schema, dropped afterwards. Unset, the
PostgreSQL half is skipped with the reason printed in the header and summary.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from muster.config import normalise_database_url
from muster.domain.hosts import Host, TransportKind
from muster.domain.scripts import ScriptVersion
from muster.security.vault import Vault
from muster.store._core import make_engine
from muster.store.base import ExecutionKind, HostTarget, NewExecution
from muster.store.migrations import upgrade
from muster.store.sqlalchemy_store import SqlStore

PG_ENV = "MUSTER_TEST_POSTGRES_URL"
PG_SKIP = f"{PG_ENV} is not set: PostgreSQL store tests skipped (e.g. postgresql://postgres@127.0.0.1:5432/test)"


def pg_url() -> str | None:
    url = os.environ.get(PG_ENV, "").strip()
    return normalise_database_url(url) if url else None


def pytest_terminal_summary(terminalreporter) -> None:
    line = f"PostgreSQL at {pg_url()}" if pg_url() else PG_SKIP
    terminalreporter.write_line(f"muster store tests: {line}")


class FakeClock:
    """A clock the tests move by hand: lease and timeout paths without sleeping."""

    def __init__(self) -> None:
        self.now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections all use ``schema`` (also for subprocesses and LISTEN)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """The URL of a fresh, migrated database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'muster.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    base = pg_url()
    if base is None:
        pytest.skip(PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = with_search_path(base, schema)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def vault() -> Vault:
    return Vault(os.urandom(32))


@pytest.fixture
def store(engine, clock, vault) -> Iterator[SqlStore]:
    s = SqlStore(engine, vault=vault, clock=clock, output_cap_bytes=1000, queued_timeout=1800)
    yield s
    s.notifier.close()


def make_hosts(store: SqlStore, n: int, prefix: str = "h") -> list[HostTarget]:
    targets = []
    for i in range(n):
        rec = store.create_host(Host(name=f"{prefix}{i:03d}", transport=TransportKind.LOCAL))
        targets.append(HostTarget(rec.id, rec.name))
    return targets


def script_execution(
    store: SqlStore,
    targets: list[HostTarget],
    *,
    body: str = "echo hi",
    name: str = "s",
    idempotent: bool = False,
    timeout: float = 60,
    **kwargs: object,
):
    saved = store.save_script(
        ScriptVersion(name=name, shell="bash", body=body, idempotent=idempotent, timeout=timeout)
    )
    v = saved.version
    return store.create_execution(
        NewExecution(
            kind=ExecutionKind.SCRIPT,
            targets=targets,
            timeout=v.timeout,
            script_id=v.script_id,
            script_version=v.number,
            content_hash=v.content_hash,
            idempotent=v.idempotent,
            **kwargs,  # type: ignore[arg-type]
        )
    )

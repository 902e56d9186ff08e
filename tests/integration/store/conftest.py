"""The Store contract suite: every store test runs on real SQLite and real PostgreSQL,
and each one that asks only for ``store`` also on :class:`muster.testing.InMemoryStore`.

Which tests are the contract is decided by what they ask for: a test that
reaches the database itself (``db_url``, ``engine``, or a fixture that takes
them) is SQL-only (migrations, statements, notifications, several engines);
one that speaks to ``store`` alone runs on all three stores, so the shipped
fake is held to the same tests as the SQL store.

PostgreSQL comes from ``MUSTER_TEST_POSTGRES_URL`` (plain ``postgresql://``
accepted); each test gets a fresh schema, dropped afterwards. Unset, the
PostgreSQL half is skipped with the reason printed in the header and summary.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from muster.config import normalise_database_url
from muster.domain.hosts import Host, TransportKind
from muster.domain.scripts import ScriptVersion
from muster.security.vault import Vault
from muster.store._core import make_engine
from muster.store.base import ExecutionKind, ExecutionRecord, HostTarget, NewExecution, Store
from muster.store.migrations import upgrade
from muster.store.sqlalchemy_store import SqlStore
from muster.testing import FakeClock, InMemoryStore

PG_ENV = "MUSTER_TEST_POSTGRES_URL"
PG_SKIP = f"{PG_ENV} is not set: PostgreSQL store tests skipped (e.g. postgresql://postgres@127.0.0.1:5432/test)"


def pg_url() -> str | None:
    url = os.environ.get(PG_ENV, "").strip()
    return normalise_database_url(url) if url else None


def pytest_terminal_summary(terminalreporter) -> None:
    line = f"PostgreSQL at {pg_url()}" if pg_url() else PG_SKIP
    terminalreporter.write_line(f"muster store tests: {line}")
    memory = [
        r
        for outcome in ("passed", "failed")
        for r in terminalreporter.stats.get(outcome, [])
        if getattr(r, "when", "call") == "call"
        and MEMORY in r.nodeid.rpartition("[")[2].rstrip("]").split("-")
    ]
    if memory:
        failed = sum(1 for r in memory if r.failed)
        terminalreporter.write_line(
            f"muster store contract on InMemoryStore: {len(memory) - failed} passed, "
            f"{failed} failed"
        )


SQL_BACKENDS = ("sqlite", "postgres")
MEMORY = "memory"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``backend`` takes the in-memory store too unless the test needs a database."""
    if "backend" in metafunc.fixturenames:
        sql_only = "db_url" in metafunc.fixturenames
        kinds = list(SQL_BACKENDS) if sql_only else [*SQL_BACKENDS, MEMORY]
        metafunc.parametrize("backend", kinds, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections all use ``schema`` (also for subprocesses and LISTEN)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def db_url(backend: str, tmp_path) -> Iterator[str]:
    """The URL of a fresh, migrated database."""
    assert backend in SQL_BACKENDS, "a test that needs a database runs only on SQL stores"
    if backend == "sqlite":
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
def store(
    backend: str, request: pytest.FixtureRequest, clock: FakeClock, vault: Vault
) -> Iterator[SqlStore | InMemoryStore]:
    """The store under the contract: SqlStore on SQLite or PostgreSQL, or InMemoryStore.

    The database is fetched only for SQL backends, so a test asking for
    ``store`` alone does not depend on ``db_url`` and gets the memory case too.
    """
    s: SqlStore | InMemoryStore
    if backend == MEMORY:
        s = InMemoryStore(clock=clock, output_cap_bytes=1000, queued_timeout=1800)
    else:
        engine = request.getfixturevalue("engine")
        s = SqlStore(engine, vault=vault, clock=clock, output_cap_bytes=1000, queued_timeout=1800)
    yield s
    s.notifier.close()


@pytest.fixture
def peers(
    backend: str, store: SqlStore | InMemoryStore, request: pytest.FixtureRequest, vault: Vault
) -> Iterator[Callable[[int], list[Store]]]:
    """``peers(n)``: n more handles on ``store``'s data, as n worker processes would hold.

    On SQL, each has its own engine (its own connection pool); in memory, they
    are the store itself: one object shared by threads is what it promises.
    """
    url = None if backend == MEMORY else request.getfixturevalue("db_url")
    made: list[SqlStore] = []

    def make(n: int) -> list[Store]:
        if url is None:
            return [store] * n
        new = [SqlStore(make_engine(url), vault=vault, clock=store.clock) for _ in range(n)]
        made.extend(new)
        return list(new)

    yield make
    for s in made:
        s.notifier.close()
        s.engine.dispose()


def dump_everything(store: Store) -> str:
    """Everything the store holds, as text: a database's every row, or the
    in-memory store's every object (what a debugger or a heap dump would show)."""
    if isinstance(store, InMemoryStore):
        return repr(vars(store))
    assert isinstance(store, SqlStore)
    from sqlalchemy import MetaData, select

    md = MetaData()
    md.reflect(store.engine)
    parts = []
    with store.engine.connect() as conn:
        for table in md.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def make_hosts(store: Store, n: int, prefix: str = "h") -> list[HostTarget]:
    targets = []
    for i in range(n):
        rec = store.create_host(Host(name=f"{prefix}{i:03d}", transport=TransportKind.LOCAL))
        targets.append(HostTarget(rec.id, rec.name))
    return targets


def script_execution(
    store: Store,
    targets: list[HostTarget],
    *,
    body: str = "echo hi",
    name: str = "s",
    idempotent: bool = False,
    timeout: float = 60,
    **kwargs: object,
) -> ExecutionRecord:
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

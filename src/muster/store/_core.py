"""Engine set-up and the shared core every part of the SQL store builds on.

SQLite: WAL, ``busy_timeout``, foreign keys on, and every write transaction
opened with ``BEGIN IMMEDIATE`` so that two writers queue on the lock rather
than one failing halfway (a claim is then a whole serialised transaction).
PostgreSQL: psycopg 3, READ COMMITTED; every change is a compare-and-set
``UPDATE ... WHERE`` so concurrent writers never both win.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text

from muster.config import normalise_database_url
from muster.security.vault import Vault
from muster.store.db_errors import translated
from muster.store.notify import Notifier

__all__ = ["StoreCore", "make_engine", "new_id", "utcnow"]

_READ_ONLY = "muster_read_only"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with muster's connection settings applied."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError("use a file for SQLite: the queue needs several connections")
        connect_args = {"timeout": 30.0, "check_same_thread": False}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: it costs a round trip per checkout; a dropped connection
    # fails one statement and SQLAlchemy then refreshes the pool.
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, open transactions.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class StoreCore:
    """Connection handling, the clock, the vault and notifications."""

    def __init__(
        self,
        engine: Engine,
        *,
        vault: Vault | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        output_cap_bytes: int = 1024 * 1024,
        tail_chars: int = 4096,
        queued_timeout: float = 30 * 60.0,
    ) -> None:
        self.engine = engine
        self.vault = vault
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.output_cap_bytes = output_cap_bytes
        self.tail_chars = tail_chars
        self.queued_timeout = queued_timeout
        self.is_postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def _tx(self, *, notify: Iterable[str] = ()) -> Iterator[_Tx]:
        """One write transaction; ``tx.notify(key)`` wakes subscribers after commit."""
        tx = _Tx(self.is_postgres)
        for key in notify:
            tx.notify(key)
        with translated(), self.engine.begin() as conn:
            tx.conn = conn
            yield tx
            if self.is_postgres and tx.keys:
                conn.execute(
                    text("SELECT pg_notify('muster', k) FROM unnest(CAST(:keys AS text[])) AS k"),
                    {"keys": tx.keys},
                )
        self.notifier.publish_many(tx.keys)

    @contextmanager
    def _single(self) -> Iterator[Connection]:
        """For one self-contained statement: autocommit on PostgreSQL (one round
        trip, no BEGIN/COMMIT), an IMMEDIATE transaction on SQLite."""
        with translated():
            if self.is_postgres:
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    yield conn
            else:
                with self.engine.begin() as conn:
                    yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with (
            translated(),
            self.engine.connect().execution_options(**{_READ_ONLY: True}) as conn,
            conn.begin(),
        ):
            yield conn

    def close(self) -> None:
        self.notifier.close()
        self.engine.dispose()


class _Tx:
    """A connection plus the notification keys to send when it commits."""

    __slots__ = ("conn", "is_postgres", "keys")

    def __init__(self, is_postgres: bool) -> None:
        self.is_postgres = is_postgres
        self.keys: list[str] = []
        self.conn: Connection

    def notify(self, key: str) -> None:
        if key not in self.keys:
            self.keys.append(key)

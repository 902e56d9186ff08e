"""The SQL store: SQLite by default, PostgreSQL by URL; one class, split by meaning.

Scripts (``_scripts``), hosts (``_hosts``), executions and their actions
(``_executions``), the queue and reaper (``_queue``) and output
(``_output``) are separate modules; :class:`SqlStore` joins them.
:func:`open_store` is the edge: it builds the engine, runs migrations,
loads the vault key and, on PostgreSQL, starts the LISTEN thread.
"""

from __future__ import annotations

from sqlalchemy import Engine

from muster.config import Settings
from muster.security.vault import Vault, load_or_create_key
from muster.store._core import make_engine
from muster.store._executions import ExecutionOps
from muster.store._hosts import HostOps
from muster.store._output import OutputOps
from muster.store._queue import QueueOps
from muster.store._scripts import ScriptOps
from muster.store.migrations import upgrade
from muster.store.notify import Notifier, PostgresListener

__all__ = ["SqlStore", "libpq_conninfo", "open_store"]


class SqlStore(ScriptOps, HostOps, ExecutionOps, QueueOps, OutputOps):
    """The :class:`~muster.store.base.Store` over SQLAlchemy; see ``base`` for the contract."""


def libpq_conninfo(engine: Engine) -> str:
    """The engine's URL as psycopg/libpq understands it (no SQLAlchemy driver suffix)."""
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def open_store(
    settings: Settings,
    *,
    engine: Engine | None = None,
    migrate: bool = True,
    listen: bool = True,
    create_key: bool = True,
) -> SqlStore:
    """A ready store for ``settings``: schema migrated, key loaded, notifications on."""
    if engine is None:
        if not settings.database_url:
            settings.ensure_data_dir()
        engine = make_engine(settings.effective_database_url)
    if migrate:
        upgrade(engine)
    settings_key = settings.secret_key.get_secret_value()
    if not settings_key and not settings.key_file.exists() and create_key:
        settings.ensure_data_dir()
    key = load_or_create_key(settings_key, settings.key_file, create=create_key)
    notifier = Notifier()
    if listen and engine.dialect.name == "postgresql":
        PostgresListener(libpq_conninfo(engine), notifier).start()
    return SqlStore(
        engine,
        vault=Vault(key),
        notifier=notifier,
        output_cap_bytes=settings.output_cap_bytes,
        queued_timeout=settings.queued_timeout,
    )

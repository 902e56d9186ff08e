"""The SQL store: SQLite by default, PostgreSQL by URL; one class, split by meaning.

Scripts (``_scripts``), hosts (``_hosts``), executions and their actions
(``_executions``), the queue and reaper (``_queue``), output (``_output``),
the console's reads (``console_reads``), the health and metrics reads
(``_metrics``), and the server's areas (users and tokens in
``security_ops``, sessions, audit, approvals and their rules, credentials,
worker presence in ``worker_ops``)
are separate modules; :class:`SqlStore` joins them, so one object per
process holds every area (:mod:`muster.store.protocols` names them).
:func:`open_store` is the edge: it builds the engine, runs migrations,
loads the vault and audit keys and, on PostgreSQL, starts the LISTEN thread.
"""

from __future__ import annotations

from sqlalchemy import Engine

from muster.config import Settings
from muster.security.vault import Vault, VaultError, load_keyring
from muster.store._core import make_engine
from muster.store._executions import ExecutionOps
from muster.store._hosts import HostOps
from muster.store._metrics import MetricsOps
from muster.store._output import OutputOps
from muster.store._queue import QueueOps
from muster.store._scripts import ScriptOps
from muster.store.approval_policy_store import ApprovalPolicyOps
from muster.store.approval_store import ApprovalOps
from muster.store.audit_store import AuditOps, open_audit_keys
from muster.store.console_reads import ConsoleReadOps
from muster.store.credential_store import CredentialOps
from muster.store.migrations import upgrade
from muster.store.notify import Notifier, PostgresListener
from muster.store.rollout_instances import RolloutInstanceOps
from muster.store.rollout_report_ops import RolloutReportOps
from muster.store.schedule_store import ScheduleOps
from muster.store.security_ops import SecurityOps
from muster.store.session_store import SessionOps
from muster.store.webhooks import WebhookOps
from muster.store.window_ops import WindowOps
from muster.store.worker_ops import WorkerOps

__all__ = ["SqlStore", "libpq_conninfo", "open_store"]


class SqlStore(
    ScheduleOps,
    ScriptOps,
    HostOps,
    ExecutionOps,
    QueueOps,
    OutputOps,
    CredentialOps,
    ConsoleReadOps,
    MetricsOps,
    SecurityOps,
    SessionOps,
    AuditOps,
    ApprovalOps,
    ApprovalPolicyOps,
    WebhookOps,
    WindowOps,
    WorkerOps,
    RolloutInstanceOps,
    RolloutReportOps,
):
    """The :class:`~muster.store.base.Store` over SQLAlchemy, and every area of
    :class:`~muster.store.protocols.ServerStore`; see those for the contracts."""


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
    open_vault: bool = True,
    audit_key: bool = True,
) -> SqlStore:
    """A ready store for ``settings``: schema migrated, vault and audit keys loaded,
    notifications on.

    ``create_key=False`` for readers (``muster audit verify``): no key is created,
    so nothing is written. ``open_vault=False`` for commands that never touch a
    sealed value (``muster user``, ``muster audit``): they then work where the
    master key is not configured; credential operations refuse with a clear error.
    ``audit_key=False`` for a command that writes no audit record and must not
    depend on the audit key (``muster secrets rotate-key`` brings its own vault).
    """
    owned = engine is None
    if engine is None:
        if not settings.database_url:
            settings.ensure_data_dir()
        engine = make_engine(settings.effective_database_url)
    if migrate:
        upgrade(engine)
    notifier = Notifier()
    store = SqlStore(
        engine,
        notifier=notifier,
        output_cap_bytes=settings.output_cap_bytes,
        queued_timeout=settings.queued_timeout,
    )
    try:
        if open_vault:
            store.vault = _open_vault(settings, store, create_key)
        if audit_key:
            open_audit_keys(engine, settings, create=create_key)
    except BaseException:
        if owned:
            store.close()
        raise
    if listen and engine.dialect.name == "postgresql":
        PostgresListener(libpq_conninfo(engine), notifier).start()
    return store


def _open_vault(settings: Settings, store: CredentialOps, create_key: bool) -> Vault:
    """The configured keys, checked against what the database holds sealed.

    A database with sealed values and no configured key (or a key that did not
    seal them) stops here with a clear error: a fresh key would silently make
    every stored secret unreadable.
    """
    explicit = settings.secret_key.get_secret_value()
    used = store.sealed_key_ids()
    if not explicit and not settings.key_file.exists():
        if used:
            raise VaultError(
                f"the database holds secrets sealed with key {', '.join(sorted(used))}, but no "
                f"key is configured: set MUSTER_SECRET_KEY or restore the key file "
                f"{settings.key_file}"
            )
        if create_key:
            settings.ensure_data_dir()
    key, older = load_keyring(
        explicit,
        settings.key_file,
        old=settings.old_secret_keys.get_secret_value(),
        create=create_key,
    )
    vault = Vault(key, older, watch=None if explicit else settings.key_file)
    missing = used - vault.key_ids
    if missing:
        raise VaultError(
            f"the database holds secrets sealed with key {', '.join(sorted(missing))}, which "
            f"is not configured (configured: {', '.join(sorted(vault.key_ids))}): set "
            "MUSTER_SECRET_KEY to that key, or list it in MUSTER_OLD_SECRET_KEYS while "
            "`muster secrets rotate-key` finishes"
        )
    return vault

"""The composition root: the one place that picks the concrete store and transports.

Every face opens what it needs here, so the server, ``muster worker`` and the
CLI's database commands run over the same objects built the same way:

- :func:`open_services` opens the SQL store for :class:`~muster.config.Settings`
  (schema migrated, vault and audit keys loaded, notifications on) and the
  server's transports (SSH with known_hosts and the vault's credentials, the
  local transport isolated); :class:`Needs` says what a process may skip (the
  ``muster user`` commands need no vault key, ``muster audit verify`` writes
  nothing);
- :func:`default_transports` gives a workstation's transports to ``muster run``
  and the library, which keep their runs in memory and never open a database.

Heavy modules (SQLAlchemy, asyncssh) are imported only when a function here
needs them: ``muster run`` and ``muster --help`` import this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from muster.domain.hosts import TransportKind
from muster.transports.base import Transport
from muster.transports.local import LocalIsolation, LocalTransport
from muster.transports.ssh_policy import HostKeyPolicy

if TYPE_CHECKING:
    from muster.config import Settings
    from muster.domain.secret import Secret
    from muster.security.vault import Vault
    from muster.store.notify import Notifier
    from muster.store.protocols import CredentialStore, ServerStore
    from muster.transports.ssh_credentials import CredentialSource

__all__ = [
    "ADMIN",
    "AUDIT_READER",
    "KEY_ROTATION",
    "SCHEDULER",
    "SEEDING",
    "SERVER",
    "Needs",
    "Services",
    "SshOptions",
    "attach_credentials",
    "default_transports",
    "open_services",
    "server_local_transport",
    "settings_transports",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Needs:
    """What a process opens beside the store."""

    #: Load the master key (credentials, secret parameters, webhook secrets).
    vault: bool = True
    #: Create a missing vault or audit key (a writer); a reader creates nothing.
    create_keys: bool = True
    #: Load the audit key (every writer of audit records needs it).
    audit_key: bool = True
    #: Build the server's transports.
    transports: bool = True
    #: Listen for other processes' notifications (PostgreSQL).
    listen: bool = True


#: ``muster serve`` and ``muster worker``: everything.
SERVER = Needs()
#: ``muster user``, ``muster audit list``: identities and the audit log, no master key.
ADMIN = Needs(vault=False, transports=False, listen=False)
#: ``muster audit verify`` / ``anchor`` / ``seal-legacy``: no key is created, nothing written.
AUDIT_READER = Needs(vault=False, create_keys=False, transports=False, listen=False)
#: ``muster secrets rotate-key``: it brings the keyring it rotates and writes no audit record.
KEY_ROTATION = Needs(vault=False, audit_key=False, transports=False, listen=False)
#: ``muster scheduler``: fires through the submission service (the audit key), runs nothing.
SCHEDULER = Needs(transports=False)
#: ``muster demo`` seeding hosts, scripts and its users before the server starts.
SEEDING = Needs(transports=False, listen=False)


@dataclass(slots=True)
class Services:
    """What :func:`open_services` opened; closing it closes what it owns."""

    settings: Settings
    store: ServerStore
    #: Empty unless :attr:`Needs.transports`.
    transports: Mapping[TransportKind, Transport] = field(default_factory=dict)
    #: False when the store was handed in (the caller closes it).
    owns_store: bool = True

    @property
    def vault(self) -> Vault | None:
        return self.store.vault

    @property
    def notifier(self) -> Notifier:
        return self.store.notifier

    def close(self) -> None:
        """For synchronous faces (CLI commands), which open no transports."""
        if self.transports:
            raise RuntimeError("services with transports close with `await aclose()`")
        if self.owns_store:
            self.store.close()

    async def aclose(self) -> None:
        for transport in self.transports.values():
            try:
                await transport.close()
            except Exception:
                _log.exception("closing a transport failed")
        if self.owns_store:
            await asyncio.to_thread(self.store.close)

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_services(
    settings: Settings,
    needs: Needs = SERVER,
    *,
    store: ServerStore | None = None,
    transports: Mapping[TransportKind, Transport] | None = None,
) -> Services:
    """The store and transports for ``settings``: the one way every process opens them.

    ``store``: one built elsewhere (tests, embedding); it is keyed like one opened
    here and left open on close. ``transports``: instead of the settings' (the
    demo's simulated fleet, tests); they still log in with the vault's credentials
    unless they carry their own. Blocking: call it from a thread in async code.
    """
    owns = store is None
    if store is None:
        from muster.store.sqlalchemy_store import open_store

        store = open_store(
            settings,
            open_vault=needs.vault,
            create_key=needs.create_keys,
            audit_key=needs.audit_key,
            listen=needs.listen,
        )
    elif needs.audit_key:
        store.load_audit_key(settings, create=needs.create_keys)
    chosen: Mapping[TransportKind, Transport] = {}
    if needs.transports:
        chosen = transports if transports is not None else settings_transports(settings)
        attach_credentials(chosen, store)
    return Services(settings, store, chosen, owns_store=owns)


@dataclass(frozen=True, slots=True)
class SshOptions:
    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT
    username: str | None = None
    client_keys: Sequence[str] = field(default_factory=tuple)
    connect_timeout: float = 10.0
    #: Seconds between SSH keepalives and how many may go unanswered: a host whose
    #: link died mid-step is noticed (connection_lost) after about their product.
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 3
    #: Vault credentials for hosts (or groups) that name one.
    credentials: CredentialSource | None = None
    #: False: never offer the ssh-agent's keys (a run told to use one key uses only it).
    use_agent: bool = True
    #: The agent socket (``None``: ``SSH_AUTH_SOCK``).
    agent_path: str | None = None
    #: Opens encrypted ``client_keys``.
    passphrase: Secret | None = field(default=None, repr=False)


def default_transports(
    ssh: SshOptions | None = None, *, kinds: Collection[TransportKind] | None = None
) -> Mapping[TransportKind, Transport]:
    """Local and SSH transports; ``kinds`` (what the selected hosts use) limits them,
    so a run that reaches no SSH host never pays for loading asyncssh."""
    wanted = set(TransportKind) if kinds is None else set(kinds)
    transports: dict[TransportKind, Transport] = {}
    if TransportKind.LOCAL in wanted:
        transports[TransportKind.LOCAL] = LocalTransport()
    if TransportKind.SSH in wanted:
        transports[TransportKind.SSH] = _ssh_transport(ssh or SshOptions())
    return transports


def _ssh_transport(opts: SshOptions) -> Transport:
    from muster.transports.ssh import SshTransport

    kwargs: dict[str, object] = {
        "host_key_policy": opts.host_key_policy,
        "connect_timeout": opts.connect_timeout,
        "keepalive_interval": opts.keepalive_interval,
        "keepalive_count_max": opts.keepalive_count_max,
    }
    if opts.known_hosts is not None:
        kwargs["known_hosts"] = opts.known_hosts
    if opts.username:
        kwargs["username"] = opts.username
    if opts.client_keys:
        kwargs["client_keys"] = list(opts.client_keys)
    if opts.credentials is not None:
        kwargs["credentials"] = opts.credentials
    if not opts.use_agent:
        kwargs["use_agent"] = False
    if opts.agent_path is not None:
        kwargs["agent_path"] = opts.agent_path
    if opts.passphrase is not None:
        kwargs["passphrase"] = opts.passphrase
    return SshTransport(**kwargs)  # type: ignore[arg-type]


def settings_transports(settings: Settings) -> Mapping[TransportKind, Transport]:
    """A server's transports: known_hosts and default client keys for SSH, and the
    local transport isolated (see :func:`server_local_transport`)."""
    transports = dict(
        default_transports(
            SshOptions(
                known_hosts=settings.ssh_known_hosts or None,
                client_keys=tuple(settings.ssh_client_keys),
            )
        )
    )
    transports[TransportKind.LOCAL] = server_local_transport(settings)
    return transports


def server_local_transport(settings: Settings) -> LocalTransport:
    """The local transport of a server (and its workers): the server's own machine holds
    the database and vault key, so plans run as ``settings.local_run_as`` in a fresh
    private directory with a clean environment, never as the server's account."""
    return LocalTransport(isolation=LocalIsolation(user=settings.local_run_as))


def attach_credentials(
    transports: Mapping[TransportKind, Transport], store: CredentialStore
) -> None:
    """Let transports that log in (SSH) use the vault's credentials, unless already set."""
    from muster.store.credential_store import StoreCredentialSource

    for transport in transports.values():
        use = getattr(transport, "use_credentials", None)
        if use is not None and getattr(transport, "credentials", None) is None:
            use(StoreCredentialSource(store))

"""The one place that picks concrete transports (and, for the server, the store)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from muster.domain.hosts import TransportKind
from muster.transports.base import Transport
from muster.transports.local import LocalIsolation, LocalTransport
from muster.transports.ssh_policy import HostKeyPolicy

if TYPE_CHECKING:
    from muster.config import Settings
    from muster.transports.ssh_credentials import CredentialSource

__all__ = [
    "SshOptions",
    "attach_credentials",
    "default_transports",
    "server_local_transport",
    "settings_transports",
]


@dataclass(frozen=True, slots=True)
class SshOptions:
    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT
    username: str | None = None
    client_keys: Sequence[str] = field(default_factory=tuple)
    connect_timeout: float = 10.0
    #: Vault credentials for hosts (or groups) that name one.
    credentials: CredentialSource | None = None


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
    }
    if opts.known_hosts is not None:
        kwargs["known_hosts"] = opts.known_hosts
    if opts.username:
        kwargs["username"] = opts.username
    if opts.client_keys:
        kwargs["client_keys"] = list(opts.client_keys)
    if opts.credentials is not None:
        kwargs["credentials"] = opts.credentials
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


def attach_credentials(transports: Mapping[TransportKind, Transport], store: Any) -> None:
    """Let transports that log in (SSH) use the vault's credentials, unless already set."""
    from muster.store.credential_store import CredentialOps, StoreCredentialSource

    if not isinstance(store, CredentialOps):
        return
    for transport in transports.values():
        use = getattr(transport, "use_credentials", None)
        if use is not None and getattr(transport, "credentials", None) is None:
            use(StoreCredentialSource(store))

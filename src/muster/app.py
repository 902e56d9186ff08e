"""The one place that picks concrete transports (and, for the server, the store)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from muster.domain.hosts import TransportKind
from muster.transports.base import Transport
from muster.transports.local import LocalTransport
from muster.transports.ssh import HostKeyPolicy, SshTransport
from muster.transports.ssh_credentials import CredentialSource

if TYPE_CHECKING:
    from muster.config import Settings

__all__ = ["SshOptions", "attach_credentials", "default_transports", "settings_transports"]


@dataclass(frozen=True, slots=True)
class SshOptions:
    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT
    username: str | None = None
    client_keys: Sequence[str] = field(default_factory=tuple)
    connect_timeout: float = 10.0
    #: Vault credentials for hosts (or groups) that name one.
    credentials: CredentialSource | None = None


def default_transports(ssh: SshOptions | None = None) -> Mapping[TransportKind, Transport]:
    opts = ssh or SshOptions()
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
    return {
        TransportKind.LOCAL: LocalTransport(),
        TransportKind.SSH: SshTransport(**kwargs),  # type: ignore[arg-type]
    }


def settings_transports(settings: Settings) -> Mapping[TransportKind, Transport]:
    """Transports as the settings say: known_hosts and default client keys for SSH."""
    return default_transports(
        SshOptions(
            known_hosts=settings.ssh_known_hosts or None,
            client_keys=tuple(settings.ssh_client_keys),
        )
    )


def attach_credentials(transports: Mapping[TransportKind, Transport], store: Any) -> None:
    """Let transports that log in (SSH) use the vault's credentials, unless already set."""
    from muster.store.credential_store import CredentialOps, StoreCredentialSource

    if not isinstance(store, CredentialOps):
        return
    for transport in transports.values():
        use = getattr(transport, "use_credentials", None)
        if use is not None and getattr(transport, "credentials", None) is None:
            use(StoreCredentialSource(store))

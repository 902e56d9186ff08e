"""Credentials the SSH transport logs in with, looked up per host from the vault.

A host names a credential (``Host.credential_ref``) or inherits its group's;
the source opens it from the encrypted store only when a connection is made,
and the transport turns it into asyncssh options (an imported private key,
or a password). The opened value stays wrapped in :class:`Secret` until
asyncssh needs it.
"""

from __future__ import annotations

from typing import Any, Protocol

import asyncssh

from muster.domain.credentials import CredentialKind, SshCredential
from muster.domain.hosts import Host
from muster.domain.states import FailureReason
from muster.errors import TransportError

__all__ = ["CredentialSource", "key_fingerprint", "ssh_auth_options"]


class CredentialSource(Protocol):
    """Finds and opens the credential a host should log in with (``None``: none)."""

    async def ssh_credential(self, host: Host) -> SshCredential | None: ...


def ssh_auth_options(cred: SshCredential) -> dict[str, Any]:
    """asyncssh connection keywords for ``cred``; a bad key is an ``auth_failed`` error."""
    if cred.kind is CredentialKind.SSH_KEY:
        try:
            key = asyncssh.import_private_key(
                cred.secret.reveal(),
                cred.passphrase.reveal() if cred.passphrase is not None else None,
            )
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise TransportError(
                f"credential {cred.name}: not a usable private key ({exc.__class__.__name__})",
                reason=FailureReason.AUTH_FAILED,
            ) from None
        return {"client_keys": [key], "password": None, "agent_path": None}
    if cred.kind is CredentialKind.PASSWORD:
        return {"client_keys": None, "password": cred.secret.reveal(), "agent_path": None}
    raise TransportError(
        f"credential {cred.name} is a {cred.kind.value}, not an SSH key or password",
        reason=FailureReason.AUTH_FAILED,
    )


def key_fingerprint(private_key: str, passphrase: str | None = None) -> str:
    """``<type> SHA256:...`` of a private key, or ``ValueError`` when it is not one."""
    try:
        key = asyncssh.import_private_key(private_key, passphrase)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"not a usable private key ({exc.__class__.__name__})") from None
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"

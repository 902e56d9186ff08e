"""How an in-process run logs in over SSH (seed 004's ``SSHAuth``).

Three ways, each exclusive so that a run logs in exactly as it was told:

* :meth:`SSHAuth.from_keyfile`: that private key only. The agent is turned
  off for the run, so a key loaded in the user's agent can never stand in
  for the one named; the file is checked up front (exists, readable, a
  private key, the passphrase opens it) and a bad one is an error naming
  the file, not a host-by-host ``auth_failed``.
* :meth:`SSHAuth.from_agent`: the keys of a running ssh-agent
  (``SSH_AUTH_SOCK`` or the socket given). asyncssh also offers the
  default key files (``~/.ssh/id_*``) beside the agent's keys.
* :meth:`SSHAuth.from_credential`: a credential stored sealed in the vault
  (the server's credential store), opened only when a connection is made.

The passphrase is held as a :class:`~muster.domain.secret.Secret`;
``repr`` shows the kind and the path or name, never key material.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from muster.app import SshOptions
from muster.domain.credentials import SshCredential
from muster.domain.hosts import Host
from muster.domain.secret import Secret
from muster.errors import ValidationError

__all__ = ["AuthKind", "CredentialOpener", "SSHAuth"]


class AuthKind(enum.StrEnum):
    KEYFILE = "keyfile"
    AGENT = "agent"
    CREDENTIAL = "credential"


class CredentialOpener(Protocol):
    """What :meth:`SSHAuth.from_credential` reads from: the store's credential operations."""

    def open_credential(self, id_or_name: str) -> SshCredential: ...


class _NamedCredential:
    """A credential source that logs every host in with one named vault credential."""

    def __init__(self, name: str, store: CredentialOpener) -> None:
        self._name = name
        self._store = store

    async def ssh_credential(self, host: Host) -> SshCredential | None:
        import asyncio

        return await asyncio.to_thread(self._store.open_credential, self._name)

    def __repr__(self) -> str:
        return f"_NamedCredential({self._name!r})"


@dataclass(frozen=True, slots=True)
class SSHAuth:
    """One way of logging in; pass it to :class:`muster.Engine` (see the module docstring)."""

    kind: AuthKind
    #: The key file (keyfile), the agent socket (agent, ``None``: ``SSH_AUTH_SOCK``),
    #: or the credential's name (credential).
    source: str | None
    username: str | None = None
    known_hosts: str | None = None
    passphrase: Secret | None = field(default=None, repr=False)
    store: CredentialOpener | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_keyfile(
        cls,
        path: str | os.PathLike[str],
        passphrase: str | Secret | None = None,
        username: str | None = None,
        *,
        known_hosts: str | os.PathLike[str] | None = None,
    ) -> SSHAuth:
        """Log in with the private key at ``path`` and nothing else (no agent keys);
        host keys are checked against ``known_hosts`` (default ``~/.ssh/known_hosts``)."""
        resolved = Path(os.path.expanduser(os.fspath(path)))
        secret = Secret(passphrase) if isinstance(passphrase, str) else passphrase
        _check_key_file(resolved, secret)
        return cls(AuthKind.KEYFILE, str(resolved), username, _opt_path(known_hosts), secret)

    @classmethod
    def from_agent(
        cls,
        path: str | os.PathLike[str] | None = None,
        username: str | None = None,
        *,
        known_hosts: str | os.PathLike[str] | None = None,
    ) -> SSHAuth:
        """Log in with the keys of the ssh-agent at ``path`` (default ``SSH_AUTH_SOCK``)."""
        sock = os.fspath(path) if path is not None else os.environ.get("SSH_AUTH_SOCK", "")
        if not sock:
            raise ValidationError(
                "SSHAuth.from_agent: no agent socket given and SSH_AUTH_SOCK is not set "
                "(start ssh-agent and ssh-add a key, or pass the socket path)",
                field="path",
            )
        if not Path(sock).exists():
            raise ValidationError(
                f"SSHAuth.from_agent: agent socket {sock} does not exist", field="path"
            )
        return cls(AuthKind.AGENT, sock, username, _opt_path(known_hosts))

    @classmethod
    def from_credential(
        cls,
        name: str,
        store: CredentialOpener,
        username: str | None = None,
        *,
        known_hosts: str | os.PathLike[str] | None = None,
    ) -> SSHAuth:
        """Log in with the vault credential ``name`` (an SSH key or a password) from
        ``store`` (e.g. ``Store.credentials`` of a server database opened with its vault).

        The credential is opened now once, so a missing name or a vault that cannot
        open it fails here, and again for each connection (never kept in clear).
        """
        if not name:
            raise ValidationError("SSHAuth.from_credential: name is empty", field="name")
        store.open_credential(name)
        return cls(AuthKind.CREDENTIAL, name, username, _opt_path(known_hosts), store=store)

    def ssh_options(self) -> SshOptions:
        """The transport options this login means."""
        if self.kind is AuthKind.KEYFILE:
            assert self.source is not None
            return SshOptions(
                client_keys=(self.source,),
                username=self.username,
                known_hosts=self.known_hosts,
                use_agent=False,
                passphrase=self.passphrase,
            )
        if self.kind is AuthKind.AGENT:
            return SshOptions(
                username=self.username, known_hosts=self.known_hosts, agent_path=self.source
            )
        assert self.source is not None and self.store is not None
        return SshOptions(
            username=self.username,
            known_hosts=self.known_hosts,
            use_agent=False,
            credentials=_NamedCredential(self.source, self.store),
        )


def _opt_path(path: str | os.PathLike[str] | None) -> str | None:
    return os.fspath(path) if path is not None else None


def _check_key_file(path: Path, passphrase: Secret | None) -> None:
    """Refuse a key file the run could not log in with, naming it and why."""
    import asyncssh

    where = f"SSHAuth.from_keyfile: {path}"
    if not path.exists():
        raise ValidationError(f"{where}: no such file", field="path")
    if not path.is_file():
        raise ValidationError(f"{where}: not a regular file", field="path")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"{where}: cannot be read ({exc.strerror})", field="path") from None
    try:
        asyncssh.import_private_key(data, passphrase.reveal() if passphrase else None)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
        # asyncssh says "passphrase" or "decrypt" in its message when the key is encrypted.
        text = str(exc).lower()
        if "passphrase" in text or "decrypt" in text:
            problem = "the passphrase does not open it" if passphrase else "it is encrypted"
            raise ValidationError(
                f"{where}: {problem} (pass passphrase=...)", field="passphrase"
            ) from None
        raise ValidationError(
            f"{where}: not a private key asyncssh can read ({exc.__class__.__name__}; "
            "a .pub file? an OpenSSH-encrypted key without bcrypt installed?)",
            field="path",
        ) from None

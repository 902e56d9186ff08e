"""A credential as the engine sees it once opened: kind, value (wrapped), login user.

Stored sealed by the store's vault; opened only when a connection needs it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from muster.domain.secret import Secret

__all__ = ["CredentialKind", "SshCredential"]


class CredentialKind(enum.StrEnum):
    SSH_KEY = "ssh_key"
    PASSWORD = "password"
    TOKEN = "token"


@dataclass(frozen=True, slots=True)
class SshCredential:
    name: str
    kind: CredentialKind
    secret: Secret
    #: Login user when the host names none.
    username: str | None = None
    #: For an encrypted private key.
    passphrase: Secret | None = None

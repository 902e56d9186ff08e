"""Password hashing (argon2id), verification with rehash detection, and policy.

Stored hashes are PHC strings (``$argon2id$v=19$m=...``) so they carry their
own parameters: raising the cost later makes :meth:`Passwords.verify` report
``needs_rehash`` on the next good login, and the caller stores the new hash.

The policy follows NIST SP 800-63B: a length floor, no composition rules, and
a refusal of passwords that are obviously guessable (one repeated character,
a keyboard/number run, the user's own name, a handful of notorious ones).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from muster.domain.secret import Secret
from muster.errors import ValidationError

__all__ = [
    "DEFAULT_POLICY",
    "PasswordCheck",
    "PasswordPolicy",
    "Passwords",
    "generate_password",
    "hash_password",
    "verify_password",
]

_NOTORIOUS: Final = frozenset(
    {
        "password",
        "passw0rd",
        "password123",
        "password1234",
        "letmein",
        "iloveyou",
        "administrator",
        "changeme",
        "welcome",
        "trustno1",
        "correcthorsebatterystaple",
        "muster",
    }
)
_RUNS: Final = (
    "0123456789012345678901234567890",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
)
# No 0/O, 1/l/I: the bootstrap password is read off a terminal and typed by a human.
_ALPHABET: Final = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _reveal(password: str | Secret) -> str:
    return password.reveal() if isinstance(password, Secret) else password


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """The minimum a new password must meet; ``check`` names every problem."""

    min_length: int = 12
    #: An upper bound keeps a login request from buying minutes of hashing.
    max_length: int = 1024

    def problems(self, password: str | Secret, *, username: str | None = None) -> list[str]:
        pw = _reveal(password)
        found: list[str] = []
        if len(pw) < self.min_length:
            found.append(f"must be at least {self.min_length} characters")
        if len(pw.encode()) > self.max_length:
            found.append(f"must be at most {self.max_length} bytes")
        if pw and pw.strip() == "":
            found.append("must not be only whitespace")
        folded = pw.casefold()
        if pw and len(set(pw)) == 1:
            found.append("must not repeat one character")
        elif folded in _NOTORIOUS or folded.rstrip("0123456789!") in _NOTORIOUS:
            found.append("is a commonly used password")
        elif len(folded) >= 4 and any(folded in run or folded in run[::-1] for run in _RUNS):
            found.append("must not be a keyboard or number sequence")
        if username and len(username) >= 3 and username.casefold() in folded:
            found.append("must not contain the user name")
        return found

    def check(self, password: str | Secret, *, username: str | None = None) -> None:
        """Raise ``ValidationError`` (field ``password``) listing every problem."""
        found = self.problems(password, username=username)
        if found:
            raise ValidationError(
                "password " + "; ".join(found),
                field="password",
                problems={"password": "; ".join(found)},
            )


DEFAULT_POLICY: Final = PasswordPolicy()


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    ok: bool
    #: The hash was made with weaker/other parameters: store a fresh one now.
    needs_rehash: bool = False


class Passwords:
    """argon2id hasher; defaults are RFC 9106's low-memory profile (64 MiB, t=3).

    Tests may pass tiny costs; a hash made with them is still verifiable by
    the default instance (and reported as needing a rehash).
    """

    def __init__(
        self, *, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._dummy: str | None = None

    def hash(self, password: str | Secret) -> str:
        return self._hasher.hash(_reveal(password))

    def verify(self, stored_hash: str, password: str | Secret) -> PasswordCheck:
        """Does ``password`` match? A corrupt or foreign hash is a mismatch, never an error."""
        try:
            self._hasher.verify(stored_hash, _reveal(password))
        except (VerificationError, InvalidHashError):
            return PasswordCheck(ok=False)
        return PasswordCheck(ok=True, needs_rehash=self._hasher.check_needs_rehash(stored_hash))

    def verify_nobody(self, password: str | Secret) -> PasswordCheck:
        """Spend a real verification for an unknown user, so timing does not reveal who exists."""
        if self._dummy is None:
            self._dummy = self.hash(generate_password())
        self.verify(self._dummy, password)
        return PasswordCheck(ok=False)


_DEFAULT = Passwords()


def hash_password(password: str | Secret) -> str:
    """argon2id hash with the default costs."""
    return _DEFAULT.hash(password)


def verify_password(stored_hash: str, password: str | Secret) -> PasswordCheck:
    return _DEFAULT.verify(stored_hash, password)


def generate_password(length: int = 24) -> str:
    """A random password for the one-time bootstrap admin; passes the default policy.

    24 characters over a 57-symbol alphabet: about 140 bits.
    """
    if length < DEFAULT_POLICY.min_length:
        raise ValueError(f"length must be at least {DEFAULT_POLICY.min_length}")
    while True:
        pw = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if not DEFAULT_POLICY.problems(pw):
            return pw

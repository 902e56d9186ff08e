"""API tokens: ``mst_`` + 32 random base62 characters + a 6-character checksum.

The token is shown once, when issued; the store keeps only its SHA-256
digest and a short *lookup* (the first 8 random characters), which finds the
row with an index without the table ever holding anything that
authenticates. A plain hash is enough because the token carries ~190 bits of
randomness: there is nothing to brute-force, so no slow hash is needed on
every API call.

The checksum (CRC32 of the random part) lets a malformed or mistyped token
be refused before touching the database, and lets secret scanners recognise
a real muster token. Comparison of digests is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from muster.domain.secret import Secret
from muster.errors import AuthenticationError, ValidationError

__all__ = [
    "DEFAULT_TTL",
    "LOOKUP_LENGTH",
    "MAX_TTL",
    "TOKEN_PREFIX",
    "IssuedToken",
    "TokenRecord",
    "issue_token",
    "token_digest",
    "token_lookup",
    "verify_token",
]

TOKEN_PREFIX: Final = "mst_"
LOOKUP_LENGTH: Final = 8
DEFAULT_TTL: Final = timedelta(days=90)
MAX_TTL: Final = timedelta(days=366)
_RANDOM_LENGTH: Final = 32
_CHECK_LENGTH: Final = 6
_BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHAPE: Final = re.compile(
    rf"{TOKEN_PREFIX}([0-9A-Za-z]{{{_RANDOM_LENGTH}}})([0-9A-Za-z]{{{_CHECK_LENGTH}}})"
)
_NAME: Final = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
_INVALID: Final = "invalid or expired token"


def _checksum(body: str) -> str:
    n = zlib.crc32(body.encode())
    out = []
    for _ in range(_CHECK_LENGTH):
        n, r = divmod(n, 62)
        out.append(_BASE62[r])
    return "".join(reversed(out))


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the store keeps: nothing here authenticates on its own."""

    lookup: str
    digest: str
    user: str
    name: str
    created_at: datetime
    expires_at: datetime
    #: A narrower role: the token's permissions are this role's intersected with the user's.
    role: str | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class IssuedToken:
    #: The only time the clear token exists; show it to the user once.
    token: Secret
    record: TokenRecord


def _text(token: str | Secret) -> str:
    # Surrounding whitespace is copy-paste noise (a trailing newline from a file), never part.
    return (token.reveal() if isinstance(token, Secret) else token).strip()


def token_digest(token: str | Secret) -> str:
    """SHA-256 hex digest of the whole token text."""
    return hashlib.sha256(_text(token).encode()).hexdigest()


def token_lookup(token: str | Secret) -> str:
    """The lookup key of a well-formed token; ``AuthenticationError`` otherwise."""
    m = _SHAPE.fullmatch(_text(token))
    if m is None or not hmac.compare_digest(_checksum(m.group(1)), m.group(2)):
        raise AuthenticationError(_INVALID)
    return m.group(1)[:LOOKUP_LENGTH]


def issue_token(
    *,
    user: str,
    name: str,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    role: str | None = None,
) -> IssuedToken:
    """A fresh token for ``user``; ``ttl`` is bounded by :data:`MAX_TTL`."""
    if not user:
        raise ValidationError("user: must name a user", field="user")
    if not _NAME.fullmatch(name):
        raise ValidationError("name: 1-64 printable characters", field="name")
    if ttl <= timedelta(0) or ttl > MAX_TTL:
        raise ValidationError(f"ttl: must be positive and at most {MAX_TTL.days} days", field="ttl")
    body = "".join(secrets.choice(_BASE62) for _ in range(_RANDOM_LENGTH))
    token = f"{TOKEN_PREFIX}{body}{_checksum(body)}"
    record = TokenRecord(
        lookup=body[:LOOKUP_LENGTH],
        digest=token_digest(token),
        user=user,
        name=name,
        created_at=now,
        expires_at=now + ttl,
        role=role,
    )
    return IssuedToken(Secret(token), record)


def verify_token(presented: str | Secret, record: TokenRecord | None, now: datetime) -> TokenRecord:
    """The record if ``presented`` is its token and it has not expired.

    Pass ``None`` when the lookup found no row: the digest is still computed
    and compared, so a missing row and a wrong token take the same path and
    raise the same ``AuthenticationError``.
    """
    token_lookup(presented)
    digest = token_digest(presented)
    expected = record.digest if record is not None else "0" * len(digest)
    matches = hmac.compare_digest(digest, expected)
    if record is None or not matches or record.expired(now):
        raise AuthenticationError(_INVALID)
    return record

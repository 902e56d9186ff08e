"""Seal secret values with AES-GCM before they touch the database.

A token is ``v1.<key_id>.<base64url(nonce || ciphertext+tag)>``. The key id
(first 16 hex digits of SHA-256 of the key) is stored in the token so that
rotation can find what an old key sealed. The associated data binds a
ciphertext to its row and field (for example ``execution:<id>:password``):
moved to another row, it no longer opens.

The master key lives outside the database: ``MUSTER_SECRET_KEY`` (url-safe
base64 of 32 bytes) or a key file created with mode 0600 on first start. A
missing or wrong key is a :class:`VaultError`, never a fall back to clear text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from muster.errors import MusterError

__all__ = ["KEY_BYTES", "Vault", "VaultError", "generate_key", "load_or_create_key"]

KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = "v1"


class VaultError(MusterError):
    """A secret cannot be sealed or opened (no key, wrong key, tampered token)."""


def generate_key() -> str:
    """A fresh key, as url-safe base64 text (what ``MUSTER_SECRET_KEY`` holds)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _decode_key(text: str, origin: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise VaultError(f"{origin} is not url-safe base64 of {KEY_BYTES} bytes") from None
    if len(key) != KEY_BYTES:
        raise VaultError(f"{origin} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def load_or_create_key(explicit: str, key_file: Path, *, create: bool = True) -> bytes:
    """The master key: ``explicit`` if given, else ``key_file`` (created 0600 if allowed)."""
    if explicit:
        return _decode_key(explicit, "MUSTER_SECRET_KEY")
    if key_file.exists():
        mode = key_file.stat().st_mode & 0o777
        if mode & 0o077:
            raise VaultError(
                f"key file {key_file} is readable by others (mode {mode:o}); chmod 600 it"
            )
        return _decode_key(key_file.read_text(encoding="ascii"), f"key file {key_file}")
    if not create:
        raise VaultError(f"no secret key: set MUSTER_SECRET_KEY or provide the key file {key_file}")
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = generate_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text + "\n")
    return _decode_key(text, f"key file {key_file}")


class Vault:
    """AES-GCM sealing under one master key."""

    __slots__ = ("_aead", "key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise VaultError(f"a vault key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Vault(key_id={self.key_id})"

    def seal(self, plaintext: str, aad: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{_VERSION}.{self.key_id}.{body}"

    def open(self, token: str, aad: str) -> str:
        try:
            version, key_id, body = token.split(".", 2)
        except ValueError:
            raise VaultError("not a sealed token") from None
        if version != _VERSION:
            raise VaultError(f"unknown token version {version!r}")
        if key_id != self.key_id:
            raise VaultError(
                f"this secret was sealed with key {key_id}, but the configured key is "
                f"{self.key_id}: configure the key it was sealed with"
            )
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise VaultError("sealed secret does not open: tampered or bound elsewhere") from None
        return plain.decode("utf-8")

"""Seal secret values with AES-GCM before they touch the database.

A token is ``v1.<key_id>.<base64url(nonce || ciphertext+tag)>``. The key id
(first 16 hex digits of SHA-256 of the key) is stored in the token so that
rotation can find what an old key sealed. The associated data binds a
ciphertext to its row and field (for example ``execution:<id>:password``):
moved to another row, it no longer opens.

The master key lives outside the database: ``MUSTER_SECRET_KEY`` (url-safe
base64 of 32 bytes) or a key file created with mode 0600 on first start. A
missing or wrong key is a :class:`VaultError`, never a fall back to clear text.

Rotation: a vault seals with its one current key and opens with the current
key or any older key it was given (``readable``), so records sealed before a
rotation stay readable until they are re-sealed. The key file may hold the
current key on its first line and older keys on the following lines.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from muster.errors import VaultError
from muster.security.keys import KEY_BYTES, generate_key, key_id_of

__all__ = [
    "KEY_BYTES",
    "Vault",
    "VaultError",
    "generate_key",
    "key_id_of",
    "load_keyring",
    "load_or_create_key",
    "token_key_id",
    "write_key_file",
]

_NONCE_BYTES = 12
_VERSION = "v1"


def _decode_key(text: str, origin: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise VaultError(f"{origin} is not url-safe base64 of {KEY_BYTES} bytes") from None
    if len(key) != KEY_BYTES:
        raise VaultError(f"{origin} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def token_key_id(token: str) -> str | None:
    """The id of the key that sealed ``token`` (``None`` if it is not a sealed token)."""
    parts = token.split(".", 2)
    return parts[1] if len(parts) == 3 and parts[0] == _VERSION else None


def _read_key_file(key_file: Path) -> list[bytes]:
    mode = key_file.stat().st_mode & 0o777
    if mode & 0o077:
        raise VaultError(f"key file {key_file} is readable by others (mode {mode:o}); chmod 600 it")
    lines = [ln.strip() for ln in key_file.read_text(encoding="ascii").splitlines()]
    keys = [
        _decode_key(ln, f"key file {key_file}") for ln in lines if ln and not ln.startswith("#")
    ]
    if not keys:
        raise VaultError(f"key file {key_file} holds no key")
    return keys


def write_key_file(key_file: Path, keys: list[str]) -> None:
    """Replace ``key_file`` atomically (mode 0600): current key first, older keys after."""
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = key_file.with_name(key_file.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write("".join(k.strip() + "\n" for k in keys))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, key_file)


def load_keyring(
    explicit: str, key_file: Path, *, old: str = "", create: bool = True
) -> tuple[bytes, list[bytes]]:
    """(current key, older readable keys) from ``MUSTER_SECRET_KEY`` (+ comma-separated
    ``old``) or the key file (current first line, older lines after)."""
    older = [_decode_key(t, "MUSTER_OLD_SECRET_KEYS") for t in old.split(",") if t.strip()]
    if explicit:
        return _decode_key(explicit, "MUSTER_SECRET_KEY"), older
    if key_file.exists():
        keys = _read_key_file(key_file)
        return keys[0], keys[1:] + older
    return load_or_create_key("", key_file, create=create), older


def load_or_create_key(explicit: str, key_file: Path, *, create: bool = True) -> bytes:
    """The master key: ``explicit`` if given, else ``key_file`` (created 0600 if allowed)."""
    if explicit:
        return _decode_key(explicit, "MUSTER_SECRET_KEY")
    if key_file.exists():
        return _read_key_file(key_file)[0]
    if not create:
        raise VaultError(f"no secret key: set MUSTER_SECRET_KEY or provide the key file {key_file}")
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = generate_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text + "\n")
    return _decode_key(text, f"key file {key_file}")


class Vault:
    """AES-GCM sealing under one current master key; opening also under older ones."""

    __slots__ = ("_aead", "_extra", "_readable", "_stamp", "_watch", "key_id")

    def __init__(
        self, key: bytes, readable: Iterable[bytes] = (), *, watch: Path | None = None
    ) -> None:
        """``watch``: the key file this vault came from; when it changes (a rotation
        running beside this process), its keys are reloaded before the next use."""
        self._extra = list(readable)
        self._watch = watch
        self._stamp = self._file_stamp()
        self._load(key, self._extra)

    def _load(self, key: bytes, readable: Iterable[bytes]) -> None:
        if len(key) != KEY_BYTES:
            raise VaultError(f"a vault key must be {KEY_BYTES} bytes, got {len(key)}")
        aead = AESGCM(key)
        table = {key_id_of(key): aead}
        for old in readable:
            if len(old) != KEY_BYTES:
                raise VaultError(f"a vault key must be {KEY_BYTES} bytes, got {len(old)}")
            table.setdefault(key_id_of(old), AESGCM(old))
        # Keys once known stay readable in this process: a record sealed under
        # a key that a rotation has since dropped still opens here.
        for kid, known in getattr(self, "_readable", {}).items():
            table.setdefault(kid, known)
        self._aead, self.key_id, self._readable = aead, key_id_of(key), table

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self._watch is None:
            return None
        try:
            st = self._watch.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        if self._watch is None:
            return
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return
        try:
            keys = _read_key_file(self._watch)
        except (OSError, VaultError):
            return  # mid-replace or unreadable: keep the keys we have
        self._stamp = stamp
        self._load(keys[0], keys[1:] + self._extra)

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of every key this vault can open with (the current one included)."""
        self._refresh()
        return frozenset(self._readable)

    def can_open(self, token: str) -> bool:
        self._refresh()
        return token_key_id(token) in self._readable

    def __repr__(self) -> str:
        return f"Vault(key_id={self.key_id})"

    def seal(self, plaintext: str, aad: str) -> str:
        self._refresh()
        kid = self.key_id
        aead = self._readable[kid]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{_VERSION}.{kid}.{body}"

    def open(self, token: str, aad: str) -> str:
        try:
            version, key_id, body = token.split(".", 2)
        except ValueError:
            raise VaultError("not a sealed token") from None
        if version != _VERSION:
            raise VaultError(f"unknown token version {version!r}")
        self._refresh()
        aead = self._readable.get(key_id)
        if aead is None:
            raise VaultError(
                f"this secret was sealed with key {key_id}, but the configured key is "
                f"{self.key_id}: configure the key it was sealed with"
            )
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            plain = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise VaultError("sealed secret does not open: tampered or bound elsewhere") from None
        return plain.decode("utf-8")

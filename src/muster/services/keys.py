"""Master-key rotation: re-seal every stored secret under a new key, in batches, while
servers and workers keep running.

With a key file (:func:`rotate_key_file`) the new key is written first with
the old ones kept readable on the following lines, so running processes (whose
vault watches the file) seal with the new key and still open the old
values; every credential, secret parameter, webhook secret and workflow
instance secret is then re-sealed, the old keys are dropped from the file, and a last pass catches
what was sealed with an old key meanwhile. With ``MUSTER_SECRET_KEY`` the keys
live outside muster (:func:`reseal_under`): whoever manages them configures
the new key with the old ones in ``MUSTER_OLD_SECRET_KEYS``, and this
re-seals everything under the new one.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from muster.errors import VaultError
from muster.security.vault import Vault, generate_key, write_key_file
from muster.store.protocols import CredentialStore

__all__ = [
    "KeyedStore",
    "OldKeysNeeded",
    "Rotation",
    "reseal",
    "reseal_under",
    "rotate_key_file",
]

#: Told the running total after every batch that moved something.
Progress = Callable[[int], None]


class KeyedStore(CredentialStore, Protocol):
    """A store whose sealed values are re-sealed by its own vault (set by the rotation)."""

    vault: Vault | None


class OldKeysNeeded(VaultError):
    """The configured key is the only one: there is nothing to rotate from."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a rotation did: values re-sealed, and the one key that now seals them all."""

    moved: int
    key_id: str


def reseal(store: CredentialStore, *, batch: int = 200, progress: Progress | None = None) -> int:
    """Re-seal, ``batch`` rows per table at a time, everything the store's vault did not
    seal with its current key; returns how many values moved."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    total = 0
    while True:
        moved = store.rekey(batch)
        if not moved:
            return total
        total += moved
        if progress is not None:
            progress(total)


def reseal_under(
    store: KeyedStore,
    current: bytes,
    older: Sequence[bytes],
    *,
    batch: int = 200,
    progress: Progress | None = None,
) -> Rotation:
    """Keys kept outside muster: re-seal under ``current`` what ``older`` keys sealed.

    Without ``older`` there is nothing to move from: :class:`OldKeysNeeded`.
    """
    if not older:
        raise OldKeysNeeded(
            "only one key is configured: configure the new key with the current one "
            "listed as an old key, then rotate"
        )
    vault = Vault(current, older)
    store.vault = vault
    moved = reseal(store, batch=batch, progress=progress)
    _check_done(store, vault)
    return Rotation(moved, vault.key_id)


def rotate_key_file(
    store: KeyedStore,
    key_file: Path,
    current: bytes,
    older: Sequence[bytes],
    *,
    batch: int = 200,
    progress: Progress | None = None,
    new_key: str | None = None,
) -> Rotation:
    """A new key for ``key_file``; every secret re-sealed under it; the old keys dropped.

    ``current``/``older`` are the keys the file (and the environment's old keys)
    hold now. If a value is still sealed with an old key at the end (a process
    that had not yet read the new file sealed it), the file keeps only the new
    key and :class:`VaultError` says to run again (with the old key configured).
    """
    new = new_key if new_key is not None else generate_key()
    write_key_file(key_file, [new, *(_text(k) for k in [current, *older])])
    vault = Vault(_bytes(new), [current, *older])
    store.vault = vault
    moved = reseal(store, batch=batch, progress=progress)
    write_key_file(key_file, [new])
    moved += reseal(store, batch=batch, progress=progress)  # sealed with an old key meanwhile
    _check_done(store, vault)
    return Rotation(moved, vault.key_id)


def _check_done(store: CredentialStore, vault: Vault) -> None:
    left = store.sealed_key_ids() - {vault.key_id}
    if left:
        raise VaultError(f"secrets still sealed with {', '.join(sorted(left))}: run again")


def _text(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii")


def _bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))

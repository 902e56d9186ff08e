"""Vault key rings on real key files: older keys stay readable, and a vault watching its
key file follows a rotation made by another process (new seals use the new key)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from muster.security.vault import (
    Vault,
    VaultError,
    generate_key,
    load_keyring,
    token_key_id,
    write_key_file,
)


def _raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text)


def test_old_keys_open_new_key_seals(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    sealed = Vault(_raw(old)).seal("pw", "credentials:1:secret")
    ring = Vault(_raw(new), [_raw(old)])
    assert ring.open(sealed, "credentials:1:secret") == "pw"
    assert token_key_id(ring.seal("pw", "x")) == ring.key_id != token_key_id(sealed)
    with pytest.raises(VaultError, match="configure the key it was sealed with"):
        Vault(_raw(new)).open(sealed, "credentials:1:secret")


def test_watching_vault_follows_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    first = generate_key()
    write_key_file(key_file, [first])
    assert key_file.stat().st_mode & 0o777 == 0o600
    key, older = load_keyring("", key_file)
    running = Vault(key, older, watch=key_file)
    before = running.seal("v", "a")
    second = generate_key()
    write_key_file(key_file, [second, first])  # a rotation starts elsewhere
    after = running.seal("v", "a")
    assert token_key_id(after) == Vault(_raw(second)).key_id
    write_key_file(key_file, [second])  # ... and ends: the old key leaves the file
    assert running.open(before, "a") == "v"  # still known to this process
    assert running.open(after, "a") == "v"
    key_file.chmod(0o644)
    with pytest.raises(VaultError, match="readable by others"):
        load_keyring("", key_file)

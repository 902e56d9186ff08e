"""Vault: AES-GCM tokens bound to their row and field; keys never fall back to clear."""

from __future__ import annotations

import os
import stat

import pytest

from muster.security.vault import Vault, VaultError, generate_key, load_or_create_key


def test_seal_open_round_trip_and_binding():
    v = Vault(os.urandom(32))
    token = v.seal("p@ss wörd", "execution:1:pw")
    assert "p@ss" not in token and token.startswith(f"v1.{v.key_id}.")
    assert v.open(token, "execution:1:pw") == "p@ss wörd"
    with pytest.raises(VaultError, match="bound elsewhere"):
        v.open(token, "execution:2:pw")
    assert v.seal("x", "a") != v.seal("x", "a")  # fresh nonce every time


def test_wrong_key_and_tampering_are_refused():
    v, other = Vault(os.urandom(32)), Vault(os.urandom(32))
    token = v.seal("s", "aad")
    with pytest.raises(VaultError, match="sealed with key"):
        other.open(token, "aad")
    head, body = token.rsplit(".", 1)
    # A character in the middle carries six bits of ciphertext; the last ones
    # may carry only padding bits, which base64 decoding ignores.
    mid = len(body) // 2
    flipped = body[:mid] + ("A" if body[mid] != "A" else "B") + body[mid + 1 :]
    with pytest.raises(VaultError):
        v.open(f"{head}.{flipped}", "aad")
    with pytest.raises(VaultError):
        v.open("garbage", "aad")


def test_key_file_is_created_0600_and_reused(tmp_path):
    path = tmp_path / "d" / "secret.key"
    key = load_or_create_key("", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key("", path) == key


def test_missing_or_bad_keys_are_clear_errors(tmp_path):
    with pytest.raises(VaultError, match="no secret key"):
        load_or_create_key("", tmp_path / "none.key", create=False)
    with pytest.raises(VaultError, match="32 bytes"):
        load_or_create_key("c2hvcnQ=", tmp_path / "x")
    loose = tmp_path / "loose.key"
    loose.write_text(generate_key())
    loose.chmod(0o644)
    with pytest.raises(VaultError, match="readable by others"):
        load_or_create_key("", loose)
    explicit = generate_key()
    assert len(load_or_create_key(explicit, tmp_path / "unused")) == 32

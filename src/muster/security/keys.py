"""Key text and key ids shared by the vault and the audit chain.

Apart from :mod:`muster.security.vault` so that the audit chain (which an
in-process run writes locally) does not load ``cryptography`` for them.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Final

__all__ = ["KEY_BYTES", "generate_key", "key_id_of"]

KEY_BYTES: Final = 32


def generate_key() -> str:
    """A fresh key, as url-safe base64 text (what ``MUSTER_SECRET_KEY`` holds)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def key_id_of(key: bytes) -> str:
    """The first 16 hex digits of the key's SHA-256: names a key without revealing it."""
    return hashlib.sha256(key).hexdigest()[:16]

"""Replace secret values with ``***`` in text and in JSON-like structures.

These are the one-shot forms, for records written whole (audit details,
webhook bodies, API responses, parameters). Output captured while it
streams, where a secret can straddle two chunks, is masked by the streaming
masker in ``muster.domain.output``.

Longer secrets are replaced first, so a secret that contains a shorter one
is masked whole rather than leaving its remainder visible. Each secret is
also looked for in its base64 and hex forms
(:func:`muster.domain.secret.masked_forms`); the limits of that are stated
in SECURITY.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from muster.domain.secret import MASK, Secret, masked_forms

__all__ = ["MASK", "mask_mapping", "mask_secrets", "secret_pattern"]

_JSONLike = Any


def _values(secrets: Iterable[str | Secret]) -> list[str]:
    return masked_forms(s.reveal() if isinstance(s, Secret) else s for s in secrets)


def secret_pattern(secrets: Iterable[str | Secret]) -> re.Pattern[str] | None:
    """One compiled alternation, longest first; ``None`` when there is nothing to mask.

    Build it once per execution and reuse it for every line.
    """
    vals = _values(secrets)
    if not vals:
        return None
    return re.compile("|".join(re.escape(v) for v in vals))


def mask_secrets(text: str, secrets: Iterable[str | Secret] | re.Pattern[str] | None) -> str:
    """``text`` with every occurrence of every secret replaced by ``***``."""
    pattern = (
        secrets if isinstance(secrets, re.Pattern) or secrets is None else secret_pattern(secrets)
    )
    if pattern is None:
        return text
    return pattern.sub(MASK, text)


_NO_KEYS: Final[frozenset[str]] = frozenset()


def mask_mapping(
    obj: _JSONLike,
    secret_keys: Iterable[str] = _NO_KEYS,
    secrets: Iterable[str | Secret] = (),
) -> _JSONLike:
    """A copy of a JSON-like value with secrets hidden.

    A value under a key in ``secret_keys`` (at any depth) becomes ``***``
    (``None`` stays ``None``: "not set" is not a secret); any ``Secret``
    becomes ``***``; every string, keys included, has the ``secrets`` values
    masked. Tuples come back as lists, as JSON would have them.
    """
    keys = frozenset(secret_keys)
    pattern = secret_pattern(secrets)
    return _walk(obj, keys, pattern)


def _walk(obj: _JSONLike, keys: frozenset[str], pattern: re.Pattern[str] | None) -> _JSONLike:
    if isinstance(obj, Secret):
        return MASK
    if isinstance(obj, str):
        return mask_secrets(obj, pattern)
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            key = mask_secrets(k, pattern) if isinstance(k, str) else k
            out[key] = MASK if k in keys and v is not None else _walk(v, keys, pattern)
        return out
    if isinstance(obj, list | tuple):
        return [_walk(v, keys, pattern) for v in obj]
    return obj

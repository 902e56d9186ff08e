"""A value that must never be shown: its ``repr`` and ``str`` are ``***``.

It is unwrapped (``reveal()``) only where the value enters a process
environment or stdin; everywhere else it travels wrapped.

:func:`masked_forms` lists what masking looks for: the value itself and, for
values of at least :data:`MIN_ENCODED_LENGTH` characters, the forms a script
most often prints it in: base64 (standard and url-safe, with and without
padding, and the part fixed by the value at the other two byte alignments,
so ``base64("user:" + value)`` loses it too) and hex (lower and upper case)
of its UTF-8 bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Final

__all__ = ["MASK", "MIN_ENCODED_LENGTH", "Secret", "masked_forms"]

MASK: Final = "***"
#: Shorter values are masked only as they are: their encodings would be a few
#: characters that turn up in unrelated output.
MIN_ENCODED_LENGTH: Final = 6


def _base64_forms(raw: bytes) -> set[str]:
    forms: set[str] = set()
    whole = base64.b64encode(raw).decode("ascii")
    forms.update((whole, whole.rstrip("=")))
    for shift in range(3):
        # Encoded after ``shift`` bytes of anything: keep the characters whose six
        # bits all come from ``raw``; the neighbours' bits change the others.
        encoded = base64.b64encode(bytes(shift) + raw).decode("ascii")
        first = -(-8 * shift // 6)
        last = 8 * (shift + len(raw)) // 6
        forms.add(encoded[first:last])
    return forms | {f.replace("+", "-").replace("/", "_") for f in forms}


def masked_forms(values: Iterable[str]) -> list[str]:
    """Every text to mask for ``values``, longest first (so a longer form wins)."""
    forms: set[str] = set()
    for value in values:
        if not value:
            continue
        forms.add(value)
        if len(value) >= MIN_ENCODED_LENGTH:
            raw = value.encode("utf-8")
            forms.update(_base64_forms(raw))
            forms.update((raw.hex(), raw.hex().upper()))
    forms.discard("")
    return sorted(forms, key=lambda f: (-len(f), f))


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

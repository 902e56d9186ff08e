"""A value that must never be shown: its ``repr`` and ``str`` are ``***``.

It is unwrapped (``reveal()``) only where the value enters a process
environment or stdin; everywhere else it travels wrapped.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MASK", "Secret"]

MASK: Final = "***"


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

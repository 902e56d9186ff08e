"""Side-by-side diff of two script versions, computed with difflib on the server."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

__all__ = ["DiffRow", "side_by_side"]


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One row of two columns; a number is None where that side has no line."""

    kind: str  # "same", "changed", "removed", "added"
    left_no: int | None
    left: str
    right_no: int | None
    right: str


def side_by_side(old: str, new: str) -> list[DiffRow]:
    """Rows aligning ``old`` (left) with ``new`` (right), changed lines paired."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(
                DiffRow("same", i + 1, a[i], j + 1, b[j])
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
            continue
        left, right = list(range(i1, i2)), list(range(j1, j2))
        for k in range(max(len(left), len(right))):
            li = left[k] if k < len(left) else None
            rj = right[k] if k < len(right) else None
            kind = (
                "changed"
                if li is not None and rj is not None
                else ("removed" if li is not None else "added")
            )
            rows.append(
                DiffRow(
                    kind,
                    None if li is None else li + 1,
                    "" if li is None else a[li],
                    None if rj is None else rj + 1,
                    "" if rj is None else b[rj],
                )
            )
    return rows

"""Side-by-side diff of two script versions, computed with difflib on the server."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from muster.domain.params import ParameterSpec

__all__ = ["DiffRow", "SettingChange", "setting_changes", "side_by_side"]


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


@dataclass(frozen=True, slots=True)
class SettingChange:
    """One setting that differs between two versions, as text ("" where absent)."""

    label: str
    old: str
    new: str


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(getattr(value, "value", value))


def _spec(p: ParameterSpec) -> dict[str, str]:
    return {
        "type": p.type.value,
        "required": _text(p.required),
        "default": _text(p.default),
        "choices": ", ".join(p.choices),
        "description": p.description,
    }


def _param_changes(
    old: Sequence[ParameterSpec], new: Sequence[ParameterSpec]
) -> list[SettingChange]:
    """Per parameter and per field, so a changed default is as visible as a changed line."""
    before = {p.name: p for p in old}
    after = {p.name: p for p in new}
    out: list[SettingChange] = []
    for name in [*before, *(n for n in after if n not in before)]:
        a, b = before.get(name), after.get(name)
        if a is None and b is not None:
            out.append(SettingChange(f"parameter {name}", "", f"added ({b.type.value})"))
        elif b is None and a is not None:
            out.append(SettingChange(f"parameter {name}", f"removed ({a.type.value})", ""))
        elif a is not None and b is not None:
            sa, sb = _spec(a), _spec(b)
            out.extend(
                SettingChange(f"parameter {name}: {key}", sa[key] or "(none)", sb[key] or "(none)")
                for key in sa
                if sa[key] != sb[key]
            )
    return out


def setting_changes(left: Any, right: Any) -> list[SettingChange]:
    """What differs between two versions besides the body (``VersionRecord``s)."""
    out = [
        SettingChange(label, _text(getattr(left, attr)), _text(getattr(right, attr)))
        for label, attr in (
            ("shell", "shell"),
            ("timeout (seconds)", "timeout"),
            ("requires approval", "requires_approval"),
            ("idempotent", "idempotent"),
        )
        if getattr(left, attr) != getattr(right, attr)
    ]
    return out + _param_changes(left.parameters, right.parameters)

"""Human durations as operators type them: ``2s``, ``500ms``, ``1m30s``, ``1.5``."""

from __future__ import annotations

import math
import re

from muster.errors import ValidationError

__all__ = ["MAX_TIMEOUT", "check_timeout", "parse_duration"]

#: The longest timeout the server accepts for one host run (a day).
MAX_TIMEOUT = 86400.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str, *, field: str = "duration") -> float:
    """Seconds in ``text``; a bare number means seconds. Negative is refused."""
    raw = text.strip().lower()
    if not raw:
        raise ValidationError(f"{field}: empty duration", field=field)
    try:
        value = float(raw)
    except ValueError:
        pos, value = 0, 0.0
        for m in _PART.finditer(raw):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(raw) or pos == 0:
            raise ValidationError(
                f"{field}: {text!r} is not a duration (use e.g. 2s, 500ms, 1m30s)", field=field
            ) from None
    if value < 0 or value != value or value == float("inf"):
        raise ValidationError(f"{field}: {text!r} must be a finite, non-negative time", field=field)
    return value


def check_timeout(value: object, *, field: str = "timeout", maximum: float | None = None) -> float:
    """The one rule for a timeout: a finite, positive number of seconds (``bool`` is not
    a number here), at most ``maximum`` when given; else a ValidationError naming ``field``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(
            f"{field} must be a positive number of seconds, got {value!r}", field=field
        )
    if maximum is not None and value > maximum:
        raise ValidationError(
            f"{field} must be at most {maximum:g} seconds, got {value!r}", field=field
        )
    return float(value)

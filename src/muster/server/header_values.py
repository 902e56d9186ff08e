"""Header values: what goes into a header is built from data safely, and what is read
from one is bounded before use.

A name stored before names were checked may hold a quote, a semicolon or a
line break; put raw into ``Content-Disposition`` it would inject a second
``filename`` or break the response. RFC 6266: an ASCII-only quoted fallback
(every other character replaced by ``_``) and the exact name, percent-encoded
as UTF-8, in ``filename*`` (RFC 8187), which browsers prefer.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from muster.server.schemas.common import MAX_EVENT_ID

__all__ = ["attachment", "parse_event_id"]

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_DIGITS: Final = re.compile(r"[0-9]{1,19}")


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` value that downloads as ``filename``, whatever it holds."""
    fallback = _UNSAFE.sub("_", filename) or "download"
    exact = quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def parse_event_id(text: str) -> int | None:
    """A ``Last-Event-ID`` value: ASCII digits within 64 bits, else None (never a
    ValueError from ``int("²")`` or a number too large for the database)."""
    value = text.strip()
    if not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if number <= MAX_EVENT_ID else None

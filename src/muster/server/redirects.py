"""Where a browser may be sent after logging in or changing a password: this site only.

A ``next`` value arrives in the address bar, so it is hostile until parsed.
Browsers are forgiving in exactly the wrong ways: they read ``\\`` as ``/``,
drop tabs and newlines inside a URL, and take ``//host`` and ``/\\host`` as
another host. So a value is kept only when it is printable ASCII without a
backslash, parses (:func:`urllib.parse.urlsplit`) with neither a scheme nor
a host, is an absolute path that does not start with ``//``, and is still
all of that once percent-decoded (``/%5Chost``, ``/%2F/host``); anything
else becomes the default. No pattern decides it: the parser does.
"""

from __future__ import annotations

import unicodedata
from typing import Final
from urllib.parse import quote, unquote, urlsplit

__all__ = ["safe_next", "same_site_path"]

_MAX: Final = 2048
#: What :func:`same_site_path` leaves unescaped: the path and query characters of RFC 3986.
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~"


def _is_local_path(text: str) -> bool:
    if "\\" in text or any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        return False
    parts = urlsplit(text)
    if parts.scheme or parts.netloc:
        return False
    return text.startswith("/") and not text.startswith("//")


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` if it is a path on this site, else ``default``."""
    if not value or len(value) > _MAX:
        return default
    if any(not ("!" <= c <= "~") for c in value):  # spaces, controls, non-ASCII
        return default
    if not (_is_local_path(value) and _is_local_path(unquote(value))):
        return default
    return value


def same_site_path(path: str, query: str = "") -> str:
    """A request's (decoded) path and query as a ``next`` value, or ``/`` if unsafe."""
    target = quote(path, safe=_PATH_SAFE) + (f"?{query}" if query else "")
    return safe_next(target)

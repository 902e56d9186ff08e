"""``safe_next``: whatever it is given, the answer is a path on this site."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.server.redirects import safe_next

ORIGIN = "https://muster.example:8443/login"

HOSTILE = [
    "/\\evil.example",
    "/\t/evil.example",
    "/\r\n/evil.example",
    "/\x00/evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "https://evil.example",
    "HTTPS://evil.example",
    "http:evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "data:text/html,hi",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%09/evil.example",
    "/%0d%0a/evil.example",
    "%2F%2Fevil.example",
    "\\\\evil.example",
    "\\/evil.example",
    " //evil.example",
    "\t//evil.example",
    "evil.example",
    "./evil",
    "/\u3000/evil.example",
    "/\u2028/evil.example",
    "/\x7f/evil.example",
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_targets_fall_back_to_the_default(hostile: str) -> None:
    assert safe_next(hostile) == "/"
    assert safe_next(hostile, default="/scripts") == "/scripts"


@pytest.mark.parametrize(
    "kept",
    ["/", "/scripts", "/history?filter=failed&offset=50", "/executions/abc#grid", "/a%20b"],
)
def test_same_site_paths_are_kept(kept: str) -> None:
    assert safe_next(kept) == kept


def test_missing_target_is_the_default() -> None:
    assert safe_next(None) == "/"
    assert safe_next("") == "/"


@given(st.text(max_size=80))
def test_any_text_resolves_to_this_origin(value: str) -> None:
    """What a browser would make of the answer never names another host."""
    target = safe_next(value)
    resolved = urlsplit(urljoin(ORIGIN, target))
    assert resolved.scheme == "https" and resolved.netloc == "muster.example:8443"
    assert target.startswith("/") and not target.startswith("//")
    assert "\\" not in target
    assert all(0x20 < ord(c) != 0x7F for c in target)

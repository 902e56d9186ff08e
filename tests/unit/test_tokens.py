from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from muster.domain.secret import Secret
from muster.errors import AuthenticationError, ValidationError
from muster.security.tokens import (
    DEFAULT_TTL,
    LOOKUP_LENGTH,
    MAX_TTL,
    TOKEN_PREFIX,
    issue_token,
    token_digest,
    token_lookup,
    verify_token,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_issued_token_shape_and_record() -> None:
    issued = issue_token(user="ann", name="ci", now=NOW, role="viewer")
    text = issued.token.reveal()
    assert text.startswith(TOKEN_PREFIX) and len(text) == len(TOKEN_PREFIX) + 38
    assert str(issued.token) == "***" and text not in repr(issued)
    rec = issued.record
    assert rec.lookup == text[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + LOOKUP_LENGTH]
    assert rec.digest == token_digest(text) and len(rec.digest) == 64
    assert text not in repr(rec)
    assert rec.expires_at == NOW + DEFAULT_TTL
    assert (rec.user, rec.name, rec.role) == ("ann", "ci", "viewer")


def test_tokens_are_unique() -> None:
    texts = {issue_token(user="a", name="n", now=NOW).token.reveal() for _ in range(200)}
    assert len(texts) == 200


def test_verify_accepts_own_token() -> None:
    issued = issue_token(user="ann", name="ci", now=NOW)
    assert verify_token(issued.token, issued.record, NOW) == issued.record
    assert token_lookup(issued.token.reveal()) == issued.record.lookup
    assert verify_token(" " + issued.token.reveal() + "\n", issued.record, NOW)


def test_verify_refuses_other_token_with_same_lookup() -> None:
    a = issue_token(user="ann", name="a", now=NOW)
    b = issue_token(user="bob", name="b", now=NOW)
    forged = replace(a.record, lookup=b.record.lookup)
    with pytest.raises(AuthenticationError):
        verify_token(b.token, forged, NOW)


def test_expiry_is_exclusive_of_the_instant() -> None:
    issued = issue_token(user="ann", name="ci", now=NOW, ttl=timedelta(hours=1))
    verify_token(issued.token, issued.record, NOW + timedelta(minutes=59))
    with pytest.raises(AuthenticationError, match="invalid or expired"):
        verify_token(issued.token, issued.record, NOW + timedelta(hours=1))


def test_missing_row_fails_like_a_wrong_token() -> None:
    issued = issue_token(user="ann", name="ci", now=NOW)
    with pytest.raises(AuthenticationError, match="invalid or expired"):
        verify_token(issued.token, None, NOW)


def _flip(text: str, i: int) -> str:
    c = text[i]
    return text[:i] + ("A" if c != "A" else "B") + text[i + 1 :]


@pytest.mark.parametrize("where", [4, 10, 30, -1])
def test_a_typo_anywhere_fails_the_checksum(where: int) -> None:
    text = issue_token(user="ann", name="ci", now=NOW).token.reveal()
    with pytest.raises(AuthenticationError):
        token_lookup(_flip(text, where % len(text)))


@pytest.mark.parametrize("text", ["", "mst_", "Bearer x", "mst_" + "a" * 38, "xyz_" + "a" * 38])
def test_malformed_tokens_refused(text: str) -> None:
    with pytest.raises(AuthenticationError):
        token_lookup(text)
    with pytest.raises(AuthenticationError):
        verify_token(Secret(text), None, NOW)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"ttl": timedelta(0)}, "ttl"),
        ({"ttl": MAX_TTL + timedelta(seconds=1)}, "ttl"),
        ({"name": ""}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"user": ""}, "user"),
    ],
)
def test_issue_validates(kw: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"user": "ann", "name": "ci", "now": NOW, **kw}
    with pytest.raises(ValidationError) as info:
        issue_token(**args)  # type: ignore[arg-type]
    assert info.value.field == field

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from muster.domain.secret import MIN_ENCODED_LENGTH, Secret
from muster.security.masking import MASK, mask_mapping, mask_secrets, secret_pattern


def test_every_occurrence_masked() -> None:
    assert mask_secrets("pw=hunter2; again hunter2.", ["hunter2"]) == "pw=***; again ***."


def test_longest_first() -> None:
    assert mask_secrets("token abc123xyz", ["abc", "abc123xyz"]) == "token ***"
    assert mask_secrets("abc and abc123xyz", ["abc123xyz", "abc"]) == "*** and ***"


def test_regex_metacharacters_are_literal() -> None:
    assert mask_secrets("a.b a*b (x|y)", ["a.b", "(x|y)"]) == "*** a*b ***"


def test_empty_secret_and_no_secrets_leave_text() -> None:
    assert mask_secrets("plain", ["", Secret("")]) == "plain"
    assert mask_secrets("plain", []) == "plain"
    assert mask_secrets("plain", None) == "plain"
    assert secret_pattern([""]) is None


def test_secret_objects_and_precompiled_pattern() -> None:
    pattern = secret_pattern([Secret("s3cr3t"), "other"])
    assert pattern is not None
    assert mask_secrets("x s3cr3t other", pattern) == "x *** ***"


def test_mask_mapping_by_key_and_value() -> None:
    params = {
        "db_password": "hunter2",
        "user": "ann",
        "note": "uses hunter2 here",
        "nested": {"db_password": "hunter2", "list": ["hunter2", 3, None, True]},
        "optional_token": None,
        "wrapped": Secret("w"),
        "tuple": ("a", "hunter2"),
    }
    out = mask_mapping(params, {"db_password", "optional_token"}, ["hunter2"])
    assert out == {
        "db_password": MASK,
        "user": "ann",
        "note": f"uses {MASK} here",
        "nested": {"db_password": MASK, "list": [MASK, 3, None, True]},
        "optional_token": None,
        "wrapped": MASK,
        "tuple": ["a", MASK],
    }
    assert params["db_password"] == "hunter2"  # input untouched


def test_mask_mapping_masks_secret_inside_keys() -> None:
    assert mask_mapping({"hunter2": 1}, (), ["hunter2"]) == {MASK: 1}


_text = st.text(alphabet="ab*x\n", max_size=40)


@given(text=_text, secrets=st.lists(st.text(alphabet="abx", min_size=1, max_size=5), max_size=4))
def test_no_secret_survives_unless_made_of_mask_remnants(text: str, secrets: list[str]) -> None:
    out = mask_secrets(text, secrets)
    # Whatever remains outside the masks has no occurrence of any secret.
    for piece in out.split(MASK):
        for s in secrets:
            assert s not in piece


# --- encoded forms -----------------------------------------------------------

SECRET = "s3cr3t-tok?n>>~~9"  # '?', '>' and '~' give '+' and '/' in standard base64


def _b64_forms(raw: bytes) -> list[str]:
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return [std, std.rstrip("="), url, url.rstrip("=")]


def test_base64_and_hex_forms_are_masked() -> None:
    raw = SECRET.encode()
    forms = [*_b64_forms(raw), raw.hex(), raw.hex().upper()]
    assert "+" in forms[0] and "-" in forms[2]  # the standard and url-safe forms differ
    for form in forms:
        masked = mask_secrets(f"value: {form} (end)", [SECRET])
        assert masked == f"value: {MASK} (end)", form
    assert mask_mapping({"h": raw.hex(), forms[0]: 1}, (), [Secret(SECRET)]) == {"h": MASK, MASK: 1}


@given(prefix=st.binary(max_size=7), suffix=st.binary(max_size=7))
def test_base64_of_text_around_the_secret_hides_the_secret(prefix: bytes, suffix: bytes) -> None:
    # e.g. an HTTP Basic header, base64("user:" + password): the secret sits at any alignment.
    encoded = base64.b64encode(prefix + SECRET.encode() + suffix).decode()
    masked = mask_secrets(encoded, [SECRET])
    assert MASK in masked
    # At most the two characters that mix the secret's bits with its neighbours' are left.
    kept = masked.replace(MASK, "")
    assert len(kept) <= len(encoded) - len(base64.b64encode(SECRET.encode()).rstrip(b"=")) + 3


def test_short_secrets_mask_only_their_exact_form() -> None:
    # Below the minimum length, an encoded form would be a few common characters.
    assert len("abc") < MIN_ENCODED_LENGTH
    assert mask_secrets("616263 YWJj abc", ["abc"]) == f"616263 YWJj {MASK}"

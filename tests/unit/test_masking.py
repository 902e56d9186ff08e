from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from muster.domain.secret import Secret
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

from __future__ import annotations

import pytest

from muster.domain.secret import Secret
from muster.errors import ValidationError
from muster.security.passwords import (
    DEFAULT_POLICY,
    PasswordPolicy,
    Passwords,
    generate_password,
    hash_password,
    verify_password,
)

# Tiny costs keep the unit tests fast; the algorithm is the same.
FAST = Passwords(time_cost=1, memory_cost=8, parallelism=1)
GOOD = "plum-orbit-cactus-42"


def test_hash_is_argon2id_phc_and_salted() -> None:
    a, b = FAST.hash(GOOD), FAST.hash(GOOD)
    assert a.startswith("$argon2id$v=19$")
    assert a != b
    assert GOOD not in a


def test_verify_right_and_wrong() -> None:
    stored = FAST.hash(GOOD)
    assert FAST.verify(stored, GOOD).ok
    assert not FAST.verify(stored, GOOD + "x").ok
    assert FAST.verify(stored, Secret(GOOD)).ok


@pytest.mark.parametrize("stored", ["", "plain", "$argon2id$v=19$garbage", "$2b$12$abcdefghijk"])
def test_corrupt_hash_is_a_mismatch_not_an_error(stored: str) -> None:
    assert not FAST.verify(stored, GOOD).ok


def test_rehash_needed_when_costs_change() -> None:
    stored = FAST.hash(GOOD)
    assert not FAST.verify(stored, GOOD).needs_rehash
    stronger = Passwords(time_cost=2, memory_cost=16, parallelism=1)
    check = stronger.verify(stored, GOOD)
    assert check.ok and check.needs_rehash
    assert not stronger.verify(stored, "nope").needs_rehash


def test_default_helpers_use_rfc9106_low_memory() -> None:
    stored = hash_password(GOOD)
    assert "m=65536,t=3,p=4" in stored
    assert verify_password(stored, GOOD).ok
    # a cheap hash verifies under the default and asks to be upgraded
    assert verify_password(FAST.hash(GOOD), GOOD).needs_rehash


def test_verify_nobody_always_fails() -> None:
    assert not FAST.verify_nobody(GOOD).ok


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 12"),
        ("aaaaaaaaaaaaaaaa", "repeat one character"),
        ("Password1234", "commonly used"),
        ("changeme2024!", "commonly used"),
        ("123456789012", "sequence"),
        ("qwertyuiopas", "sequence"),
        ("zyxwvutsrqponm", "sequence"),
        (" " * 14, "whitespace"),
        ("alice-in-chains-rocks", "user name"),
        ("x" * 5 + "é" * 600, "at most 1024 bytes"),
    ],
)
def test_policy_names_the_problem(password: str, problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        DEFAULT_POLICY.check(password, username="alice")
    assert info.value.field == "password"
    assert problem in str(info.value)
    assert problem in info.value.problems["password"]


def test_policy_lists_every_problem() -> None:
    found = DEFAULT_POLICY.problems("bob", username="bob")
    assert any("at least" in p for p in found) and any("user name" in p for p in found)


def test_policy_accepts_long_passphrases_without_composition_rules() -> None:
    DEFAULT_POLICY.check("correct horse battery stapler", username="alice")
    DEFAULT_POLICY.check(Secret("plum-orbit-cactus-42"))
    PasswordPolicy(min_length=4).check("abzq")


def test_generated_passwords_pass_policy_and_differ() -> None:
    seen = {generate_password() for _ in range(50)}
    assert len(seen) == 50
    for pw in seen:
        assert len(pw) == 24
        assert DEFAULT_POLICY.problems(pw) == []
        assert not set(pw) & set("0O1lI")
    with pytest.raises(ValueError):
        generate_password(8)

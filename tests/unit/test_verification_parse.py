"""Verification definitions: seed 004's example parses, every form round-trips, and every
bad definition is refused with the field that is wrong and a message that names why."""

from __future__ import annotations

from typing import Any

import pytest

from muster.domain.verification import (
    Check,
    CheckType,
    VersionScheme,
    assertions,
    parse_verification,
    verification_to_dict,
)
from muster.errors import ValidationError

SEED_004: dict[str, Any] = {
    "before_tasks": ["backup"],
    "after_tasks": ["upgrade_packages"],
    "commands": {"package_versions": "dpkg -l | grep -E 'openssl|bash|kernel'"},
    "comparisons": {
        "package_versions": {
            "type": "regex_match",
            "pattern": r"ii\s+openssl\s+(\S+)",
            "expected_change": "version_increase",
        }
    },
}


def spec(**comparisons: dict[str, Any]) -> dict[str, Any]:
    """A verification capturing keys a, b, c with the given comparisons."""
    return {
        "before_tasks": ["t1"],
        "after_tasks": ["t2"],
        "commands": {"a": "echo a", "b": "echo b", "c": "echo c"},
        "comparisons": comparisons,
    }


def test_seed_004_example_parses_as_written() -> None:
    v = parse_verification("verify_package_versions", SEED_004)
    assert v.name == "verify_package_versions"
    assert v.before_tasks == ("backup",)
    assert v.after_tasks == ("upgrade_packages",)
    assert dict(v.commands) == SEED_004["commands"]
    assert v.checks["package_versions"] == Check(
        key="package_versions",
        type=CheckType.REGEX_MATCH,
        pattern=r"ii\s+openssl\s+(\S+)",
        expected_change=CheckType.VERSION_INCREASE,
        scheme=VersionScheme.DEBIAN,
    )
    assert v.gate is True
    assert v.fail_on_drift is False
    assert assertions(v.checks["package_versions"]) == (CheckType.VERSION_INCREASE,)


def test_definition_is_frozen_against_later_changes_to_the_callers_dicts() -> None:
    raw = spec(a={"type": "changed"})
    v = parse_verification("v", raw)
    raw["commands"]["d"] = "echo d"
    assert "d" not in v.commands
    with pytest.raises(TypeError):
        v.commands["d"] = "x"  # type: ignore[index]


ROUND_TRIPS = [
    SEED_004,
    spec(a={"type": "equals", "expected": "{{ version }}"}),
    spec(a={"type": "equals", "expected": "ok", "pattern": r"status: (\w+)"}),
    spec(a={"type": "changed"}, b={"type": "unchanged"}),
    spec(a={"type": "version_increase", "scheme": "rpm"}),
    spec(a={"type": "version_increase", "scheme": "semver", "pattern": r"v(\S+)"}),
    spec(a={"type": "json_path", "path": "$.version", "expected_change": "version_increase"}),
    spec(a={"type": "json_path", "path": "$.items[*].name"}),
    spec(a={"type": "json_path", "path": "$.disk.free", "minimum": 10, "maximum": 99.5}),
    spec(a={"type": "threshold", "minimum": 10.5}),
    spec(a={"type": "threshold", "maximum": 90, "pattern": r"(\d+)%"}),
    spec(
        a={"type": "regex_match", "pattern": "(x)", "expected": "x", "expected_change": "changed"}
    ),
    {**spec(), "fail_on_drift": True, "gate": False},
    {"commands": {"only": "uname -r"}},
]


@pytest.mark.parametrize("raw", ROUND_TRIPS)
def test_every_form_round_trips(raw: dict[str, Any]) -> None:
    v = parse_verification("v", raw)
    again = parse_verification("v", verification_to_dict(v))
    assert again == v
    assert verification_to_dict(again) == verification_to_dict(v)


def test_to_dict_writes_the_scheme_only_for_version_comparisons() -> None:
    out = verification_to_dict(parse_verification("v", ROUND_TRIPS[4]))
    assert out["comparisons"]["a"] == {"type": "version_increase", "scheme": "rpm"}
    out = verification_to_dict(parse_verification("v", ROUND_TRIPS[8]))
    assert out["comparisons"]["a"] == {
        "type": "json_path",
        "path": "$.disk.free",
        "minimum": 10,
        "maximum": 99.5,
    }


def test_optional_parts_take_their_defaults() -> None:
    v = parse_verification("v", {"commands": {"k": "uname -r"}, "before_tasks": "backup"})
    assert v.before_tasks == ("backup",)
    assert v.after_tasks == ()
    assert dict(v.checks) == {}
    assert v.gate and not v.fail_on_drift


def test_numbers_as_expected_values_become_text() -> None:
    v = parse_verification("v", spec(a={"type": "equals", "expected": 3}))
    assert v.checks["a"].expected == "3"


BAD = [
    # (name, spec, field, words in the message)
    ("v", [], "verifications.v", "a verification is a mapping"),
    ("bad name", spec(), "verifications.bad name", "bad verification name"),
    ("v", {**spec(), "verify": 1}, "verifications.v.verify", "unknown key(s) verify"),
    ("v", {"commands": {}}, "verifications.v.commands", "non-empty mapping"),
    ("v", {"comparisons": {}}, "verifications.v.commands", "non-empty mapping"),
    ("v", {"commands": ["uname"]}, "verifications.v.commands", "non-empty mapping"),
    ("v", {"commands": {"a b": "x"}}, "verifications.v.commands.a b", "bad command key"),
    ("v", {"commands": {"a": "  "}}, "verifications.v.commands.a", "the command is empty"),
    ("v", {"commands": {"a": None}}, "verifications.v.commands.a", "the command is empty"),
    ("v", {**spec(), "before_tasks": [1]}, "verifications.v.before_tasks", "list of step names"),
    ("v", {**spec(), "after_tasks": {"x": 1}}, "verifications.v.after_tasks", "list of step"),
    ("v", {**spec(), "gate": "yes"}, "verifications.v.gate", "true or false"),
    ("v", {**spec(), "fail_on_drift": 1}, "verifications.v.fail_on_drift", "true or false"),
    (
        "v",
        {**spec(), "comparisons": ["a"]},
        "verifications.v.comparisons",
        "mapping of command key",
    ),
    (
        "v",
        spec(z={"type": "changed"}),
        "verifications.v.comparisons.z",
        "comparison for 'z', which has no command",
    ),
    ("v", spec(a="changed"), "verifications.v.comparisons.a", "a mapping with a type"),
    ("v", spec(a={}), "verifications.v.comparisons.a.type", "needs a type"),
    (
        "v",
        spec(a={"type": "fuzzy"}),
        "verifications.v.comparisons.a.type",
        "unknown comparison type 'fuzzy' (one of equals, changed",
    ),
    ("v", spec(a={"type": 5}), "verifications.v.comparisons.a.type", "unknown comparison type 5"),
    (
        "v",
        spec(a={"type": "changed", "expect": "x"}),
        "verifications.v.comparisons.a.expect",
        "unknown key(s) expect",
    ),
    (
        "v",
        spec(a={"type": "regex_match"}),
        "verifications.v.comparisons.a.pattern",
        "regex_match needs a pattern",
    ),
    (
        "v",
        spec(a={"type": "regex_match", "pattern": "(unclosed"}),
        "verifications.v.comparisons.a.pattern",
        "bad regex '(unclosed'",
    ),
    (
        "v",
        spec(a={"type": "regex_match", "pattern": r"ii\s+openssl"}),
        "verifications.v.comparisons.a.pattern",
        "has no capture group",
    ),
    (
        "v",
        spec(a={"type": "regex_match", "pattern": ["(x)"]}),
        "verifications.v.comparisons.a.pattern",
        "pattern must be text",
    ),
    (
        "v",
        spec(a={"type": "changed", "pattern": True}),
        "verifications.v.comparisons.a.pattern",
        "pattern must be text",
    ),
    ("v", spec(a={"type": "json_path"}), "verifications.v.comparisons.a.path", "needs a path"),
    (
        "v",
        spec(a={"type": "json_path", "path": "$.["}),
        "verifications.v.comparisons.a.path",
        "bad JSON path '$.['",
    ),
    (
        "v",
        spec(a={"type": "json_path", "path": "$.a", "pattern": "(x)"}),
        "verifications.v.comparisons.a.path",
        "a pattern or a path, not both",
    ),
    (
        "v",
        spec(a={"type": "regex_match", "pattern": "(x)", "expected_change": "bigger"}),
        "verifications.v.comparisons.a.expected_change",
        "unknown expected_change 'bigger'",
    ),
    (
        "v",
        spec(a={"type": "regex_match", "pattern": "(x)", "expected_change": "threshold"}),
        "verifications.v.comparisons.a.expected_change",
        "one of changed, unchanged, version_increase",
    ),
    (
        "v",
        spec(a={"type": "changed", "expected_change": "unchanged"}),
        "verifications.v.comparisons.a.expected_change",
        "goes with regex_match or json_path",
    ),
    (
        "v",
        spec(a={"type": "equals"}),
        "verifications.v.comparisons.a.expected",
        "needs an expected",
    ),
    (
        "v",
        spec(a={"type": "changed", "expected": "x"}),
        "verifications.v.comparisons.a.expected",
        "changed takes no expected value",
    ),
    (
        "v",
        spec(a={"type": "equals", "expected": "{{ 1bad }}"}),
        "verifications.v.comparisons.a.expected",
        "malformed parameter placeholder",
    ),
    (
        "v",
        spec(a={"type": "equals", "expected": "{{ version"}),
        "verifications.v.comparisons.a.expected",
        "malformed parameter placeholder",
    ),
    ("v", spec(a={"type": "threshold"}), "verifications.v.comparisons.a", "needs a minimum"),
    (
        "v",
        spec(a={"type": "threshold", "minimum": "10"}),
        "verifications.v.comparisons.a.minimum",
        "minimum must be a number",
    ),
    (
        "v",
        spec(a={"type": "threshold", "maximum": True}),
        "verifications.v.comparisons.a.maximum",
        "maximum must be a number",
    ),
    (
        "v",
        spec(a={"type": "threshold", "maximum": float("nan")}),
        "verifications.v.comparisons.a.maximum",
        "maximum must be a number",
    ),
    (
        "v",
        spec(a={"type": "threshold", "minimum": 90, "maximum": 10}),
        "verifications.v.comparisons.a.minimum",
        "minimum 90 is greater than maximum 10",
    ),
    (
        "v",
        spec(a={"type": "unchanged", "maximum": 3}),
        "verifications.v.comparisons.a.minimum",
        "unchanged takes no minimum or maximum",
    ),
    (
        "v",
        spec(a={"type": "version_increase", "scheme": "pep440"}),
        "verifications.v.comparisons.a.scheme",
        "unknown version scheme 'pep440' (one of debian, rpm, semver)",
    ),
    (
        "v",
        spec(a={"type": "changed", "scheme": "rpm"}),
        "verifications.v.comparisons.a.scheme",
        "scheme goes with version_increase only",
    ),
]


@pytest.mark.parametrize(
    ("name", "raw", "field", "words"), BAD, ids=[f"{b[2]}:{b[3][:30]}" for b in BAD]
)
def test_bad_definitions_name_the_field_and_the_problem(
    name: str, raw: Any, field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_verification(name, raw)
    assert caught.value.field == field
    assert words in caught.value.message

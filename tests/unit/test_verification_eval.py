"""Judging hosts: every comparison passes and fails for the right reason, version order
comes from the scheme, and whatever a host printed becomes a failed check with a detail
that says exactly what went wrong, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest

from muster.domain.secret import Secret
from muster.domain.verification import (
    Captured,
    CheckType,
    HostEvidence,
    Verification,
    evaluate,
    evidence_report,
    parse_verification,
)

SEED = parse_verification(
    "verify_package_versions",
    {
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
    },
)


def dpkg(openssl: str) -> dict[str, Captured]:
    text = (
        "ii  bash           5.1-6ubuntu1      amd64  GNU Bourne Again SHell\n"
        f"ii  openssl        {openssl}  amd64  Secure Sockets Layer toolkit\n"
    )
    return {"package_versions": Captured(text, 0)}


def ok(text: str) -> Captured:
    return Captured(text, 0)


def one(comparison: dict[str, Any], **extra: Any) -> Verification:
    """A verification of one key ``k`` (plus an unchecked ``other``) with ``comparison``."""
    return parse_verification(
        "v",
        {"commands": {"k": "cmd", "other": "cmd2"}, "comparisons": {"k": comparison}, **extra},
    )


def judge(
    comparison: dict[str, Any],
    before: str | Captured | None,
    after: str | Captured | None,
    params: dict[str, object] | None = None,
) -> tuple[bool, str, HostEvidence]:
    def side(x: str | Captured | None) -> dict[str, Captured]:
        if x is None:
            return {}
        return {"k": ok(x) if isinstance(x, str) else x}

    ev = evaluate(one(comparison), "h1", side(before), side(after), params)
    return ev.checks[0].passed, ev.checks[0].detail, ev


# --- seed 004 --------------------------------------------------------------------------


def test_seed_example_passes_when_openssl_moves_up() -> None:
    ev = evaluate(SEED, "web01", dpkg("3.0.2-0ubuntu1.10"), dpkg("3.0.2-0ubuntu1.12"))
    assert ev.passed and ev.error is None and ev.drift == ()
    (check,) = ev.checks
    assert (check.before_value, check.after_value) == ("3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.12")
    assert check.type is CheckType.REGEX_MATCH
    assert check.detail == "debian version '3.0.2-0ubuntu1.10' -> '3.0.2-0ubuntu1.12' increased"
    assert check.before == dpkg("3.0.2-0ubuntu1.10")["package_versions"].text


@pytest.mark.parametrize(
    ("before", "after", "words"),
    [
        ("3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.10", "decreased"),
        ("3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.12", "did not change"),
    ],
)
def test_seed_example_fails_when_openssl_does_not_move_up(
    before: str, after: str, words: str
) -> None:
    ev = evaluate(SEED, "web01", dpkg(before), dpkg(after))
    assert not ev.passed
    assert ev.checks[0].detail.endswith(words)


# --- version schemes -------------------------------------------------------------------

ORDERED = [
    # (scheme, lower, higher): each pair is ordered by the scheme's own rules, where a
    # plain text or number comparison would get it wrong.
    ("debian", "1.0~rc1", "1.0"),
    ("debian", "2.9", "2.10"),
    ("debian", "9.9", "1:1.0"),
    ("debian", "1.1.1f-1ubuntu2.9", "1.1.1f-1ubuntu2.20"),
    ("rpm", "1.0.2k-19.el7", "1.0.2k-21.el7"),
    ("rpm", "2.0", "1:1.0"),
    ("rpm", "1.0~rc1", "1.0"),
    ("rpm", "5.9", "5.10"),
    ("semver", "1.0.0-alpha", "1.0.0"),
    ("semver", "1.0.0-alpha.2", "1.0.0-alpha.10"),
    ("semver", "1.9.0", "1.10.0"),
    ("semver", "v2.3.4", "v2.4.0"),
]


@pytest.mark.parametrize(("scheme", "lower", "higher"), ORDERED)
def test_version_increase_orders_by_the_scheme(scheme: str, lower: str, higher: str) -> None:
    comparison = {"type": "version_increase", "scheme": scheme}
    passed, detail, _ = judge(comparison, lower, higher)
    assert passed, detail
    assert detail == f"{scheme} version {lower!r} -> {higher!r} increased"
    passed, detail, _ = judge(comparison, higher, lower)
    assert not passed and detail.endswith("decreased")
    passed, detail, _ = judge(comparison, higher, higher)
    assert not passed and detail.endswith("did not change")


@pytest.mark.parametrize(
    ("scheme", "bad"),
    [
        ("debian", "abc"),
        ("debian", "1.0 x"),
        ("debian", ""),
        ("rpm", "!!"),
        ("rpm", "1.0-1-2"),
        ("rpm", "a:1.0"),
        ("semver", "1.2"),
        ("semver", "1.2.3.4"),
        ("semver", "x"),
    ],
)
def test_a_string_that_is_no_version_of_the_scheme_fails_with_that_reason(
    scheme: str, bad: str
) -> None:
    good = {"debian": "1.0-1", "rpm": "1.0-1", "semver": "1.0.0"}[scheme]
    comparison = {"type": "version_increase", "scheme": scheme}
    passed, detail, _ = judge(comparison, good, f"{bad}\n")
    assert not passed
    assert detail == f"not a valid {scheme} version: after {bad!r}"
    passed, detail, _ = judge(comparison, bad, bad)
    assert detail == f"not a valid {scheme} version: before {bad!r}, after {bad!r}"


# --- the other comparisons -------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparison", "before", "after", "params", "passed", "detail"),
    [
        ({"type": "equals", "expected": "on"}, None, " on\n", None, True, "equals 'on'"),
        (
            {"type": "equals", "expected": "on"},
            None,
            "off",
            None,
            False,
            "is not the expected 'on'",
        ),
        (
            {"type": "equals", "expected": "{{ want }}-{{flag}}"},
            None,
            "3.1-true",
            {"want": 3.1, "flag": True},
            True,
            "equals '3.1-true'",
        ),
        (
            {"type": "equals", "expected": "{{ want }}"},
            None,
            "x",
            None,
            False,
            "expected value needs parameter(s) not given: want",
        ),
        ({"type": "changed"}, "a", "b", None, True, "changed: 'a' -> 'b'"),
        ({"type": "changed"}, "a", "a", None, False, "did not change: still 'a'"),
        ({"type": "unchanged"}, "a", "a", None, True, "unchanged: 'a'"),
        ({"type": "unchanged"}, "a", "b", None, False, "changed unexpectedly: 'a' -> 'b'"),
        (
            {"type": "regex_match", "pattern": r"state=(\w+)"},
            None,
            "state=up",
            None,
            True,
            "found 'up'",
        ),
        (
            {"type": "regex_match", "pattern": r"state=(\w+)"},
            None,
            "nothing here",
            None,
            False,
            "after: pattern 'state=(\\\\w+)' does not match the output",
        ),
        (
            {"type": "regex_match", "pattern": r"^x(\d)?y$"},
            None,
            "xy",
            None,
            False,
            "matched but its group captured nothing",
        ),
        (
            {
                "type": "regex_match",
                "pattern": "v=(.*)",
                "expected": "2",
                "expected_change": "changed",
            },
            "v=1",
            "v=2",
            None,
            True,
            "after value '2' equals '2'; changed: '1' -> '2'",
        ),
        (
            {"type": "regex_match", "pattern": "v=(.*)", "minimum": 3},
            None,
            "v=2",
            None,
            False,
            "2 is below the minimum 3",
        ),
        ({"type": "threshold", "minimum": 10}, None, "42%", None, True, "42 is within [10, inf]"),
        (
            {"type": "threshold", "maximum": 90},
            None,
            "95",
            None,
            False,
            "95 is above the maximum 90",
        ),
        ({"type": "threshold", "maximum": 90}, None, "-5.5", None, True, "within [-inf, 90]"),
        (
            {"type": "threshold", "minimum": 1, "maximum": 2},
            None,
            "1.5",
            None,
            True,
            "1.5 is within [1, 2]",
        ),
        ({"type": "threshold", "minimum": 1}, None, "n/a", None, False, "'n/a' is not a number"),
        ({"type": "threshold", "minimum": 1}, None, "nan", None, False, "'nan' is not a number"),
        (
            {"type": "threshold", "minimum": 20, "pattern": r"(\d+)% free"},
            None,
            "/ 35% free",
            None,
            True,
            "35 is within [20, inf]",
        ),
    ],
)
def test_comparisons(
    comparison: dict[str, Any],
    before: str | None,
    after: str,
    params: dict[str, object] | None,
    passed: bool,
    detail: str,
) -> None:
    got, words, _ = judge(comparison, before, after, params)
    assert got is passed
    assert detail in words


DOC = json.dumps(
    {"pkg": {"name": "openssl", "version": "3.0.2"}, "free": 42, "tags": ["a", "b"], "up": True}
)


@pytest.mark.parametrize(
    ("comparison", "after", "passed", "value", "detail"),
    [
        ({"type": "json_path", "path": "$.pkg.name"}, DOC, True, "openssl", "found 'openssl'"),
        ({"type": "json_path", "path": "$.up", "expected": "true"}, DOC, True, "true", "equals"),
        ({"type": "json_path", "path": "$.free", "minimum": 40}, DOC, True, "42", "within"),
        ({"type": "json_path", "path": "$.tags[*]"}, DOC, True, '["a", "b"]', "found"),
        (
            {"type": "json_path", "path": "$.pkg.missing"},
            DOC,
            False,
            None,
            "after: JSON path '$.pkg.missing' matches nothing in the output",
        ),
        (
            {"type": "json_path", "path": "$.pkg"},
            "not json {",
            False,
            None,
            "after: output is not valid JSON (Expecting value: line 1 column 1 (char 0))",
        ),
    ],
)
def test_json_path(
    comparison: dict[str, Any], after: str, passed: bool, value: str | None, detail: str
) -> None:
    got, words, ev = judge(comparison, None, after)
    assert got is passed
    assert ev.checks[0].after_value == value
    assert detail in words


def test_json_path_version_change_reads_both_sides() -> None:
    comparison = {
        "type": "json_path",
        "path": "$.pkg.version",
        "expected_change": "version_increase",
        "scheme": "semver",
    }
    newer = DOC.replace("3.0.2", "3.1.0")
    passed, detail, _ = judge(comparison, DOC, newer)
    assert passed, detail
    passed, detail, _ = judge(comparison, "oops", newer)
    assert not passed and detail.startswith("before: output is not valid JSON")


# --- what the host failed to give --------------------------------------------------------

CHANGE = {"type": "changed"}


@pytest.mark.parametrize(
    ("before", "after", "detail"),
    [
        (None, "x", "before: capture of 'k' is missing"),
        ("x", None, "after: capture of 'k' is missing"),
        (
            "x",
            Captured("sh: dpkg: not found\n", 127),
            "after: capture command 'k' exited 127: 'sh: dpkg: not found'",
        ),
        (Captured("partial out", None), "x", "before: capture of 'k' was cut off (no exit status)"),
        (None, None, "before: capture of 'k' is missing; after: capture of 'k' is missing"),
    ],
)
def test_capture_failures_fail_the_check_with_the_reason(
    before: Captured | str | None, after: Captured | str | None, detail: str
) -> None:
    passed, words, ev = judge(CHANGE, before, after)
    assert not passed and not ev.passed
    assert words == detail
    assert ev.error is None


def test_long_failing_output_is_cut_in_the_detail() -> None:
    passed, words, ev = judge(CHANGE, "x", Captured("E" * 5000, 1))
    assert not passed
    assert words.endswith("... (200 chars)")
    assert ev.after["k"] == "E" * 5000


def test_an_after_only_comparison_ignores_a_broken_before() -> None:
    passed, words, _ = judge({"type": "equals", "expected": "1"}, Captured("", 2), "1")
    assert passed, words


@pytest.mark.parametrize(
    ("before", "after", "error"),
    [
        (None, {"k": ok("1")}, "no capture before the change (the capture around t0 did not"),
        ({"k": ok("1")}, None, "no capture after the change (the capture around the run did not"),
    ],
)
def test_a_missing_side_fails_the_host_with_an_error(
    before: dict[str, Captured] | None, after: dict[str, Captured] | None, error: str
) -> None:
    v = one({"type": "equals", "expected": "1"}, before_tasks=["t0"])
    ev = evaluate(v, "h1", before, after)
    assert not ev.passed
    assert ev.error is not None and ev.error.startswith(error)
    assert ev.drift == ()
    assert (ev.before if before is None else ev.after) == {}


def test_nothing_captured_at_all() -> None:
    ev = evaluate(SEED, "h1", None, None)
    assert not ev.passed
    assert ev.error is not None and ev.error.count("no capture") == 2
    assert ev.checks[0].detail.startswith("before: nothing was captured; after: nothing")


# --- drift --------------------------------------------------------------------------------


def drift_case(
    before: dict[str, Captured], after: dict[str, Captured], **extra: Any
) -> HostEvidence:
    v = parse_verification(
        "v",
        {
            "commands": {"k": "a", "free": "b", "same": "c", "gone": "d", "state": "e"},
            "comparisons": {
                "k": {"type": "changed"},
                "state": {
                    "type": "regex_match",
                    "pattern": "s=(.)",
                    "expected_change": "unchanged",
                },
            },
            **extra,
        },
    )
    return evaluate(v, "h1", before, after)


BEFORE = {
    "k": ok("1"),
    "free": ok("10"),
    "same": ok("x"),
    "gone": ok("y"),
    "state": ok("s=a t=1"),
}


def test_drift_lists_unchecked_keys_that_changed_and_unchanged_checks_that_moved() -> None:
    after = {
        "k": ok("2"),
        "free": Captured("10", 1),
        "same": ok("x"),
        "state": ok("s=b t=1"),
    }
    ev = drift_case(BEFORE, after)
    assert ev.drift == ("free", "gone", "state")
    assert ev.drift_details == (
        "free: exit status 0 -> 1",
        "gone: captured only before",
        "state: expected unchanged, changed 'a' -> 'b'",
    )
    assert not ev.passed  # the unchanged check itself failed


def test_drift_is_reported_but_fails_the_host_only_with_fail_on_drift() -> None:
    after = {**BEFORE, "k": ok("2"), "free": ok("9"), "state": ok("s=a t=2")}
    ev = drift_case(BEFORE, after)
    assert ev.drift == ("free",)
    assert ev.drift_details == ("free: output changed '10' -> '9'",)
    assert ev.passed
    assert not drift_case(BEFORE, after, fail_on_drift=True).passed
    assert drift_case(BEFORE, {**after, "free": ok("10")}, fail_on_drift=True).passed


def test_keys_captured_only_after_or_never_captured() -> None:
    before = {"k": ok("1"), "state": ok("s=a")}
    after = {"k": ok("2"), "state": ok("s=a"), "same": ok("new")}
    ev = drift_case(before, after)
    assert ev.drift == ("same",)
    assert ev.drift_details == ("same: captured only after",)
    assert ev.before["gone"] is None and ev.after["same"] == "new"


def test_an_unchanged_check_whose_value_is_unreadable_is_not_drift() -> None:
    after = {**BEFORE, "k": ok("2"), "state": ok("broken")}
    ev = drift_case(BEFORE, after)
    assert "state" not in ev.drift
    assert not ev.passed


# --- secrets and the export ---------------------------------------------------------------


def test_a_secret_parameter_is_compared_but_never_shown() -> None:
    token = Secret("s3cr3t-token-value")
    comparison = {"type": "regex_match", "pattern": "token=(\\S+)", "expected": "{{ token }}"}
    text = "token=s3cr3t-token-value\n"
    passed, detail, ev = judge(comparison, text, text, {"token": token})
    assert passed
    dumped = json.dumps(evidence_report([ev]))
    assert "s3cr3t" not in dumped and "s3cr3t" not in repr(ev)
    assert ev.checks[0].expected == "***"
    assert ev.checks[0].after_value == "***"
    assert "***" in detail
    passed, detail, ev = judge(comparison, text, "token=other\n", {"token": token})
    assert not passed and detail == "after value 'other' is not the expected '***'"


def test_evidence_report_groups_by_verification_and_by_host() -> None:
    good = evaluate(SEED, "web01", dpkg("1.0-1"), dpkg("1.0-2"))
    bad = evaluate(SEED, "web02", dpkg("1.0-2"), dpkg("1.0-1"))
    drifted = drift_case(BEFORE, {**BEFORE, "k": ok("2"), "free": ok("9")})
    report = evidence_report([bad, good, drifted])
    assert json.loads(json.dumps(report)) == report
    assert report["passed"] is False
    assert report["summary"] == {
        "verifications": 2,
        "hosts": 3,
        "failed_hosts": 1,
        "drift_hosts": 1,
    }
    seed = report["verifications"]["verify_package_versions"]
    assert seed["passed"] is False and seed["failed_hosts"] == ["web02"]
    assert list(seed["hosts"]) == ["web01", "web02"]
    assert seed["hosts"]["web01"] == good.to_dict()
    assert report["verifications"]["v"]["drift_hosts"] == ["h1"]
    assert report["hosts"]["h1"] == {
        "passed": True,
        "verifications": {"v": True},
        "drift": {"v": ["free"]},
    }
    assert report["hosts"]["web02"]["passed"] is False
    check = good.to_dict()["checks"][0]
    assert check == {
        "key": "package_versions",
        "type": "regex_match",
        "before_value": "1.0-1",
        "after_value": "1.0-2",
        "expected": None,
        "passed": True,
        "detail": "debian version '1.0-1' -> '1.0-2' increased",
    }
    assert evidence_report([]) == {
        "passed": True,
        "summary": {"verifications": 0, "hosts": 0, "failed_hosts": 0, "drift_hosts": 0},
        "verifications": {},
        "hosts": {},
    }

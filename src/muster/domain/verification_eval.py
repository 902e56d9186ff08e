"""Judging one host: its before and after captures against a verification's checks.

:func:`evaluate` never raises on what a host printed: a missing capture, a failed
capture command, output that does not match or parse, a version that is not a
version, all become a failed check whose detail says exactly that. Drift is every
captured key that changed without a check that asked for a change (keys with no
check, and keys whose check expects them ``unchanged``); it fails the host only
when the verification says ``fail_on_drift``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from muster.domain.secret import MASK, Secret, masked_forms
from muster.domain.verification_model import (
    CHANGE_TYPES,
    EXTRACTING_TYPES,
    Captured,
    Check,
    CheckResult,
    CheckType,
    HostEvidence,
    Verification,
)
from muster.domain.verification_values import (
    compare_versions,
    extract_json,
    extract_regex,
    parse_number,
    render_expected,
    show,
)

__all__ = ["assertions", "evaluate", "evidence_report"]

_TAIL = 200


def assertions(check: Check) -> tuple[CheckType, ...]:
    """What a check asserts, as plain comparisons (empty: finding the value is enough)."""
    if check.type not in EXTRACTING_TYPES:
        return (check.type,)
    found: list[CheckType] = []
    if check.expected is not None:
        found.append(CheckType.EQUALS)
    if check.expected_change is not None:
        found.append(check.expected_change)
    if check.minimum is not None or check.maximum is not None:
        found.append(CheckType.THRESHOLD)
    return tuple(found)


def _side(
    check: Check, captures: Mapping[str, Captured] | None, label: str
) -> tuple[str | None, str | None, str | None]:
    """``(raw text, value, problem)`` of one side of a check."""
    if captures is None:
        return None, None, f"{label}: nothing was captured"
    captured = captures.get(check.key)
    if captured is None:
        return None, None, f"{label}: capture of {check.key!r} is missing"
    text = captured.text
    if captured.exit_code is None:
        return text, None, f"{label}: capture of {check.key!r} was cut off (no exit status)"
    if captured.exit_code != 0:
        tail = text.strip()[-_TAIL:]
        return (
            text,
            None,
            (f"{label}: capture command {check.key!r} exited {captured.exit_code}: {show(tail)}"),
        )
    if check.pattern is not None:
        value, problem = extract_regex(check.pattern, text)
    elif check.path is not None:
        value, problem = extract_json(check.path, text)
    else:
        value, problem = text.strip(), None
    return text, value, None if problem is None else f"{label}: {problem}"


def _judge(
    kind: CheckType, check: Check, before: str, after: str, expected: str, shown: str
) -> tuple[bool, str]:
    """One assertion on values already read. ``before``/``expected`` may be unused."""
    if kind is CheckType.EQUALS:
        if after == expected:
            return True, f"after value {show(after)} equals {show(shown)}"
        return False, f"after value {show(after)} is not the expected {show(shown)}"
    if kind is CheckType.CHANGED:
        if before != after:
            return True, f"changed: {show(before)} -> {show(after)}"
        return False, f"did not change: still {show(after)}"
    if kind is CheckType.UNCHANGED:
        if before == after:
            return True, f"unchanged: {show(after)}"
        return False, f"changed unexpectedly: {show(before)} -> {show(after)}"
    if kind is CheckType.VERSION_INCREASE:
        order, problem = compare_versions(before, after, check.scheme)
        if problem is not None:
            return False, problem
        words = f"{check.scheme.value} version {show(before)} -> {show(after)}"
        if order == 1:
            return True, f"{words} increased"
        return False, f"{words} {'did not change' if order == 0 else 'decreased'}"
    return _threshold(check, after)


def _threshold(check: Check, after: str) -> tuple[bool, str]:
    number = parse_number(after)
    if number is None:
        return False, f"after value {show(after)} is not a number"
    if check.minimum is not None and number < check.minimum:
        return False, f"{number:g} is below the minimum {check.minimum:g}"
    if check.maximum is not None and number > check.maximum:
        return False, f"{number:g} is above the maximum {check.maximum:g}"
    low = "-inf" if check.minimum is None else f"{check.minimum:g}"
    high = "inf" if check.maximum is None else f"{check.maximum:g}"
    return True, f"{number:g} is within [{low}, {high}]"


def _check(
    check: Check,
    before: Mapping[str, Captured] | None,
    after: Mapping[str, Captured] | None,
    params: Mapping[str, object],
) -> CheckResult:
    kinds = assertions(check)
    before_text, before_value, before_problem = _side(check, before, "before")
    after_text, after_value, after_problem = _side(check, after, "after")
    expected, shown, expected_problem = (None, None, None)
    if check.expected is not None:
        expected, shown, expected_problem = render_expected(check.expected, params)
    problems = [after_problem, expected_problem]
    if any(kind in CHANGE_TYPES for kind in kinds):
        problems.insert(0, before_problem)
    real = [p for p in problems if p is not None]
    if real:
        passed, detail = False, "; ".join(real)
    elif not kinds:
        passed, detail = True, f"found {show(after_value or '')}"
    else:
        verdicts = [
            _judge(kind, check, before_value or "", after_value or "", expected or "", shown or "")
            for kind in kinds
        ]
        passed = all(ok for ok, _ in verdicts)
        detail = "; ".join(words for _, words in verdicts)
    return CheckResult(
        key=check.key,
        type=check.type,
        before=before_text,
        after=after_text,
        before_value=before_value,
        after_value=after_value,
        expected=shown,
        passed=passed,
        detail=detail,
    )


def _drift(
    v: Verification,
    before: Mapping[str, Captured],
    after: Mapping[str, Captured],
    results: Mapping[str, CheckResult],
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for key in v.commands:
        check = v.checks.get(key)
        if check is not None:
            result = results[key]
            old, new = result.before_value, result.after_value
            if (
                CheckType.UNCHANGED in assertions(check)
                and old is not None
                and new is not None
                and old != new
            ):
                found.append(
                    (key, f"{key}: expected unchanged, changed {show(old)} -> {show(new)}")
                )
            continue
        b, a = before.get(key), after.get(key)
        if b is None and a is None:
            continue
        if b is None or a is None:
            found.append((key, f"{key}: captured only {'after' if b is None else 'before'}"))
        elif b.exit_code != a.exit_code:
            found.append((key, f"{key}: exit status {b.exit_code} -> {a.exit_code}"))
        elif b.text != a.text:
            found.append((key, f"{key}: output changed {show(b.text)} -> {show(a.text)}"))
    return found


def _texts(captures: Mapping[str, Captured] | None, keys: Iterable[str]) -> dict[str, str | None]:
    if captures is None:
        return {}
    return {key: captures[key].text if key in captures else None for key in keys}


def _masker(params: Mapping[str, object]) -> Any:
    forms = masked_forms(v.reveal() for v in params.values() if isinstance(v, Secret))

    def mask(text: str | None) -> str | None:
        if text is None:
            return None
        for form in forms:
            text = text.replace(form, MASK)
        return text

    return mask


def evaluate(
    v: Verification,
    host: str,
    before: Mapping[str, Captured] | None,
    after: Mapping[str, Captured] | None,
    params: Mapping[str, object] | None = None,
) -> HostEvidence:
    """The evidence for ``host``; ``before``/``after`` None when that capture never ran."""
    params = params or {}
    errors = [
        f"no capture {label} the change (the capture around {', '.join(tasks) or 'the run'} "
        "did not run or did not return)"
        for label, tasks, side in (
            ("before", v.before_tasks, before),
            ("after", v.after_tasks, after),
        )
        if side is None
    ]
    results = {key: _check(check, before, after, params) for key, check in v.checks.items()}
    drift = _drift(v, before, after, results) if before is not None and after is not None else []
    passed = (
        not errors and all(r.passed for r in results.values()) and not (v.fail_on_drift and drift)
    )
    mask = _masker(params)
    checks = tuple(
        CheckResult(
            key=r.key,
            type=r.type,
            before=mask(r.before),
            after=mask(r.after),
            before_value=mask(r.before_value),
            after_value=mask(r.after_value),
            expected=r.expected,
            passed=r.passed,
            detail=mask(r.detail) or "",
        )
        for r in results.values()
    )
    return HostEvidence(
        verification=v.name,
        host=host,
        before={k: mask(t) for k, t in _texts(before, v.commands).items()},
        after={k: mask(t) for k, t in _texts(after, v.commands).items()},
        checks=checks,
        drift=tuple(key for key, _ in drift),
        passed=passed,
        error="; ".join(errors) or None,
        drift_details=tuple(mask(words) or "" for _, words in drift),
    )


def evidence_report(evidence: Iterable[HostEvidence]) -> dict[str, Any]:
    """The JSON export: every host's evidence by verification, and a summary by host."""
    by_verification: dict[str, dict[str, HostEvidence]] = {}
    for item in evidence:
        by_verification.setdefault(item.verification, {})[item.host] = item
    verifications: dict[str, Any] = {}
    hosts: dict[str, Any] = {}
    for name in sorted(by_verification):
        items = by_verification[name]
        verifications[name] = {
            "passed": all(e.passed for e in items.values()),
            "failed_hosts": sorted(h for h, e in items.items() if not e.passed),
            "drift_hosts": sorted(h for h, e in items.items() if e.drift),
            "hosts": {h: items[h].to_dict() for h in sorted(items)},
        }
        for host, item in items.items():
            entry = hosts.setdefault(host, {"passed": True, "verifications": {}, "drift": {}})
            entry["passed"] = entry["passed"] and item.passed
            entry["verifications"][name] = item.passed
            if item.drift:
                entry["drift"][name] = list(item.drift)
    return {
        "passed": all(v["passed"] for v in verifications.values()),
        "summary": {
            "verifications": len(verifications),
            "hosts": len(hosts),
            "failed_hosts": sum(1 for h in hosts.values() if not h["passed"]),
            "drift_hosts": sum(1 for h in hosts.values() if h["drift"]),
        },
        "verifications": verifications,
        "hosts": {h: hosts[h] for h in sorted(hosts)},
    }

"""A verification from its user-facing form (seed 004's dict, a workflow's YAML) and back.

Every problem is a :class:`ValidationError` whose ``field`` is the path of the
offending input, ``verifications.<name>.<key>...``, and whose message names the
problem, so a form or an API answer can point at it. Definitions are checked
completely here (regexes compile and have a group, JSON paths parse, bounds are
ordered), so evaluating a host can only fail on what the host printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from muster.domain.verification_capture import KEY_PATTERN
from muster.domain.verification_model import (
    CHANGE_TYPES,
    EXTRACTING_TYPES,
    Check,
    CheckType,
    Verification,
    VersionScheme,
)
from muster.domain.verification_values import path_problem, pattern_problem, placeholder_problem
from muster.errors import ValidationError

__all__ = ["parse_verification", "verification_to_dict"]

_SPEC_KEYS: Final = (
    "before_tasks",
    "after_tasks",
    "commands",
    "comparisons",
    "fail_on_drift",
    "gate",
)
_CHECK_KEYS: Final = (
    "type",
    "pattern",
    "path",
    "expected",
    "expected_change",
    "scheme",
    "minimum",
    "maximum",
)


def _fail(field: str, message: str) -> ValidationError:
    return ValidationError(message, field=field)


def _unknown(spec: Mapping[str, Any], allowed: tuple[str, ...], at: str) -> None:
    unknown = sorted(str(k) for k in spec if k not in allowed)
    if unknown:
        raise _fail(
            f"{at}.{unknown[0]}",
            f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})",
        )


def _tasks(value: object, at: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) and t for t in value):
        raise _fail(at, "must be a list of step names")
    return tuple(value)


def _flag(value: object, default: bool, at: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _fail(at, "must be true or false")
    return value


def _commands(value: object, at: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise _fail(at, "commands must be a non-empty mapping of key to command")
    commands: dict[str, str] = {}
    for key, command in value.items():
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise _fail(
                f"{at}.{key}",
                f"bad command key {key!r}: letters, digits, '_', '.', '-', starting with a letter",
            )
        if not isinstance(command, str) or not command.strip():
            raise _fail(f"{at}.{key}", "the command is empty")
        commands[key] = command
    return commands


def _enum(kind: type[CheckType] | type[VersionScheme], value: object, what: str, at: str) -> Any:
    try:
        return kind(value if isinstance(value, str) else repr(value))
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise _fail(at, f"unknown {what} {value!r} (one of {allowed})") from None


def _text(spec: Mapping[str, Any], name: str, at: str) -> str | None:
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(f"{at}.{name}", f"{name} must be text")
    return str(value)


def _bound(spec: Mapping[str, Any], name: str, at: str) -> float | None:
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise _fail(f"{at}.{name}", f"{name} must be a number")
    return float(value)


def _check(key: str, spec: object, at: str) -> Check:
    if not isinstance(spec, Mapping):
        raise _fail(at, "a comparison is a mapping with a type")
    _unknown(spec, _CHECK_KEYS, at)
    if spec.get("type") is None:
        raise _fail(f"{at}.type", "a comparison needs a type")
    kind: CheckType = _enum(CheckType, spec["type"], "comparison type", f"{at}.type")
    pattern, path = _text(spec, "pattern", at), _text(spec, "path", at)
    expected = _text(spec, "expected", at)
    minimum, maximum = _bound(spec, "minimum", at), _bound(spec, "maximum", at)
    change: CheckType | None = None
    if spec.get("expected_change") is not None:
        change = _enum(
            CheckType, spec["expected_change"], "expected_change", f"{at}.expected_change"
        )
    if kind is CheckType.REGEX_MATCH and pattern is None:
        raise _fail(f"{at}.pattern", "regex_match needs a pattern with a capture group")
    if kind is CheckType.JSON_PATH and path is None:
        raise _fail(f"{at}.path", "json_path needs a path")
    if pattern is not None and path is not None:
        raise _fail(f"{at}.path", "give a pattern or a path, not both")
    problem = None if pattern is None else pattern_problem(pattern)
    if problem is not None:
        raise _fail(f"{at}.pattern", problem)
    problem = None if path is None else path_problem(path)
    if problem is not None:
        raise _fail(f"{at}.path", problem)
    extracting = kind in EXTRACTING_TYPES
    if change is not None and (not extracting or change not in CHANGE_TYPES):
        allowed = ", ".join(sorted(t.value for t in CHANGE_TYPES))
        raise _fail(
            f"{at}.expected_change",
            "expected_change goes with regex_match or json_path and is one of " + allowed,
        )
    if expected is None and kind is CheckType.EQUALS:
        raise _fail(f"{at}.expected", "equals needs an expected value")
    if expected is not None and not (extracting or kind is CheckType.EQUALS):
        raise _fail(f"{at}.expected", f"{kind.value} takes no expected value")
    problem = None if expected is None else placeholder_problem(expected)
    if problem is not None:
        raise _fail(f"{at}.expected", problem)
    bounded = minimum is not None or maximum is not None
    if kind is CheckType.THRESHOLD and not bounded:
        raise _fail(at, "threshold needs a minimum, a maximum or both")
    if bounded and not (extracting or kind is CheckType.THRESHOLD):
        raise _fail(f"{at}.minimum", f"{kind.value} takes no minimum or maximum")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise _fail(f"{at}.minimum", f"minimum {minimum:g} is greater than maximum {maximum:g}")
    scheme = VersionScheme.DEBIAN
    if spec.get("scheme") is not None:
        scheme = _enum(VersionScheme, spec["scheme"], "version scheme", f"{at}.scheme")
    check = Check(key, kind, pattern, path, expected, change, scheme, minimum, maximum)
    if spec.get("scheme") is not None and not check.compares_versions:
        raise _fail(f"{at}.scheme", "scheme goes with version_increase only")
    return check


def parse_verification(name: str, spec: Mapping[str, Any]) -> Verification:
    """A checked :class:`Verification` from seed 004's keys (plus fail_on_drift, gate)."""
    at = f"verifications.{name}"
    if not isinstance(name, str) or not KEY_PATTERN.match(name):
        raise _fail(at, f"bad verification name {name!r}: letters, digits, '_', '.', '-'")
    if not isinstance(spec, Mapping):
        raise _fail(at, "a verification is a mapping with commands")
    _unknown(spec, _SPEC_KEYS, at)
    commands = _commands(spec.get("commands"), f"{at}.commands")
    raw_checks = spec.get("comparisons")
    if raw_checks is None:
        raw_checks = {}
    if not isinstance(raw_checks, Mapping):
        raise _fail(
            f"{at}.comparisons", "comparisons must be a mapping of command key to comparison"
        )
    checks: dict[str, Check] = {}
    for key, check in raw_checks.items():
        where = f"{at}.comparisons.{key}"
        if key not in commands:
            raise _fail(where, f"comparison for {key!r}, which has no command")
        checks[key] = _check(key, check, where)
    return Verification(
        name=name,
        before_tasks=_tasks(spec.get("before_tasks"), f"{at}.before_tasks"),
        after_tasks=_tasks(spec.get("after_tasks"), f"{at}.after_tasks"),
        commands=commands,
        checks=checks,
        fail_on_drift=_flag(spec.get("fail_on_drift"), False, f"{at}.fail_on_drift"),
        gate=_flag(spec.get("gate"), True, f"{at}.gate"),
    )


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def verification_to_dict(v: Verification) -> dict[str, Any]:
    """The user-facing form; ``parse_verification(v.name, verification_to_dict(v)) == v``."""
    comparisons: dict[str, Any] = {}
    for key, check in v.checks.items():
        out: dict[str, Any] = {"type": check.type.value}
        for name in ("pattern", "path", "expected"):
            if getattr(check, name) is not None:
                out[name] = getattr(check, name)
        if check.expected_change is not None:
            out["expected_change"] = check.expected_change.value
        if check.compares_versions:
            out["scheme"] = check.scheme.value
        if check.minimum is not None:
            out["minimum"] = _number(check.minimum)
        if check.maximum is not None:
            out["maximum"] = _number(check.maximum)
        comparisons[key] = out
    return {
        "before_tasks": list(v.before_tasks),
        "after_tasks": list(v.after_tasks),
        "commands": dict(v.commands),
        "comparisons": comparisons,
        "fail_on_drift": v.fail_on_drift,
        "gate": v.gate,
    }

"""The data of configuration verification: what to capture, how to compare, what was found.

A :class:`Verification` names the commands captured on each host before and after
some workflow steps, and one :class:`Check` per captured key. Evaluating it for a
host gives :class:`HostEvidence`: the captured texts, one :class:`CheckResult` per
check, and the drift (captured keys that changed without a check allowing it).
Everything here is frozen data; the rules live in the sibling modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "CHANGE_TYPES",
    "EXTRACTING_TYPES",
    "Captured",
    "Check",
    "CheckResult",
    "CheckType",
    "HostEvidence",
    "Verification",
    "VersionScheme",
]


class CheckType(StrEnum):
    EQUALS = "equals"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    REGEX_MATCH = "regex_match"
    VERSION_INCREASE = "version_increase"
    JSON_PATH = "json_path"
    THRESHOLD = "threshold"


class VersionScheme(StrEnum):
    """How version strings are ordered; each ordering comes from ``univers``."""

    DEBIAN = "debian"
    RPM = "rpm"
    SEMVER = "semver"


#: Types whose job is to pull a value out of the text (a regex group, a JSON path);
#: what they assert about it comes from ``expected`` / ``expected_change`` / bounds.
EXTRACTING_TYPES = frozenset({CheckType.REGEX_MATCH, CheckType.JSON_PATH})
#: What ``expected_change`` may say: a comparison of the before and after values.
CHANGE_TYPES = frozenset({CheckType.CHANGED, CheckType.UNCHANGED, CheckType.VERSION_INCREASE})


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison of one captured key.

    ``pattern`` (a regex whose first group is the value) or ``path`` (a JSON path
    into the captured text) picks the value out of the text; without either the
    value is the whole text, stripped. ``expected`` may hold ``{{ name }}``
    placeholders filled from the run's parameters.
    """

    key: str
    type: CheckType
    pattern: str | None = None
    path: str | None = None
    expected: str | None = None
    expected_change: CheckType | None = None
    scheme: VersionScheme = VersionScheme.DEBIAN
    minimum: float | None = None
    maximum: float | None = None

    @property
    def compares_versions(self) -> bool:
        return CheckType.VERSION_INCREASE in (self.type, self.expected_change)


@dataclass(frozen=True, slots=True)
class Verification:
    """Capture ``commands`` before ``before_tasks`` and after ``after_tasks``, then check.

    ``gate``: a failed host stops the rollout at the next wave gate. ``fail_on_drift``:
    an unexpected change fails the host (otherwise drift is reported only).
    """

    name: str
    before_tasks: tuple[str, ...]
    after_tasks: tuple[str, ...]
    commands: Mapping[str, str]
    checks: Mapping[str, Check]
    fail_on_drift: bool = False
    gate: bool = True

    def __post_init__(self) -> None:
        # Frozen means frozen: callers' dicts must not change the definition later.
        object.__setattr__(self, "commands", MappingProxyType(dict(self.commands)))
        object.__setattr__(self, "checks", MappingProxyType(dict(self.checks)))


@dataclass(frozen=True, slots=True)
class Captured:
    """One command's merged stdout+stderr; ``exit_code`` is None when its end was never seen."""

    text: str
    exit_code: int | None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check on one host.

    ``before`` / ``after`` are the captured texts; ``before_value`` / ``after_value``
    what the check read out of them; ``expected`` the rendered expectation (a
    secret parameter shows as ``***``); ``detail`` says in words why it passed or not.
    """

    key: str
    type: CheckType
    before: str | None
    after: str | None
    before_value: str | None
    after_value: str | None
    expected: str | None
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        # The raw texts are in the host's before/after maps; repeating them per
        # check would double the size of every export.
        return {
            "key": self.key,
            "type": self.type.value,
            "before_value": self.before_value,
            "after_value": self.after_value,
            "expected": self.expected,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class HostEvidence:
    """What one verification found on one host: the proof behind pass or fail."""

    verification: str
    host: str
    before: Mapping[str, str | None]
    after: Mapping[str, str | None]
    checks: tuple[CheckResult, ...]
    drift: tuple[str, ...]
    passed: bool
    error: str | None
    #: Why each drifting key counts as drift, in words (same order as ``drift``).
    drift_details: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "verification": self.verification,
            "host": self.host,
            "passed": self.passed,
            "error": self.error,
            "drift": list(self.drift),
            "drift_details": list(self.drift_details),
            "checks": [c.to_dict() for c in self.checks],
            "before": dict(self.before),
            "after": dict(self.after),
        }

"""Reading values out of captured text, and comparing them: the leaf rules of verification.

Every function here answers with a value or a problem in words, never raises on
bad host output: a host that printed something unexpected fails its check with
a reason, it does not crash the rollout. Bad *definitions* (a broken regex or
JSON path) are caught by the ``*_problem`` functions when a verification is parsed.

Version ordering is ``univers``'s (aboutcode): one pure-Python library that
implements dpkg's, rpm's and semver's comparison rules.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from muster.domain.secret import MASK, Secret
from muster.domain.verification_model import VersionScheme

__all__ = [
    "PLACEHOLDER",
    "compare_versions",
    "extract_json",
    "extract_regex",
    "parse_number",
    "path_problem",
    "pattern_problem",
    "placeholder_problem",
    "render_expected",
    "show",
]

#: ``{{ name }}`` in an expected value names a parameter of the run.
PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# An RPM [epoch:]version[-release]: rpm itself compares any text, so this only keeps
# out what no package manager would print (spaces, several dashes, punctuation only).
_RPM_EVR: Final = re.compile(r"(?:[0-9]+:)?[0-9A-Za-z._+~^]+(?:-[0-9A-Za-z._+~^]+)?\Z")
_SHOWN: Final = 120


def show(value: str) -> str:
    """A value as it appears in a detail line: quoted, and cut when long."""
    if len(value) > _SHOWN:
        return repr(value[:_SHOWN]) + f"... ({len(value)} chars)"
    return repr(value)


# --- definitions ---------------------------------------------------------------------


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    # MULTILINE: captured command output is read line by line (``^ii\s+openssl``).
    return re.compile(pattern, re.MULTILINE)


def pattern_problem(pattern: str) -> str | None:
    try:
        compiled = _compiled(pattern)
    except re.error as exc:
        return f"bad regex {pattern!r}: {exc}"
    if compiled.groups == 0:
        return f"pattern {pattern!r} has no capture group: put the value in parentheses"
    return None


@lru_cache(maxsize=512)
def _json_path(path: str) -> Any:
    # Imported on first use: the CLI starts without paying for the parser.
    from jsonpath_ng.ext.parser import parse

    return parse(path)


def path_problem(path: str) -> str | None:
    from jsonpath_ng.exceptions import JSONPathError

    try:
        _json_path(path)
    except (JSONPathError, ValueError, TypeError, AttributeError, IndexError) as exc:
        # jsonpath-ng's lexer and parser raise JSONPathError; its AST builders a few
        # built-in errors on some malformed filters.
        return f"bad JSON path {path!r}: {exc}"
    return None


def placeholder_problem(expected: str) -> str | None:
    rest = PLACEHOLDER.sub("", expected)
    if "{{" in rest or "}}" in rest:
        return f"malformed parameter placeholder in {expected!r}: write {{{{ name }}}}"
    return None


# --- reading values ------------------------------------------------------------------


def extract_regex(pattern: str, text: str) -> tuple[str | None, str | None]:
    """The first group of the first match, or why there is none."""
    match = _compiled(pattern).search(text)
    if match is None:
        return None, f"pattern {pattern!r} does not match the output"
    value = match.group(1)
    if value is None:
        return None, f"pattern {pattern!r} matched but its group captured nothing"
    return value, None


def extract_json(path: str, text: str) -> tuple[str | None, str | None]:
    """The value at ``path`` as text (strings as they are, the rest as JSON)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        return None, f"output is not valid JSON ({exc})"
    found = [m.value for m in _json_path(path).find(document)]
    if not found:
        return None, f"JSON path {path!r} matches nothing in the output"
    value = found[0] if len(found) == 1 else found
    if isinstance(value, str):
        return value, None
    return json.dumps(value, sort_keys=True), None


def parse_number(text: str) -> float | None:
    """A finite number, allowing a trailing ``%`` (``df`` prints ``42%``)."""
    cleaned = text.strip().removesuffix("%").strip()
    try:
        number = float(cleaned)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def render_expected(
    expected: str, params: Mapping[str, object]
) -> tuple[str | None, str, str | None]:
    """``(value to compare, value to show, problem)`` with parameters filled in.

    A secret parameter is compared by its value but shown as ``***``.
    """
    missing: list[str] = []
    secret = False

    def fill(match: re.Match[str], *, reveal: bool) -> str:
        nonlocal secret
        name = match.group(1)
        if name not in params:
            missing.append(name)
            return match.group(0)
        value = params[name]
        if isinstance(value, Secret):
            secret = True
            return value.reveal() if reveal else MASK
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    actual = PLACEHOLDER.sub(lambda m: fill(m, reveal=True), expected)
    shown = PLACEHOLDER.sub(lambda m: fill(m, reveal=False), expected)
    if missing:
        names = ", ".join(sorted(set(missing)))
        return None, shown, f"expected value needs parameter(s) not given: {names}"
    return actual, MASK if secret else shown, None


# --- versions ------------------------------------------------------------------------


def _version(text: str, scheme: VersionScheme) -> Any:
    """A comparable univers version, or None when ``text`` is not one of ``scheme``."""
    # Imported on first use: univers costs a tenth of a second at every CLI start.
    from univers.versions import DebianVersion, EnhancedSemanticVersion, RpmVersion, SemverVersion

    if not text or any(ch.isspace() for ch in text):
        # univers drops inner spaces ("1.0 x" -> "1.0x"); a version never has any.
        return None
    try:
        if scheme is VersionScheme.DEBIAN:
            debian: Any = DebianVersion  # univers's is_valid is untyped
            return DebianVersion(text) if debian.is_valid(text) else None
        if scheme is VersionScheme.RPM:
            has_alnum = any(ch.isalnum() for ch in text)
            return RpmVersion(text) if has_alnum and _RPM_EVR.match(text) else None
        # Strict semver 2.0 (semantic_version's parser) with an optional leading "v";
        # univers's own constructor would coerce "1.2" or "1.2.3.4" silently.
        EnhancedSemanticVersion(text.removeprefix("v"))
        return SemverVersion(text)
    except ValueError:
        return None


def compare_versions(
    before: str, after: str, scheme: VersionScheme
) -> tuple[int | None, str | None]:
    """-1, 0 or 1 for after against before, or a problem naming the invalid side."""
    old, new = _version(before, scheme), _version(after, scheme)
    bad = [
        f"{side} {show(text)}"
        for side, text, v in (("before", before, old), ("after", after, new))
        if v is None
    ]
    if bad:
        return None, f"not a valid {scheme.value} version: " + ", ".join(bad)
    if bool(new > old):
        return 1, None
    if bool(new < old):
        return -1, None
    return 0, None

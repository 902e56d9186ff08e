"""The ``muster:`` header: a script file declaring its shell, timeout and parameters.

The header is the block of comment lines at the top of a script (a shebang
and blank lines included); it ends at the first line that is not a comment,
so ``muster:`` text further down the body is never read. A comment starts
with ``#`` (sh, bash, python, powershell...), ``//``, ``--``, ``REM`` or
``::`` (cmd). Directives, one per line::

    # muster:shell bash
    # muster:timeout 60              seconds, or 90s / 5m / 1h
    # muster:description Patch the web tier
    # muster:requires_approval
    # muster:idempotent
    # muster:param NAME TYPE [required] [default=VALUE] [choices=a,b,c] ["description"]

``TYPE`` is string, integer, float, boolean, secret or choice. Words are
split like a shell does, so ``default="two words"`` and a quoted description
work; the description may also be several unquoted words at the end. Every
declaration is checked with :class:`~muster.domain.params.ParameterSpec`, so
a bad one fails here, naming its line, and not when the script runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Final

from muster.domain.params import ParameterSpec
from muster.errors import ParameterError, ValidationError

__all__ = ["ScriptHeader", "parse_script_header"]

_COMMENT_RE: Final = re.compile(r"\s*(?:#|//|--|::|REM\b)\s?(.*)", re.IGNORECASE)
_DIRECTIVE_RE: Final = re.compile(r"muster:([a-z_]+)\b\s*(.*)")
_DURATION_RE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h)?")
_UNITS: Final = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_FLAGS: Final = ("requires_approval", "idempotent")


@dataclass(frozen=True, slots=True)
class ScriptHeader:
    """What a script file says about itself; ``None`` means "not declared".

    ``params`` holds plain declarations (``name``, ``type``, ``required``,
    ``default``, ``description``, ``choices``), the shape
    :meth:`ParameterSpec.from_dict` takes; :meth:`parameter_specs` builds them.
    """

    shell: str | None = None
    timeout: float | None = None
    params: list[dict[str, Any]] = field(default_factory=list)
    description: str | None = None
    requires_approval: bool = False
    idempotent: bool = False

    def parameter_specs(self) -> tuple[ParameterSpec, ...]:
        return tuple(ParameterSpec.from_dict(p) for p in self.params)


def _fail(line: int, problem: str, field_name: str = "header") -> ValidationError:
    return ValidationError(f"script header line {line}: {problem}", field=field_name)


def parse_script_header(text: str) -> ScriptHeader:
    """Read the header; a script without one gives an empty :class:`ScriptHeader`."""
    shell: str | None = None
    timeout: float | None = None
    description: str | None = None
    flags: dict[str, bool] = dict.fromkeys(_FLAGS, False)
    params: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or (number == 1 and raw.startswith("#!")):
            continue
        comment = _COMMENT_RE.fullmatch(raw)
        if comment is None:
            break
        directive = _DIRECTIVE_RE.fullmatch(comment.group(1).strip())
        if directive is None:
            continue
        name, rest = directive.group(1), directive.group(2).strip()
        if name == "shell":
            if not re.fullmatch(r"[a-z0-9]+", rest):
                raise _fail(number, f"muster:shell needs one shell name, got {rest!r}", "shell")
            shell = rest
        elif name == "timeout":
            timeout = _timeout(number, rest)
        elif name == "description":
            description = rest or None
        elif name in _FLAGS:
            if rest not in ("", "true", "yes", "false", "no"):
                raise _fail(number, f"muster:{name} takes no value or true/false, got {rest!r}")
            flags[name] = rest not in ("false", "no")
        elif name == "param":
            spec = _param(number, rest)
            if any(p["name"] == spec["name"] for p in params):
                raise _fail(number, f"parameter {spec['name']!r} declared twice", spec["name"])
            params.append(spec)
        else:
            raise _fail(number, f"unknown directive muster:{name}")
    return ScriptHeader(
        shell=shell,
        timeout=timeout,
        params=params,
        description=description,
        requires_approval=flags["requires_approval"],
        idempotent=flags["idempotent"],
    )


def _timeout(number: int, text: str) -> float:
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise _fail(number, f"muster:timeout needs a duration like 60, 90s, 5m, got {text!r}",
                    "timeout")  # fmt: skip
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise _fail(number, "muster:timeout must be positive", "timeout")
    return seconds


def _param(number: int, text: str) -> dict[str, Any]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise _fail(number, f"muster:param: {exc}") from None
    if len(words) < 2:
        raise _fail(number, "muster:param needs at least a name and a type")
    declared: dict[str, Any] = {
        "name": words[0],
        "type": words[1].lower(),
        "required": False,
        "default": None,
        "description": "",
        "choices": [],
    }
    described: list[str] = []
    for word in words[2:]:
        if described:
            described.append(word)
        elif word == "required":
            declared["required"] = True
        elif word == "optional":
            declared["required"] = False
        elif word.startswith("default="):
            declared["default"] = word.removeprefix("default=")
        elif word.startswith("choices="):
            declared["choices"] = [c.strip() for c in word[8:].split(",") if c.strip()]
        else:
            described.append(word)
    declared["description"] = " ".join(described)
    try:
        spec = ParameterSpec.from_dict(declared)
    except ParameterError as exc:
        raise ParameterError(
            f"script header line {number}: {exc.message}", field=str(declared["name"])
        ) from None
    return spec.to_dict()

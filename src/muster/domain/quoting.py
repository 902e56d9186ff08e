"""Quote a value as ONE literal word of a shell's language.

The contract: the returned text, placed where the shell expects a word,
stands for exactly ``value`` — no expansion, splitting, globbing or command
substitution can happen to it, so no value can change the command that runs.

Per shell:

* bash, sh (dash), zsh, ksh: POSIX single quotes. Runs of characters go
  between ``'...'`` and each ``'`` becomes ``\\'`` outside them, so the
  output never holds ``''`` inside a quoted run (zsh's RC_QUOTES option
  would read that as a quote). Newlines and any Unicode are literal there.
* python: ``ascii()`` of the string, a literal made only of ASCII, immune to
  the file's encoding.
* powershell: single quotes with every single-quote character doubled,
  including the typographic ones (U+2018..U+201B) that PowerShell also
  treats as quotes. Limit: Windows PowerShell before 7.3 passes an embedded
  ``"`` to *native* programs badly (their argv is re-split); within
  PowerShell the value is literal.
* cmd: best effort, because cmd has no quoting that stops everything.
  ``%`` expands even inside double quotes (and a doubled ``%%`` turns into a
  FOR variable inside a loop body), ``!`` expands under delayed expansion
  (which could read another variable, even a secret), ``"`` toggles quoting
  so that ``& | < >`` become live, a newline ends the command, and non-ASCII
  text is read in the console code page (a DBCS lead byte can swallow the
  closing quote). Such values are rejected with ParameterError; everything
  else is wrapped in ``"..."``, where ``& | < > ( ) ^`` are literal. The
  double quotes are part of what a cmd command sees. ``^`` is dropped by
  cmd only when a script turns delayed expansion on itself.

NUL is rejected for every shell: no shell and no environment can carry it.
"""

from __future__ import annotations

import re
from typing import Final

from muster.domain.scripts import Shell
from muster.errors import ParameterError

__all__ = [
    "cmd_problem",
    "ensure_cmd_safe",
    "inside_double_quotes",
    "inside_single_quotes",
    "quote",
]

_PS_QUOTES: Final = frozenset("'\u2018\u2019\u201a\u201b")
# Printable ASCII and TAB, minus the characters cmd interprets inside quotes.
_CMD_UNSAFE: Final = re.compile(r'[^\t\x20-\x7e]|["%!]')


def _fail(message: str, name: str | None) -> ParameterError:
    if name:
        return ParameterError(f"parameter '{name}': {message}", field=name)
    return ParameterError(message)


def quote(value: str, shell: Shell, *, name: str | None = None) -> str:
    """Return ``value`` as one literal word for ``shell``.

    Raises ParameterError (naming parameter ``name`` when given) for a value
    that cannot be made one literal word for that shell.
    """
    if not isinstance(value, str):
        raise TypeError(f"quote() takes text, not {type(value).__name__}")
    _check(value, name)
    shell = Shell(shell)
    if shell.is_posix:
        return _posix(value)
    if shell is Shell.PYTHON:
        return ascii(value)
    if shell is Shell.POWERSHELL:
        return "'" + "".join(c + c if c in _PS_QUOTES else c for c in value) + "'"
    ensure_cmd_safe(value, name=name)
    return '"' + value + '"'


def _check(value: str, name: str | None) -> None:
    if "\x00" in value:
        raise _fail("a NUL character cannot be passed to any shell", name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail("not valid Unicode text (lone surrogate)", name) from None


def inside_single_quotes(value: str, shell: Shell, *, name: str | None = None) -> str:
    """Text that stands for ``value`` literally inside an existing '...' string
    (POSIX shells: leave and re-enter the quotes; PowerShell: double quotes)."""
    _check(value, name)
    shell = Shell(shell)
    if shell.is_posix:
        return value.replace("'", "'\\''")
    if shell is Shell.POWERSHELL:
        return "".join(c + c if c in _PS_QUOTES else c for c in value)
    raise ValueError(f"{shell.value} has no single-quoted strings to insert into")


def inside_double_quotes(value: str, shell: Shell, *, name: str | None = None) -> str:
    """Text that stands for ``value`` literally inside an existing "..." string
    (POSIX shells: backslash before ``\\ $ ` "``; cmd: the value itself, when safe)."""
    _check(value, name)
    shell = Shell(shell)
    if shell.is_posix:
        return re.sub(r'([\\$`"])', r"\\\1", value)
    if shell is Shell.CMD:
        ensure_cmd_safe(value, name=name)
        return value
    raise ValueError(f"use an environment reference inside {shell.value} double quotes")


def _posix(value: str) -> str:
    if not value:
        return "''"
    parts = value.split("'")
    out: list[str] = []
    for i, part in enumerate(parts):
        if i:
            out.append("\\'")
        if part:
            out.append("'" + part + "'")
    return "".join(out)


def cmd_problem(value: str) -> str | None:
    """Why ``value`` cannot be a literal cmd word, or None when it can."""
    bad = _CMD_UNSAFE.search(value)
    if bad is None:
        return None
    char = bad.group()
    if char in "\r\n":
        return "cmd cannot carry a line break inside one word"
    if char == '"':
        return "cmd cannot quote a value containing '\"'"
    if char == "%":
        return "cmd expands '%' even inside quotes; such a value cannot be passed safely"
    if char == "!":
        return "cmd expands '!' under delayed expansion; such a value cannot be passed safely"
    if ord(char) > 0x7F:
        return "cmd reads scripts in the console code page; only ASCII values are accepted"
    return f"cmd cannot carry the control character {char!r}"


def ensure_cmd_safe(value: str, *, name: str | None = None) -> None:
    """Raise ParameterError unless ``value`` can travel as a literal cmd word."""
    problem = cmd_problem(value)
    if problem is not None:
        raise _fail(problem, name)

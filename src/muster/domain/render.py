"""Render a script body: substitute ``${name}`` placeholders, safely.

Rules (DESIGN "Parameters"):

* ``${name}`` naming a declared parameter is replaced; anything else is left
  untouched, so shell variables like ``${HOME}`` survive and ``$name``
  without braces is never a placeholder.
* Substitution is one left-to-right pass over the original text: a value
  that itself contains ``${other}`` is not substituted again.
* A value becomes ONE literal word of the script's shell (see
  :mod:`muster.domain.quoting`); its text is ``true``/``false`` for
  booleans and ``repr`` for floats (which round-trips). Placeholders are
  therefore meant for word positions, not for the inside of a quoted string.
* A secret is never written into the body: its placeholder becomes a
  reference to its environment variable that expands to one literal word.
  A declared parameter without a value renders as the empty word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from muster.domain.params import ParameterSpec, ParameterType, ParamValue, env_name, value_text
from muster.domain.quoting import ensure_cmd_safe, quote
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.secret import Secret

__all__ = ["PLACEHOLDER", "placeholders", "render_body", "render_text", "secret_reference"]

#: ``${name}`` where name is a parameter-shaped identifier.
PLACEHOLDER: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def secret_reference(param_name: str, shell: Shell) -> str:
    """Shell text that expands, at run time, to the parameter's environment
    variable as one literal word."""
    var = env_name(param_name)
    shell = Shell(shell)
    if shell.is_posix:
        return f'"${{{var}}}"'
    if shell is Shell.PYTHON:
        # __import__ so that the script needs no ``import os`` of its own.
        return f'__import__("os").environ["{var}"]'
    if shell is Shell.POWERSHELL:
        return f"$env:{var}"
    # cmd expands %VAR% before parsing; inside quotes its text stays literal
    # provided it holds nothing cmd reads there (checked by render_text).
    return f'"%{var}%"'


def placeholders(text: str) -> tuple[str, ...]:
    """Names of the ``${name}`` placeholders in ``text``, in order, without repeats."""
    return tuple(dict.fromkeys(m.group(1) for m in PLACEHOLDER.finditer(text)))


def render_text(
    text: str,
    shell: Shell,
    specs: Iterable[ParameterSpec],
    values: Mapping[str, ParamValue],
) -> str:
    """Substitute the placeholders of ``text`` for ``shell`` (see module doc)."""
    shell = Shell(shell)
    declared = {s.name: s for s in specs}
    words: dict[str, str] = {}

    def word(name: str) -> str:
        spec = declared[name]
        value = values.get(name)
        if spec.type is ParameterType.SECRET or isinstance(value, Secret):
            if shell is Shell.CMD and value is not None:
                revealed = value.reveal() if isinstance(value, Secret) else value_text(value)
                ensure_cmd_safe(revealed, name=name)
            return secret_reference(name, shell)
        text = "" if value is None else value_text(value)
        return quote(text, shell, name=name)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in declared:
            return match.group(0)
        if name not in words:
            words[name] = word(name)
        return words[name]

    return PLACEHOLDER.sub(substitute, text)


def render_body(version: ScriptVersion, values: Mapping[str, ParamValue]) -> str:
    """The text that runs: the version's full body (libraries first), rendered.

    ``values`` are coerced values (see :func:`muster.domain.params.coerce_values`).
    """
    return render_text(version.full_body, version.shell, version.parameters, values)

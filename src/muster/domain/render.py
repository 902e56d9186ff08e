"""Render a script body: substitute ``${name}`` placeholders, safely.

Rules (DESIGN "Parameters"):

* ``${name}`` naming a declared parameter is replaced; anything else is left
  untouched, so shell variables like ``${HOME}`` survive and ``$name``
  without braces is never a placeholder. An escaped ``\\${name}`` is literal
  in the shell and stays so.
* Substitution is one left-to-right pass over the original text: a value
  that itself contains ``${other}`` is not substituted again.
* What a placeholder becomes depends on where it stands (see
  :mod:`muster.domain.placeholders`): in plain code a quoted literal word
  (:func:`muster.domain.quoting.quote`); inside a string the author already
  quoted, text that is literal there (``echo "dir: ${d}"`` works as
  written); inside a comment nothing changes. Where the lexer is not sure
  (command substitutions, here-documents, after constructs it does not
  follow) the placeholder becomes a reference to the parameter's
  environment variable, which the shell expands without re-parsing: it can
  never change the command. Places with no safe form (quoted
  here-documents, Python string literals, arithmetic on non-numbers) are
  refused with a ParameterError naming the parameter and line.
* Value text is ``true``/``false`` for booleans and ``repr`` for floats
  (which round-trips).
* A secret is never written into the body: it always becomes an
  environment reference. A declared parameter without a value renders as
  the empty string.

References need the plan's environment (:func:`muster.domain.params.parameter_env`),
which every plan built by :mod:`muster.domain.planbuilder` carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from muster.domain.params import ParameterSpec, ParameterType, ParamValue, env_name, value_text
from muster.domain.placeholders import PLACEHOLDER, Context, Site, find_sites
from muster.domain.quoting import ensure_cmd_safe, inside_double_quotes, inside_single_quotes, quote
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.secret import Secret
from muster.errors import ParameterError

__all__ = [
    "PLACEHOLDER",
    "placeholder_problems",
    "placeholders",
    "render_body",
    "render_text",
    "secret_reference",
]


def secret_reference(param_name: str, shell: Shell) -> str:
    """Shell text in plain code that expands, at run time, to the parameter's
    environment variable as one literal word."""
    var = env_name(param_name)
    shell = Shell(shell)
    if shell.is_posix:
        return f'"${{{var}}}"'
    if shell is Shell.PYTHON:
        # __import__ so that the script needs no ``import os`` of its own.
        return f'__import__("os").environ["{var}"]'
    if shell is Shell.POWERSHELL:
        # Braced: ``$env:X.txt`` would read a property of $env:X.
        return f"${{env:{var}}}"
    # cmd expands %VAR% before parsing; inside quotes its text stays literal
    # provided it holds nothing cmd reads there (checked before use).
    return f'"%{var}%"'


def placeholders(text: str) -> tuple[str, ...]:
    """Names of the ``${name}`` placeholders in ``text``, in order, without repeats."""
    return tuple(dict.fromkeys(m.group(1) for m in PLACEHOLDER.finditer(text)))


_WHERE = {
    Context.REFUSED: "inside text the shell never expands (a quoted here-document, "
    "a string literal or ANSI-C quotes)",
    Context.ARITH: "inside arithmetic, where only integer or float parameters may go",
    Context.SQUOTE: "inside a single-quoted string, where a secret cannot be expanded",
}


def _refuse(site: Site) -> ParameterError:
    return ParameterError(
        f"parameter '{site.name}': placeholder on line {site.line} is {_WHERE[site.context]}; "
        f"assign it to a variable in plain code first",
        field=site.name,
    )


def _reference(site: Site, shell: Shell) -> str:
    """An environment reference that is safe in ``site``'s context."""
    var = env_name(site.name)
    ctx = site.context
    if shell.is_posix:
        if ctx is Context.DQUOTE or ctx is Context.NESTED_EXPANDING:
            return f"${{{var}}}"
        if ctx is Context.SQUOTE or ctx is Context.NESTED_SQUOTE:
            return f"'\"${{{var}}}\"'"
        return f'"${{{var}}}"'
    if shell is Shell.CMD:
        return f"%{var}%" if ctx is Context.DQUOTE else f'"%{var}%"'
    if shell is Shell.POWERSHELL and ctx is Context.SQUOTE:
        raise _refuse(site)
    return secret_reference(site.name, shell)


def _word(site: Site, shell: Shell, spec: ParameterSpec, value: ParamValue | None) -> str:
    ctx = site.context
    name = site.name
    if ctx is Context.REFUSED:
        raise _refuse(site)
    secret = spec.type is ParameterType.SECRET or isinstance(value, Secret)
    if ctx is Context.ARITH:
        if secret or not isinstance(value, int | float) or isinstance(value, bool):
            raise _refuse(site)
        return value_text(value)
    if secret:
        if shell is Shell.CMD and value is not None:
            revealed = value.reveal() if isinstance(value, Secret) else value_text(value)
            ensure_cmd_safe(revealed, name=name)
        return _reference(site, shell)
    text = "" if value is None else value_text(value)
    if ctx is Context.WORD:
        return quote(text, shell, name=name)
    if ctx is Context.DQUOTE and (shell.is_posix or shell is Shell.CMD):
        return inside_double_quotes(text, shell, name=name)
    if ctx is Context.SQUOTE and (shell.is_posix or shell is Shell.POWERSHELL):
        return inside_single_quotes(text, shell, name=name)
    return _reference(site, shell)


def render_text(
    text: str,
    shell: Shell,
    specs: Iterable[ParameterSpec],
    values: Mapping[str, ParamValue],
) -> str:
    """Substitute the placeholders of ``text`` for ``shell`` (see module doc)."""
    shell = Shell(shell)
    declared = {s.name: s for s in specs}
    out: list[str] = []
    pos = 0
    for site in find_sites(text, shell):
        spec = declared.get(site.name)
        if spec is None or site.context is Context.COMMENT:
            continue
        out.append(text[pos : site.start])
        out.append(_word(site, shell, spec, values.get(site.name)))
        pos = site.end
    out.append(text[pos:])
    return "".join(out)


def render_body(version: ScriptVersion, values: Mapping[str, ParamValue]) -> str:
    """The text that runs: the version's full body (libraries first), rendered.

    ``values`` are coerced values (see :func:`muster.domain.params.coerce_values`).
    """
    return render_text(version.full_body, version.shell, version.parameters, values)


_NUMERIC = (ParameterType.INTEGER, ParameterType.FLOAT)


def placeholder_problems(version: ScriptVersion) -> dict[str, str]:
    """Placeholders that no value could render, by parameter name.

    Meant for save time, so that a script which would be refused at every
    execution is rejected once, when it is written. Value-dependent checks
    (cmd's forbidden characters) still happen at render time.
    """
    declared = {s.name: s for s in version.parameters}
    problems: dict[str, str] = {}
    for site in find_sites(version.full_body, version.shell):
        spec = declared.get(site.name)
        if spec is None or site.name in problems:
            continue
        refused = (
            site.context is Context.REFUSED
            or (site.context is Context.ARITH and spec.type not in _NUMERIC)
            or (
                site.context is Context.SQUOTE
                and version.shell is Shell.POWERSHELL
                and spec.type is ParameterType.SECRET
            )
        )
        if refused:
            problems[site.name] = _refuse(site).message.removeprefix(f"parameter '{site.name}': ")
    return problems

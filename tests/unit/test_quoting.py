"""Quoting a value as one literal word, per shell (execution is in integration)."""

from __future__ import annotations

import ast

import pytest

from muster.domain.quoting import cmd_problem, ensure_cmd_safe, quote
from muster.domain.scripts import Shell
from muster.errors import ParameterError

POSIX = [Shell.BASH, Shell.SH, Shell.ZSH, Shell.KSH]


@pytest.mark.parametrize("shell", POSIX)
@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("", "''"),
        ("abc", "'abc'"),
        ("a b", "'a b'"),
        ("it's", "'it'\\''s'"),
        ("'", "\\'"),
        ("''", "\\'\\'"),
        ("'a'", "\\''a'\\'"),
        ("$(rm -rf /); `id` | & \\", "'$(rm -rf /); `id` | & \\'"),
        ("line1\nline2", "'line1\nline2'"),
        ("héllo ✓", "'héllo ✓'"),
    ],
)
def test_posix_single_quotes(shell: Shell, value: str, quoted: str) -> None:
    assert quote(value, shell) == quoted


@pytest.mark.parametrize("value", ["", "a'b", "\\x00", "\n", "é\u2028", "${HOME}", '"\'"'])
def test_python_literal_evaluates_to_the_value_and_is_ascii(value: str) -> None:
    literal = quote(value, Shell.PYTHON)
    assert literal.isascii()
    assert ast.literal_eval(literal) == value


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("", "''"),
        ("abc", "'abc'"),
        ("it's", "'it''s'"),
        ("$env:PATH; rm", "'$env:PATH; rm'"),
        ("a\u2019b", "'a\u2019\u2019b'"),
        ("\u2018\u201a\u201b", "'\u2018\u2018\u201a\u201a\u201b\u201b'"),
        ('say "hi"', "'say \"hi\"'"),
    ],
)
def test_powershell_single_quotes_double_every_quote_character(value: str, quoted: str) -> None:
    assert quote(value, Shell.POWERSHELL) == quoted


@pytest.mark.parametrize(
    ("value", "quoted"),
    [("", '""'), ("abc", '"abc"'), ("a & b | c > d ^ (e)", '"a & b | c > d ^ (e)"')],
)
def test_cmd_wraps_safe_values_in_double_quotes(value: str, quoted: str) -> None:
    assert quote(value, Shell.CMD) == quoted
    assert cmd_problem(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('a"b', "'\"'"),
        ("50%", "'%'"),
        ("%PATH%", "'%'"),
        ("hi!", "'!'"),
        ("a\nb", "line break"),
        ("a\rb", "line break"),
        ("é", "ASCII"),
        ("\x1a", "control character"),
    ],
)
def test_cmd_rejects_what_it_cannot_make_literal(value: str, fragment: str) -> None:
    with pytest.raises(ParameterError, match="'v'") as err:
        quote(value, Shell.CMD, name="v")
    assert fragment in str(err.value)
    assert err.value.field == "v"
    with pytest.raises(ParameterError):
        ensure_cmd_safe(value)


@pytest.mark.parametrize("shell", list(Shell))
def test_nul_is_rejected_everywhere(shell: Shell) -> None:
    with pytest.raises(ParameterError, match="NUL"):
        quote("a\x00b", shell, name="v")


@pytest.mark.parametrize("shell", list(Shell))
def test_lone_surrogate_is_rejected(shell: Shell) -> None:
    with pytest.raises(ParameterError, match="surrogate"):
        quote("\udc80", shell)


def test_quote_accepts_shell_names() -> None:
    assert quote("x", "bash") == "'x'"  # type: ignore[arg-type]


def test_quote_refuses_non_text() -> None:
    with pytest.raises(TypeError):
        quote(5, Shell.BASH)  # type: ignore[arg-type]

"""Placeholder substitution: one pass, untouched unknowns, quoting, secrets."""

from __future__ import annotations

import pytest

from muster.domain.params import ParameterSpec, ParameterType, coerce_values
from muster.domain.render import (
    placeholder_problems,
    placeholders,
    render_body,
    render_text,
    secret_reference,
)
from muster.domain.scripts import Library, ScriptVersion, Shell
from muster.domain.secret import Secret
from muster.errors import ParameterError

T = ParameterType
SPECS = (
    ParameterSpec("a"),
    ParameterSpec("b"),
    ParameterSpec("n", T.INTEGER),
    ParameterSpec("f", T.FLOAT),
    ParameterSpec("flag", T.BOOLEAN),
    ParameterSpec("pw", T.SECRET),
)


def render(text: str, shell: Shell = Shell.BASH, **raw: object) -> str:
    return render_text(text, shell, SPECS, coerce_values(SPECS, raw))


def test_values_become_quoted_words() -> None:
    assert render("echo ${a} ${b}", a="x y", b="it's") == "echo 'x y' 'it'\\''s'"


def test_substitution_is_one_pass() -> None:
    # a's value names b, but is not substituted again.
    out = render("echo ${a} ${b}", a="${b}", b="B")
    assert out == "echo '${b}' 'B'"


def test_unknown_placeholders_and_bare_dollars_survive() -> None:
    text = "echo ${HOME} $a ${ a} ${a-x} $${a}x ${1} \\${a}"
    assert render(text, a="V") == text
    assert render("${HOME}${a}", a="V") == "${HOME}'V'"


def test_repeated_placeholders_are_all_replaced() -> None:
    assert render("${a}${a}-${a}", a="v") == "'v''v'-'v'"


def test_booleans_and_numbers() -> None:
    out = render("${flag} ${n} ${f}", flag="yes", n="42", f="0.1")
    assert out == "'true' '42' '0.1'"
    assert render("${f}", f="1e20") == "'1e+20'"
    assert render("${flag}", flag=False) == "'false'"


def test_declared_parameter_without_value_is_the_empty_word() -> None:
    assert render("x ${a} y") == "x '' y"


@pytest.mark.parametrize(
    ("shell", "reference"),
    [
        (Shell.BASH, '"${MUSTER_PARAM_PW}"'),
        (Shell.SH, '"${MUSTER_PARAM_PW}"'),
        (Shell.ZSH, '"${MUSTER_PARAM_PW}"'),
        (Shell.KSH, '"${MUSTER_PARAM_PW}"'),
        (Shell.PYTHON, '__import__("os").environ["MUSTER_PARAM_PW"]'),
        (Shell.POWERSHELL, "${env:MUSTER_PARAM_PW}"),
        (Shell.CMD, '"%MUSTER_PARAM_PW%"'),
    ],
)
def test_secret_becomes_an_environment_reference(shell: Shell, reference: str) -> None:
    assert secret_reference("pw", shell) == reference
    out = render("use ${pw} now", shell, pw="hunter2-secret")
    assert out == f"use {reference} now"
    assert "hunter2" not in out


def test_secret_reference_is_used_even_when_the_value_is_absent() -> None:
    assert render("${pw}") == '"${MUSTER_PARAM_PW}"'


def test_cmd_secret_must_be_safe_for_cmd_and_error_hides_it() -> None:
    with pytest.raises(ParameterError) as err:
        render("echo ${pw}", Shell.CMD, pw='hunter2 & del x"')
    assert err.value.field == "pw"
    assert "hunter2" not in str(err.value)


def test_python_and_powershell_and_cmd_quote_their_way() -> None:
    assert render("print(${a})", Shell.PYTHON, a="it's") == 'print("it\'s")'
    assert render("Write-Output ${a}", Shell.POWERSHELL, a="it's") == "Write-Output 'it''s'"
    assert render("echo ${a}", Shell.CMD, a="a&b") == 'echo "a&b"'
    with pytest.raises(ParameterError, match="'a'"):
        render("echo ${a}", Shell.CMD, a="100%")


def test_render_body_uses_libraries_and_version_shell() -> None:
    v = ScriptVersion(
        "s",
        Shell.SH,
        "run ${a} ${pw}",
        parameters=(ParameterSpec("a"), ParameterSpec("pw", T.SECRET)),
        libraries=(Library("lib", "greet() { echo ${a}; }"),),
    )
    values = coerce_values(v.parameters, {"a": "x", "pw": "s3cr3t"})
    assert render_body(v, values) == "greet() { echo 'x'; }\nrun 'x' \"${MUSTER_PARAM_PW}\""


def test_a_plain_value_wrapped_as_secret_is_never_rendered() -> None:
    out = render_text("${a}", Shell.BASH, (ParameterSpec("a"),), {"a": Secret("zzz")})
    assert out == '"${MUSTER_PARAM_A}"'


def test_placeholders_lists_names_in_order() -> None:
    assert placeholders("${b} ${a} ${b} $c ${HOME}") == ("b", "a", "HOME")


# --- contexts: a value is literal wherever the author put the placeholder ----------

POSIX_CONTEXTS = [
    # inside the author's double quotes: backslash-escaped, literal there
    ('echo "dir: ${a}!"', 'echo "dir: x \\"\\$(id)\\" \\`\\\\!"'),
    # inside the author's single quotes: leave and re-enter around each quote
    ("echo 'v=${a}'", "echo 'v=x \"$(id)\" `\\'"),
    # comments are left alone (a value with a newline would end one)
    ("true # ${a}\necho ${a}", "true # ${a}\necho 'x \"$(id)\" `\\'"),
    # command substitution: an environment reference, never re-parsed
    ("v=$(echo ${a})", 'v=$(echo "${MUSTER_PARAM_A}")'),
    ('v="$(echo ${a})"', 'v="$(echo "${MUSTER_PARAM_A}")"'),
    ('v="$(echo "${a}")"', 'v="$(echo "${MUSTER_PARAM_A}")"'),
    # here-documents expand variables without re-parsing them
    (
        "cat <<EOF\n${a}\nEOF\necho ${a}",
        "cat <<EOF\n${MUSTER_PARAM_A}\nEOF\necho 'x \"$(id)\" `\\'",
    ),
    ("cat <<-EOF\n\t${a}\n\tEOF\n", "cat <<-EOF\n\t${MUSTER_PARAM_A}\n\tEOF\n"),
    ("cat <<EOF\n\\${a}\nEOF\n", "cat <<EOF\n\\${a}\nEOF\n"),
    # parameter expansion nesting
    ("echo ${x:-${a}}", "echo ${x:-${MUSTER_PARAM_A}}"),
    # after backquotes we no longer trust our reading: references only
    ('v=`date`; echo ${a} "${a}"', 'v=`date`; echo "${MUSTER_PARAM_A}" "${MUSTER_PARAM_A}"'),
]

HOSTILE = 'x "$(id)" `\\'


@pytest.mark.parametrize(("text", "expected"), POSIX_CONTEXTS)
def test_posix_contexts(text: str, expected: str) -> None:
    assert render(text, Shell.BASH, a=HOSTILE) == expected


def test_case_inside_command_substitution_makes_the_rest_references() -> None:
    text = 'v="$(case x in a) echo;; esac)" ; echo "${a}"'
    assert render(text, a="q") == 'v="$(case x in a) echo;; esac)" ; echo "${MUSTER_PARAM_A}"'


def test_secrets_per_posix_context() -> None:
    assert render('echo "${pw}"', pw="s") == 'echo "${MUSTER_PARAM_PW}"'
    assert render("echo '${pw}'", pw="s") == "echo ''\"${MUSTER_PARAM_PW}\"''"
    assert render("cat <<E\n${pw}\nE\n", pw="s") == "cat <<E\n${MUSTER_PARAM_PW}\nE\n"


def test_arithmetic_takes_numbers_only() -> None:
    assert render("echo $(( ${n} + 1 ))", n=4) == "echo $(( 4 + 1 ))"
    assert render("(( x = ${f} ))", f="1.5") == "(( x = 1.5 ))"
    for raw in ({"a": "1"}, {"pw": "1"}, {"flag": True}):
        name = next(iter(raw))
        with pytest.raises(ParameterError, match=f"'{name}'.*line 1.*arithmetic"):
            render(f"echo $(( ${{{name}}} + 1 ))", **raw)


@pytest.mark.parametrize(
    "text", ["cat <<'EOF'\n${a}\nEOF\n", 'cat <<"EOF"\n${a}\nEOF\n', "echo $'${a}'"]
)
def test_unexpanded_posix_text_is_refused(text: str) -> None:
    with pytest.raises(ParameterError, match=r"'a'.*never expands") as err:
        render(text, a="v")
    assert err.value.field == "a"


def test_python_contexts() -> None:
    assert render("x = ${a}  # ${a}", Shell.PYTHON, a="it's") == 'x = "it\'s"  # ${a}'
    assert render('y = else"s"; x = ${a}', Shell.PYTHON, a="v") == "y = else\"s\"; x = 'v'"
    for text in ('print("${a}")', "print(f'{x} ${a}')", 'x = """\n${a}\n"""'):
        with pytest.raises(ParameterError, match="line"):
            render(text, Shell.PYTHON, a="v")


def test_powershell_contexts() -> None:
    ps = Shell.POWERSHELL
    assert render("Write-Output ${a}", ps, a="it's") == "Write-Output 'it''s'"
    assert render("Write-Output 'v=${a}'", ps, a="it's") == "Write-Output 'v=it''s'"
    assert (
        render('Write-Output "v=${a}"', ps, a='$(x) "') == 'Write-Output "v=${env:MUSTER_PARAM_A}"'
    )
    assert render("# ${a}\n<# ${a} #>", ps, a="v") == "# ${a}\n<# ${a} #>"
    assert render("Write-Output `${a}", ps, a="v") == "Write-Output `${a}"
    assert render('@"\n${a}\n"@', ps, a="v") == '@"\n${env:MUSTER_PARAM_A}\n"@'
    with pytest.raises(ParameterError):
        render("@'\n${a}\n'@", ps, a="v")
    with pytest.raises(ParameterError, match="single-quoted"):
        render("Write-Output '${pw}'", ps, pw="s")


def test_cmd_contexts() -> None:
    cmd = Shell.CMD
    assert render("echo ${a}", cmd, a="a & b") == 'echo "a & b"'
    assert render('echo "v=${a}"', cmd, a="a & b") == 'echo "v=a & b"'
    assert (
        render('echo "${pw}" ${pw}', cmd, pw="s") == 'echo "%MUSTER_PARAM_PW%" "%MUSTER_PARAM_PW%"'
    )
    assert render("rem ${a}\n:: ${a}\necho ${a}", cmd, a="v") == 'rem ${a}\n:: ${a}\necho "v"'
    with pytest.raises(ParameterError):
        render('echo "v=${a}"', cmd, a='x"&calc')


def test_placeholder_problems_finds_scripts_refused_for_any_value() -> None:
    specs = (ParameterSpec("a"), ParameterSpec("n", T.INTEGER), ParameterSpec("pw", T.SECRET))
    body = "cat <<'E'\n${a}\nE\necho $(( ${n} + ${pw} )) ${a} # ${a}\n"
    v = ScriptVersion("s", Shell.BASH, body, parameters=specs)
    problems = placeholder_problems(v)
    assert set(problems) == {"a", "pw"}
    assert "line 2" in problems["a"]
    assert "arithmetic" in problems["pw"]
    fine = ScriptVersion("s", Shell.BASH, "echo ${a} $(( ${n} ))", parameters=specs)
    assert placeholder_problems(fine) == {}
    ps = ScriptVersion("s", Shell.POWERSHELL, "echo '${pw}' '${a}'", parameters=specs)
    assert set(placeholder_problems(ps)) == {"pw"}

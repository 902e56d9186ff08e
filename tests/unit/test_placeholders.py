"""The placeholder lexers: every context they report, and robustness on any text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.domain.placeholders import Context, find_sites
from muster.domain.scripts import Shell

C = Context


def contexts(text: str, shell: Shell = Shell.BASH) -> list[tuple[str, Context, int]]:
    return [(s.name, s.context, s.line) for s in find_sites(text, shell)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("echo ${a}", [("a", C.WORD, 1)]),
        ('echo "${a}"', [("a", C.DQUOTE, 1)]),
        ("echo '${a}'", [("a", C.SQUOTE, 1)]),
        ("echo x # ${a}\n${b}", [("a", C.COMMENT, 1), ("b", C.WORD, 2)]),
        ("echo a#${a}", [("a", C.WORD, 1)]),
        (
            "echo $(f ${a} '${b}' \"${c}\")",
            [("a", C.NESTED_CODE, 1), ("b", C.NESTED_SQUOTE, 1), ("c", C.NESTED_EXPANDING, 1)],
        ),
        ("echo $(( ${a} )) ; (( ${b} ))", [("a", C.ARITH, 1), ("b", C.ARITH, 1)]),
        ("cat <<E\n${a}\nE\n${b}", [("a", C.NESTED_EXPANDING, 2), ("b", C.WORD, 4)]),
        ("cat <<\\E\n${a}\nE\n", [("a", C.REFUSED, 2)]),
        (
            "cat <<E; cat <<'F'\n${a}\nE\n${b}\nF\n${c}",
            [("a", C.NESTED_EXPANDING, 2), ("b", C.REFUSED, 4), ("c", C.WORD, 6)],
        ),
        ("echo $'${a}' ${b}", [("a", C.REFUSED, 1), ("b", C.WORD, 1)]),
        ("echo \\${a} $${b} ${c}", [("c", C.WORD, 1)]),
        ('echo "\\"${a}"', [("a", C.DQUOTE, 1)]),
        ("echo ${x:-'}'} ${a}", [("a", C.WORD, 1)]),
        ('echo ${x:-"${a}"} ${b}', [("a", C.NESTED_EXPANDING, 1), ("b", C.WORD, 1)]),
        ("echo \"${x:-'}'}\" ${a}", [("a", C.NESTED_CODE, 1)]),
    ],
)
def test_posix_contexts(text: str, expected: list[tuple[str, Context, int]]) -> None:
    assert contexts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = ${a}", [("a", C.WORD, 1)]),
        (
            "x = '${a}' + r\"${b}\" + f'''\n${c}'''",
            [("a", C.REFUSED, 1), ("b", C.REFUSED, 1), ("c", C.REFUSED, 2)],
        ),
        ("x = 'a\\'${a}'", [("a", C.REFUSED, 1)]),
        ("# ${a}\n${b}", [("a", C.COMMENT, 1), ("b", C.WORD, 2)]),
    ],
)
def test_python_contexts(text: str, expected: list[tuple[str, Context, int]]) -> None:
    assert contexts(text, Shell.PYTHON) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "echo ${a} '${b}' \"${c}\"",
            [("a", C.WORD, 1), ("b", C.SQUOTE, 1), ("c", C.NESTED_EXPANDING, 1)],
        ),
        ("echo 'it''s ${a}'", [("a", C.SQUOTE, 1)]),
        ("echo \u2018${a}\u2019", [("a", C.SQUOTE, 1)]),
        ('echo "`${a} ${b}"', [("b", C.NESTED_EXPANDING, 1)]),
        ("echo a#${a}", [("a", C.WORD, 1)]),
    ],
)
def test_powershell_contexts(text: str, expected: list[tuple[str, Context, int]]) -> None:
    assert contexts(text, Shell.POWERSHELL) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('echo ${a} "${b}" ${c}', [("a", C.WORD, 1), ("b", C.DQUOTE, 1), ("c", C.WORD, 1)]),
        ('echo ^"${a}', [("a", C.WORD, 1)]),
        ('echo "x\n${a}', [("a", C.WORD, 2)]),
        (
            "@REM ${a}\r\n  :: ${b}\r\necho ${c}",
            [("a", C.COMMENT, 1), ("b", C.COMMENT, 2), ("c", C.WORD, 3)],
        ),
    ],
)
def test_cmd_contexts(text: str, expected: list[tuple[str, Context, int]]) -> None:
    assert contexts(text, Shell.CMD) == expected


PIECES = [*"${}()'\"`\\#<-EOF\n\t ;@a^%:rem", "${a}", "<<", "$(("]


@settings(max_examples=200, deadline=None)
@given(text=st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
@pytest.mark.parametrize("shell", list(Shell))
def test_any_text_lexes_to_ordered_real_placeholders(shell: Shell, text: str) -> None:
    sites = find_sites(text, shell)
    last = 0
    for site in sites:
        assert site.start >= last
        assert text[site.start : site.end] == "${" + site.name + "}"
        assert site.line == text.count("\n", 0, site.start) + 1
        last = site.end

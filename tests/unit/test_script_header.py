"""The ``# muster:`` script header: shell, timeout, flags and parameter declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.script_header import ScriptHeader, parse_script_header
from muster.errors import ParameterError, ValidationError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "patch.sh"


def test_example_script_header() -> None:
    header = parse_script_header(EXAMPLE.read_text())
    assert header.shell == "bash"
    assert header.timeout == 60.0
    assert header.description == "Write a patch marker into a directory"
    assert [p["name"] for p in header.params] == ["target_dir", "dry_run", "level"]
    target, dry_run, level = header.params
    assert target == {
        "name": "target_dir",
        "type": "string",
        "required": True,
        "default": None,
        "description": "Directory to patch",
        "choices": [],
    }
    assert dry_run["default"] is True and dry_run["type"] == "boolean"
    assert level["choices"] == ["minor", "major"] and level["default"] == "minor"


def test_example_body_uses_the_declared_parameters() -> None:
    text = EXAMPLE.read_text()
    for name in ("target_dir", "dry_run"):
        assert "${" + name + "}" in text


def test_parameter_specs_are_built() -> None:
    specs = parse_script_header(EXAMPLE.read_text()).parameter_specs()
    assert specs[0] == ParameterSpec(
        name="target_dir",
        type=ParameterType.STRING,
        required=True,
        description="Directory to patch",
    )
    assert specs[2].type is ParameterType.CHOICE


def test_no_header_gives_defaults() -> None:
    assert parse_script_header("echo hi\n") == ScriptHeader()
    assert parse_script_header("") == ScriptHeader()


def test_header_ends_at_the_first_code_line() -> None:
    text = "#!/bin/sh\n\n# muster:shell sh\necho hi\n# muster:shell bash\n# muster:bogus\n"
    assert parse_script_header(text).shell == "sh"


def test_other_comment_styles() -> None:
    assert parse_script_header("REM muster:shell cmd\n@echo off\n").shell == "cmd"
    assert parse_script_header(":: muster:timeout 5\n").timeout == 5.0
    assert parse_script_header("// muster:shell python\n").shell == "python"


@pytest.mark.parametrize(("text", "seconds"), [("30", 30.0), ("90s", 90.0), ("5m", 300.0),
                                                ("1h", 3600.0), ("2.5", 2.5)])  # fmt: skip
def test_timeouts(text: str, seconds: float) -> None:
    assert parse_script_header(f"# muster:timeout {text}\n").timeout == seconds


def test_flags() -> None:
    header = parse_script_header("# muster:requires_approval\n# muster:idempotent true\n")
    assert header.requires_approval and header.idempotent
    assert not parse_script_header("# muster:idempotent no\n").idempotent


def test_param_words_quoting_and_trailing_description() -> None:
    text = (
        '# muster:param greeting string default="hello there" Say it nicely\n'
        "# muster:param count integer default=3\n"
        "# muster:param ratio float optional\n"
        "# muster:param token secret required 'API token'\n"
    )
    params = {p["name"]: p for p in parse_script_header(text).params}
    assert params["greeting"]["default"] == "hello there"
    assert params["greeting"]["description"] == "Say it nicely"
    assert params["count"]["default"] == 3
    assert params["ratio"]["required"] is False
    assert params["token"]["type"] == "secret" and params["token"]["required"] is True


@pytest.mark.parametrize(
    ("text", "line", "problem", "error"),
    [
        ("#!/bin/bash\n# muster:frobnicate\n", 2, "unknown directive", ValidationError),
        ("# muster:shell two words\n", 1, "one shell name", ValidationError),
        ("# muster:timeout soon\n", 1, "duration", ValidationError),
        ("# muster:timeout 0\n", 1, "positive", ValidationError),
        ("# muster:idempotent maybe\n", 1, "true/false", ValidationError),
        ("# x\n# muster:param onlyname\n", 2, "name and a type", ValidationError),
        ("# muster:param p string 'open\n", 1, "muster:param", ValidationError),
        ("# muster:param p integer default=abc\n", 1, "invalid default", ParameterError),
        ("# muster:param p weird\n", 1, "unknown type", ParameterError),
        ("# muster:param 1p string\n", 1, "invalid parameter name", ParameterError),
        ("# muster:param p choice\n", 1, "needs choices", ParameterError),
        ("# muster:param p secret default=x\n", 1, "cannot have a default", ParameterError),
        ("# muster:param p string\n# muster:param p integer\n", 2, "declared twice",
         ValidationError),
    ],
)  # fmt: skip
def test_bad_headers_name_the_line(
    text: str, line: int, problem: str, error: type[ValidationError]
) -> None:
    with pytest.raises(error, match=problem) as caught:
        parse_script_header(text)
    assert str(caught.value).startswith(f"script header line {line}: ")

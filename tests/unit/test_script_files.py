"""Loading ``--script`` files: shell resolution order, header, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from muster.domain.params import ParameterType
from muster.domain.scripts import Shell
from muster.engine.script_files import load_script_file
from muster.errors import ValidationError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_header_declares_shell_parameters_and_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "deploy.sh",
        "# muster:shell zsh\n# muster:timeout 90s\n# muster:requires_approval\n"
        "# muster:idempotent\n# muster:description Ship it\n"
        "# muster:param count integer required\n# muster:param token secret\necho ${count}\n",
    )
    version = load_script_file(path)
    assert version.name == "deploy"
    assert version.shell is Shell.ZSH
    assert version.timeout == 90
    assert version.requires_approval and version.idempotent
    assert version.description == "Ship it"
    assert [(p.name, p.type, p.required) for p in version.parameters] == [
        ("count", ParameterType.INTEGER, True),
        ("token", ParameterType.SECRET, False),
    ]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.py", "print(1)\n", Shell.PYTHON),
        ("a", "#!/usr/bin/env python3\nprint(1)\n", Shell.PYTHON),
        ("a", "#!/bin/ksh\necho\n", Shell.KSH),
        ("a.sh", "#!/usr/bin/env bash\necho\n", Shell.BASH),
        ("a.sh", "echo\n", Shell.SH),
        ("a.ps1", "Write-Output 1\n", Shell.POWERSHELL),
        ("a", "echo\n", Shell.BASH),
        ("a", "#!/usr/bin/perl\nprint 1\n", Shell.BASH),
    ],
)
def test_shell_from_shebang_then_suffix_then_bash(
    tmp_path: Path, name: str, text: str, expected: Shell
) -> None:
    assert load_script_file(write(tmp_path, name, text)).shell is expected


def test_explicit_shell_and_timeout_win(tmp_path: Path) -> None:
    path = write(tmp_path, "x.sh", "# muster:shell bash\n# muster:timeout 60\necho\n")
    version = load_script_file(path, shell="ksh", timeout=5)
    assert (version.shell, version.timeout) == (Shell.KSH, 5)


def test_unknown_shell_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        load_script_file(write(tmp_path, "x.sh", "echo\n"), shell="fish")
    assert info.value.field == "shell" and "fish" in str(info.value)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sh"
    with pytest.raises(ValidationError) as info:
        load_script_file(missing)
    assert str(missing) in str(info.value)
    binary = tmp_path / "bin.sh"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValidationError):
        load_script_file(binary)

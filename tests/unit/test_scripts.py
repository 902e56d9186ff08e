"""Script versions: validation, content hash, save and restore."""

from __future__ import annotations

import dataclasses

import pytest

from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.scripts import Library, Script, ScriptVersion, Shell
from muster.errors import NotFoundError, ValidationError


def version(**kw: object) -> ScriptVersion:
    base: dict[str, object] = {
        "name": "deploy",
        "shell": Shell.BASH,
        "body": "echo ${target}\n",
        "parameters": (ParameterSpec("target", required=True),),
    }
    base.update(kw)
    return ScriptVersion(**base)  # type: ignore[arg-type]


# --- shells ---------------------------------------------------------------------


def test_shell_facts() -> None:
    assert Shell.BASH.interpreter == ("/bin/bash",)
    assert Shell.SH.interpreter == ("/bin/sh",)
    assert Shell.ZSH.interpreter == ("/bin/zsh",)
    assert Shell.KSH.interpreter == ("/bin/ksh",)
    assert Shell.PYTHON.interpreter == ("/usr/bin/env", "python3", "-u")
    assert Shell.POWERSHELL.interpreter == (
        "powershell",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-File",
    )
    assert Shell.CMD.interpreter == ("cmd", "/c")
    assert [s.extension for s in Shell] == ["sh", "sh", "zsh", "ksh", "py", "ps1", "cmd"]
    assert [s for s in Shell if s.is_windows] == [Shell.POWERSHELL, Shell.CMD]
    assert [s for s in Shell if s.is_posix] == [Shell.BASH, Shell.SH, Shell.ZSH, Shell.KSH]
    assert Shell.SH.command_argv == ("/bin/sh", "-c")
    assert Shell.POWERSHELL.command_argv[-1] == "-Command"


# --- validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "-rf"}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"shell": "fish"}, "shell"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"body": "a\x00"}, "body"),
        ({"version": 0}, "version"),
        ({"requires_approval": "yes"}, "requires_approval"),
        (
            {"parameters": (ParameterSpec("a"), ParameterSpec("a", ParameterType.INTEGER))},
            "parameters",
        ),
        ({"parameters": (ParameterSpec("a"), ParameterSpec("A"))}, "parameters"),
    ],
)
def test_invalid_versions_are_rejected(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        version(**changes)
    assert err.value.field == field


def test_shell_given_as_text_and_lists_are_normalised() -> None:
    v = version(shell="sh", parameters=[ParameterSpec("target")], timeout=60)
    assert v.shell is Shell.SH
    assert isinstance(v.parameters, tuple)
    assert v.timeout == 60.0


# --- content hash -------------------------------------------------------------------


def test_identical_content_has_identical_hash() -> None:
    a = version()
    b = version(name="other", description="words", version=7)
    assert a.content_hash == b.content_hash
    assert len(a.content_hash) == 64
    assert int(a.content_hash, 16) >= 0
    # Normalised inputs mean the same content.
    assert version(timeout=300).content_hash == version(timeout=300.0).content_hash


@pytest.mark.parametrize(
    "changes",
    [
        {"shell": Shell.SH},
        {"body": "echo ${target} \n"},
        {"parameters": ()},
        {"parameters": (ParameterSpec("target"),)},
        {"parameters": (ParameterSpec("target", required=True, description="d"),)},
        {"parameters": (ParameterSpec("target", required=True, default="x"),)},
        {"timeout": 301},
        {"requires_approval": True},
        {"idempotent": True},
        {"libraries": (Library("common", "set -eu"),)},
    ],
)
def test_any_content_change_changes_the_hash(changes: dict[str, object]) -> None:
    assert version(**changes).content_hash != version().content_hash


def test_hash_pins_library_content_not_library_name() -> None:
    one = version(libraries=(Library("common", "set -eu"),))
    renamed = version(libraries=(Library("strict", "set -eu"),))
    edited = version(libraries=(Library("common", "set -eux"),))
    assert one.content_hash == renamed.content_hash
    assert one.content_hash != edited.content_hash
    two = version(libraries=(Library("a", "x=1"), Library("b", "y=2")))
    swapped = version(libraries=(Library("b", "y=2"), Library("a", "x=1")))
    assert two.content_hash != swapped.content_hash


def test_hash_is_stable_across_processes() -> None:
    # The canonical form is fixed JSON, so this value must never drift.
    v = ScriptVersion("x", Shell.SH, "echo hi")
    assert v.canonical_content() == (
        b'{"body":"echo hi","idempotent":false,"libraries":[],"parameters":[],'
        b'"requires_approval":false,"shell":"sh","timeout":300.0}'
    )


def test_full_body_prepends_libraries_in_order() -> None:
    v = version(body="main", libraries=(Library("a", "one"), Library("b", "two\n")))
    assert v.full_body == "one\ntwo\n\nmain"
    assert version().full_body == version().body


def test_library_hash_and_validation() -> None:
    import hashlib

    assert Library("a", "x").hash == hashlib.sha256(b"x").hexdigest()
    with pytest.raises(ValidationError):
        Library("", "x")


# --- save / restore -------------------------------------------------------------------


def test_save_creates_versions_only_for_changed_content() -> None:
    script = Script("deploy")
    assert script.latest is None
    v1, created = script.save(version())
    assert created and v1.version == 1
    same, created = script.save(version(description="only the label changed"))
    assert not created and same is v1
    v2, created = script.save(version(body="echo changed ${target}"))
    assert created and v2.version == 2
    assert script.versions == (v1, v2)
    assert script.get(1) is v1 and script.get(1).body == "echo ${target}\n"
    assert script.latest is v2


def test_saving_old_content_again_makes_a_new_version() -> None:
    script = Script("deploy")
    script.save(version())
    script.save(version(body="two"))
    v3, created = script.save(version())
    assert created and v3.version == 3
    assert v3.content_hash == script.get(1).content_hash
    assert script.by_hash(v3.content_hash) is v3


def test_restore_makes_old_content_newest() -> None:
    script = Script("deploy")
    v1, _ = script.save(version())
    script.save(version(body="two"))
    restored, created = script.restore(1)
    assert created
    assert restored.version == 3
    assert restored.content_hash == v1.content_hash
    assert script.get(1) is v1
    again, created = script.restore(3)
    assert not created and again is restored


def test_missing_versions_raise_not_found() -> None:
    script = Script("deploy")
    script.save(version())
    with pytest.raises(NotFoundError):
        script.get(2)
    with pytest.raises(NotFoundError):
        script.restore(0)
    with pytest.raises(NotFoundError):
        script.by_hash("0" * 64)


def test_script_refuses_foreign_or_misnumbered_versions() -> None:
    with pytest.raises(ValidationError):
        Script("deploy").save(version(name="other"))
    v1 = dataclasses.replace(version(), version=1)
    assert Script("deploy", [v1]).latest is v1
    with pytest.raises(ValidationError):
        Script("deploy", [dataclasses.replace(version(), version=2)])
    with pytest.raises(ValidationError):
        Script("deploy", [dataclasses.replace(version(name="other"), version=1)])

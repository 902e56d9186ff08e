"""Script and command plans: seed 000's deploy-plan shape, exactly."""

from __future__ import annotations

import json

import pytest

from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.planbuilder import build_command_plan, build_script_plan, script_path
from muster.domain.plans import Plan
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.secret import Secret
from muster.errors import ParameterError, ValidationError

T = ParameterType
PARAMS = (
    ParameterSpec("target", required=True),
    ParameterSpec("retries", T.INTEGER, default=2),
    ParameterSpec("token", T.SECRET),
)


def version(shell: Shell = Shell.BASH, body: str = "deploy ${target} ${token}\n") -> ScriptVersion:
    return ScriptVersion("deploy", shell, body, parameters=PARAMS, timeout=120, version=4)


def test_script_plan_has_the_exact_seed_shape() -> None:
    plan = build_script_plan(version(), {"target": "/var/www", "token": "t0k"}, run_id="r1")
    assert plan.to_dict() == {
        "files": [
            {
                "path": "/tmp/muster_r1.sh",
                "content": "deploy '/var/www' \"${MUSTER_PARAM_TOKEN}\"\n",
                "mode": 0o700,
            }
        ],
        "commands": [
            {
                "argv": ["/bin/bash", "/tmp/muster_r1.sh"],
                "timeout": 120.0,
                "ignore_errors": False,
                "description": "run deploy v4",
            },
            {
                "argv": ["rm", "-f", "--", "/tmp/muster_r1.sh"],
                "timeout": 10.0,
                "ignore_errors": True,
                "description": "clean up",
            },
        ],
    }
    assert dict(plan.env) == {
        "MUSTER_PARAM_TARGET": "/var/www",
        "MUSTER_PARAM_RETRIES": "2",
        "MUSTER_PARAM_TOKEN": Secret("t0k"),
        "MUSTER_RUN_ID": "r1",
    }
    assert plan.secrets == ("t0k",)


def test_secret_never_appears_in_the_plan_data() -> None:
    plan = build_script_plan(version(), {"target": "x", "token": "sup3r-s3cret"}, run_id="r1")
    dumped = json.dumps(plan.to_dict())
    assert "sup3r-s3cret" not in dumped
    assert "sup3r-s3cret" not in repr(plan)


@pytest.mark.parametrize(
    ("shell", "argv_head", "path"),
    [
        (Shell.SH, ["/bin/sh"], "/tmp/muster_r.sh"),
        (Shell.ZSH, ["/bin/zsh"], "/tmp/muster_r.zsh"),
        (Shell.KSH, ["/bin/ksh"], "/tmp/muster_r.ksh"),
        (Shell.PYTHON, ["/usr/bin/env", "python3", "-u"], "/tmp/muster_r.py"),
    ],
)
def test_posix_interpreters(shell: Shell, argv_head: list[str], path: str) -> None:
    plan = build_script_plan(version(shell, "x"), {"target": "t"}, run_id="r")
    assert plan.files[0].path == path
    assert list(plan.commands[0].argv) == [*argv_head, path]
    assert list(plan.commands[1].argv) == ["rm", "-f", "--", path]


def test_windows_plans() -> None:
    ps = build_script_plan(
        version(Shell.POWERSHELL, "Write-Output ${target}"),
        {"target": "it's"},
        run_id="r2",
        platform="windows",
    )
    path = "C:\\Windows\\Temp\\muster_r2.ps1"
    assert ps.files[0].path == path
    assert ps.files[0].content == "\ufeffWrite-Output 'it''s'"
    assert ps.commands[0].argv == (*Shell.POWERSHELL.interpreter, path)
    assert ps.commands[1].argv == ("cmd", "/c", "del", "/q", path)

    cmd = build_script_plan(
        version(Shell.CMD, "echo ${target}\necho ${token}\n"),
        {"target": "a&b", "token": "t"},
        run_id="r3",
        platform="windows",
        tmp_dir="D:\\work\\tmp\\",
    )
    assert cmd.files[0].path == "D:\\work\\tmp\\muster_r3.cmd"
    assert cmd.files[0].content == 'echo "a&b"\r\necho "%MUSTER_PARAM_TOKEN%"\r\n'
    assert cmd.commands[0].argv == ("cmd", "/c", "D:\\work\\tmp\\muster_r3.cmd")


def test_shell_must_match_platform() -> None:
    with pytest.raises(ValidationError, match="cannot run on platform windows"):
        build_script_plan(version(), {"target": "x"}, run_id="r", platform="windows")
    with pytest.raises(ValidationError, match="cannot run on platform linux"):
        build_script_plan(version(Shell.CMD, "x"), {"target": "x"}, run_id="r")


@pytest.mark.parametrize("run_id", ["", "../x", "a/b", "-rf", "a b", "a.b", "é", "x" * 129, "a\n"])
def test_run_id_must_be_a_safe_token(run_id: str) -> None:
    with pytest.raises(ValidationError) as err:
        build_script_plan(version(), {"target": "x"}, run_id=run_id)
    assert err.value.field == "run_id"


def test_values_are_checked_again_when_planning() -> None:
    with pytest.raises(ParameterError) as err:
        build_script_plan(version(), {"retries": "many", "bogus": 1}, run_id="r")
    assert set(err.value.problems) == {"target", "retries", "bogus"}


def test_tmp_dir() -> None:
    assert script_path(Shell.SH, "r", windows=False, tmp_dir="/var/tmp/") == "/var/tmp/muster_r.sh"
    for bad in ("relative", "/a\nb"):
        with pytest.raises(ValidationError):
            script_path(Shell.SH, "r", windows=False, tmp_dir=bad)
    for bad in ("C:\\Program Files", "C:\\a&b", "\\\\server\\share", "tmp"):
        with pytest.raises(ValidationError):
            script_path(Shell.CMD, "r", windows=True, tmp_dir=bad)


def test_version_without_number_is_described_by_name() -> None:
    v = ScriptVersion("adhoc", Shell.SH, "true")
    plan = build_script_plan(v, {}, run_id="r")
    assert plan.commands[0].description == "run adhoc"
    assert dict(plan.env) == {"MUSTER_RUN_ID": "r"}


def test_command_plan() -> None:
    plan = build_command_plan("systemctl restart nginx", timeout=30)
    assert plan.to_dict() == {
        "files": [],
        "commands": [
            {
                "argv": ["/bin/sh", "-c", "systemctl restart nginx"],
                "timeout": 30.0,
                "ignore_errors": False,
                "description": "command",
            }
        ],
    }
    assert dict(plan.env) == {}
    bash = build_command_plan("echo $X", timeout=5, shell=Shell.BASH, env={"X": "1"}, run_id="r")
    assert bash.commands[0].argv == ("/bin/bash", "-c", "echo $X")
    assert dict(bash.env) == {"X": "1", "MUSTER_RUN_ID": "r"}
    assert isinstance(bash, Plan)


@pytest.mark.parametrize(
    ("command", "timeout"), [("", 5), ("   ", 5), ("a\x00", 5), ("ok", 0), ("ok", float("inf"))]
)
def test_command_plan_rejects_bad_input(command: str, timeout: float) -> None:
    with pytest.raises(ValidationError):
        build_command_plan(command, timeout=timeout)

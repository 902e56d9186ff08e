"""Real shells print exactly the value, wherever the placeholder stands.

Each example builds a plan with build_script_plan and runs it here, as the
local transport would: write the file, run the argv with the plan's
environment (secrets revealed), then run the cleanup command. NUL is the one
character excluded: no shell and no environment can carry it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.planbuilder import build_script_plan
from muster.domain.plans import Plan
from muster.domain.render import render_body
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.secret import Secret

POSIX_SHELLS = {
    Shell.BASH: "/bin/bash",
    Shell.SH: "/bin/sh",
    Shell.ZSH: "/usr/bin/zsh",
    Shell.KSH: "/usr/bin/ksh",
}

TOKENS = [
    "'",
    '"',
    "`",
    "\\",
    "$",
    "$(id)",
    "${v}",
    "${s}",
    "${HOME}",
    "$HOME",
    ";",
    "|",
    "&",
    "\n",
    "\r",
    "\t",
    " ",
    "*",
    "?",
    "[a]",
    "~",
    "#",
    "!",
    "%",
    "{",
    "}",
    "(",
    ")",
    "<",
    ">",
    "EOF",
    "\nEOF\n",
    "-n",
    "é",
    "✓",
    "日本",
    "\u2019",
    "\U0001f600",
]
CHARS = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
VALUES = st.lists(st.one_of(st.sampled_from(TOKENS), CHARS), max_size=12).map("".join) | st.text(
    alphabet=CHARS, max_size=20
)

SPECS = (ParameterSpec("v"), ParameterSpec("s", ParameterType.SECRET))
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# One line per context; each prints the value followed by NUL.
POSIX_BODY = """\
printf '%s\\0' ${v}
printf '%s\\0' "${v}"
printf '%s\\0' "<${v}>"
printf '%s\\0' '<${v}>'
printf '%s\\0' x${v}y
r="$(printf '%s' ${v}; printf x)"; printf '%s\\0' "${r%x}"
cat <<EOF
${v}
EOF
printf '\\0'
# a comment naming ${v} changes nothing
printf '%s\\0' ${s}
printf '%s\\0' "<${s}>"
printf '%s\\0' '<${s}>'
printf '%s\\0' "${muster_unset_:-${v}}"
r=`printf '%s' ${v}; printf x`; printf '%s\\0' "${r%x}"
printf '%s\\0' "<${v}>" '<${v}>' ${v}
"""


def expected_posix(v: str, s: str) -> list[str]:
    return [
        *(v, v, f"<{v}>", f"<{v}>", f"x{v}y", v, v + "\n"),
        *(s, f"<{s}>", f"<{s}>"),
        # ${u:-...}, then backquotes, after which only references are used
        *(v, v, f"<{v}>", f"<{v}>", v),
    ]


def run_plan(plan: Plan) -> bytes:
    env: dict[str, str] = dict(os.environ)
    env.update({k: (v.reveal() if isinstance(v, Secret) else v) for k, v in plan.env.items()})
    for f in plan.files:
        Path(f.path).write_text(f.content, encoding="utf-8")
        os.chmod(f.path, f.mode)
    main, cleanup = plan.commands
    done = subprocess.run(
        list(main.argv), env=env, capture_output=True, timeout=main.timeout, check=False
    )
    subprocess.run(list(cleanup.argv), env=env, timeout=cleanup.timeout, check=True)
    assert not Path(plan.files[0].path).exists()
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def body_is_independent_of_secret(version: ScriptVersion, values: Mapping[str, object]) -> None:
    one = render_body(version, {**values, "s": Secret("first-secret")})  # type: ignore[dict-item]
    two = render_body(version, {**values, "s": Secret("second-secret")})  # type: ignore[dict-item]
    assert one == two
    assert "first-secret" not in one


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("plans"))


@pytest.mark.parametrize("shell", list(POSIX_SHELLS))
@SETTINGS
@given(v=VALUES, s=VALUES)
def test_posix_shell_prints_exactly_the_value(shell: Shell, workdir: str, v: str, s: str) -> None:
    if not shutil.which(POSIX_SHELLS[shell]):
        pytest.skip(f"{POSIX_SHELLS[shell]} is not installed")
    version = ScriptVersion("echo", shell, POSIX_BODY, parameters=SPECS, timeout=20)
    plan = build_script_plan(version, {"v": v, "s": s}, run_id=uuid.uuid4().hex, tmp_dir=workdir)
    body_is_independent_of_secret(version, {"v": v})
    out = run_plan(plan).decode("utf-8").split("\0")
    assert out[:-1] == expected_posix(v, s)
    assert out[-1] == ""


PYTHON_BODY = """\
import sys
out = sys.stdout.buffer
out.write((${v} + "\\0").encode())
out.write((${s} + "\\0").encode())
out.write(("<" + ${v} + ">\\0").encode())  # ${v} in a comment is left alone
"""


@SETTINGS
@given(v=VALUES, s=VALUES)
def test_python_prints_exactly_the_value(workdir: str, v: str, s: str) -> None:
    version = ScriptVersion("echo", Shell.PYTHON, PYTHON_BODY, parameters=SPECS, timeout=20)
    plan = build_script_plan(version, {"v": v, "s": s}, run_id=uuid.uuid4().hex, tmp_dir=workdir)
    body_is_independent_of_secret(version, {"v": v})
    out = run_plan(plan).decode("utf-8").split("\0")
    assert out == [v, s, f"<{v}>", ""]


@pytest.mark.parametrize("shell", list(POSIX_SHELLS))
def test_brief_example_printf(shell: Shell, workdir: str) -> None:
    value = 'it\'s "$(rm -rf /)" `id` ; | & \\ \n ü ${HOME}'
    version = ScriptVersion("p", shell, "printf '%s' ${v}", parameters=SPECS)
    plan = build_script_plan(version, {"v": value}, run_id=uuid.uuid4().hex, tmp_dir=workdir)
    assert run_plan(plan).decode() == value

"""The SSH driver run by real POSIX shells: values and files arrive exactly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muster.domain.plans import Plan, PlanCommand, PlanFile
from muster.domain.secret import Secret
from muster.transports.ssh_driver import build_driver

# Text a shell variable and a UTF-8 file can hold: anything but NUL and surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


def run_driver(shell: str, plan: Plan) -> subprocess.CompletedProcess[bytes]:
    """Feed the driver as the transport does: stdin stays open until it exits."""
    proc = subprocess.Popen(
        [shell, "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(build_driver(plan).encode())
    proc.stdin.flush()
    code = proc.wait(timeout=30)
    proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()
    return subprocess.CompletedProcess(proc.args, code, out, err)


def test_stdin_eof_stops_the_driver_and_its_command() -> None:
    plan = Plan(commands=(PlanCommand(("sleep", "30"), 60),))
    proc = subprocess.Popen(["dash", "-s"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(build_driver(plan).encode())
    proc.stdin.close()  # what the controller does on cancel or timeout
    assert proc.wait(timeout=10) == 143


@pytest.mark.parametrize("shell", ["dash", "bash"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=TEXT, content=TEXT)
def test_env_values_and_file_contents_round_trip(
    shell: str, value: str, content: str, tmp_path: Path
) -> None:
    target = tmp_path / "f.bin"
    plan = Plan(
        files=(PlanFile(str(target), content, 0o600),),
        commands=(PlanCommand(("sh", "-c", 'printf %s "$V"'), 10),),
        env={"V": Secret(value)},
    )
    done = run_driver(shell, plan)
    assert done.returncode == 0, done.stderr
    assert done.stdout == value.encode()
    assert target.read_bytes() == content.encode()


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_execution_rule_and_exit_code(shell: str) -> None:
    plan = Plan(
        commands=(
            PlanCommand(("sh", "-c", "echo a"), 10),
            PlanCommand(("sh", "-c", "exit 5"), 10),
            PlanCommand(("sh", "-c", "echo skipped"), 10),
            PlanCommand(("sh", "-c", "echo cleanup; exit 1"), 10, ignore_errors=True),
        )
    )
    done = run_driver(shell, plan)
    assert done.stdout == b"a\ncleanup\n"
    assert done.returncode == 5


def test_missing_program_is_127_and_stops_the_plan() -> None:
    plan = Plan(
        commands=(PlanCommand(("no-such-program-x",), 10), PlanCommand(("echo", "never"), 10))
    )
    done = run_driver("dash", plan)
    assert done.returncode == 127
    assert done.stdout == b""


def test_unwritable_file_fails_with_a_message() -> None:
    plan = Plan(files=(PlanFile("/nonexistent-dir/x", "x"),), commands=(PlanCommand(("true",)),))
    done = run_driver("dash", plan)
    assert done.returncode == 126
    assert b"cannot write plan file /nonexistent-dir/x" in done.stderr

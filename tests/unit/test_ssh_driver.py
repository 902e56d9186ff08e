"""The SSH driver builder: what goes on the command line and what on stdin."""

from __future__ import annotations

import pytest

from muster.domain.plans import Plan, PlanCommand, PlanFile
from muster.domain.secret import Secret
from muster.transports.ssh_driver import (
    DRIVER_COMMAND,
    KILL_AFTER,
    build_driver,
    driver_deadline,
    fast_path_command,
)

SECRET = "s3cr3t value"


def script_plan() -> Plan:
    return Plan(
        files=(PlanFile("/tmp/muster_x.sh", "echo $TOKEN\n", 0o700),),
        commands=(
            PlanCommand(("/bin/sh", "/tmp/muster_x.sh"), 30),
            PlanCommand(("rm", "-f", "--", "/tmp/muster_x.sh"), 10, ignore_errors=True),
        ),
        env={"TOKEN": Secret(SECRET), "PLAIN": "x"},
    )


def test_the_driver_command_line_is_fixed_and_carries_no_plan_data() -> None:
    assert DRIVER_COMMAND == "sh -s"
    assert fast_path_command(script_plan()) is None


def test_secret_travels_only_in_the_driver_text() -> None:
    driver = build_driver(script_plan())
    assert f"export TOKEN='{SECRET}'" in driver
    assert "umask 077" in driver.splitlines()[:3]


def test_fast_path_is_the_quoted_argv_of_a_lone_command() -> None:
    plan = Plan.command("echo 'hi there'")
    assert fast_path_command(plan) == "/bin/sh -c 'echo '\"'\"'hi there'\"'\"''"


@pytest.mark.parametrize(
    "plan",
    [
        Plan(commands=(PlanCommand(("true",)),), env={"A": "1"}),
        Plan(files=(PlanFile("/tmp/f", "x"),), commands=(PlanCommand(("true",)),)),
        Plan(commands=(PlanCommand(("true",)), PlanCommand(("true",)))),
    ],
    ids=["env", "files", "two-commands"],
)
def test_anything_more_than_one_bare_command_uses_the_driver(plan: Plan) -> None:
    assert fast_path_command(plan) is None


def test_ignore_errors_commands_run_unconditionally_others_only_before_a_failure() -> None:
    lines = build_driver(script_plan()).splitlines()
    run = [ln for ln in lines if "_muster_run " in ln and not ln.startswith(" ")]
    assert run[0].startswith('if [ "$_muster_rc" -eq 0 ]; then _muster_run 30 /bin/sh')
    assert run[1] == "_muster_run 10 rm -f -- /tmp/muster_x.sh"


def test_file_bodies_are_base64_so_any_content_is_exact() -> None:
    driver = build_driver(
        Plan(files=(PlanFile("/tmp/a b", "_MUSTER_EOF_\n$(x)`y`", 0o640),), commands=())
    )
    assert "base64 -d >'/tmp/a b' <<'_MUSTER_EOF_'" in driver
    assert "$(x)" not in driver
    assert "chmod 640 '/tmp/a b'" in driver


def test_the_program_is_one_brace_group_read_before_it_runs() -> None:
    driver = build_driver(script_plan())
    assert driver.startswith("{\n")
    assert driver.endswith('_muster_end "$_muster_rc"\n}\n')


@pytest.mark.parametrize("name", ["1X", "A-B", "A B", "", "A;B"])
def test_invalid_env_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid environment variable name"):
        build_driver(Plan(commands=(PlanCommand(("true",)),), env={name: "v"}))


def test_nul_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        build_driver(Plan(commands=(PlanCommand(("echo", "a\x00b")),), env={"A": "1"}))


def test_timeouts_are_plain_decimal_seconds() -> None:
    driver = build_driver(
        Plan(commands=(PlanCommand(("true",), 0.25), PlanCommand(("true",), 2e6)))
    )
    assert "_muster_run 0.25 true" in driver
    assert "_muster_run 2000000 true" in driver
    with pytest.raises(ValueError, match="positive"):
        build_driver(Plan(commands=(PlanCommand(("true",), 0),)))


def test_controller_deadline_covers_every_command_and_its_kill_grace() -> None:
    assert driver_deadline(script_plan(), grace=1) == 30 + 10 + 2 * KILL_AFTER + 1


def test_a_command_without_argv_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty argv"):
        build_driver(Plan(commands=(PlanCommand(("true",)), PlanCommand(()))))

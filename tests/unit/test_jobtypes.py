"""Built-in job types: fixed priorities, argv-safe Linux plans, Windows text as data."""

from __future__ import annotations

import pytest

from muster.domain.jobtypes import JOB_PRIORITIES, PASSWORD_ENV, JobType, render_job
from muster.domain.secret import Secret
from muster.domain.states import Priority
from muster.errors import ValidationError


def argv(job_type: str, **fields: object) -> tuple[str, ...]:
    return render_job(job_type, fields).linux.commands[0].argv


def test_control_types_are_always_critical() -> None:
    for t in ("service_control", "process_control", "user_control", "group_control"):
        assert JOB_PRIORITIES[JobType(t)] is Priority.CRITICAL
    assert JOB_PRIORITIES[JobType.NETWORK_DIAGNOSTIC] is Priority.HIGH
    assert JOB_PRIORITIES[JobType.SOFTWARE_INSTALL] is Priority.NORMAL
    job = render_job("service_control", {"action": "restart", "service": "nginx"})
    assert job.priority is Priority.CRITICAL


def test_service_control_puts_the_name_after_double_dash() -> None:
    job = render_job("service_control", {"action": "restart", "service": "nginx.service"})
    assert job.linux.commands[0].argv == ("systemctl", "restart", "--", "nginx.service")
    assert job.windows == "Restart-Service -Name 'nginx.service'"
    assert job.spec == {
        "type": "service_control",
        "action": "restart",
        "service": "nginx.service",
        "timeout": 300.0,
    }


@pytest.mark.parametrize(
    ("job_type", "fields", "field"),
    [
        ("service_control", {"action": "restart", "service": "--force"}, "service"),
        ("service_control", {"action": "restart", "service": "a;reboot"}, "service"),
        ("service_control", {"action": "explode", "service": "nginx"}, "action"),
        ("service_control", {"action": "stop", "service": "x", "extra": 1}, "extra"),
        ("process_control", {"action": "kill", "pid": 1}, "pid"),
        ("process_control", {"action": "kill"}, "pid"),
        ("process_control", {"action": "kill", "process": "-9"}, "process"),
        ("network_diagnostic", {"tool": "ping", "target": "-f"}, "target"),
        ("network_diagnostic", {"tool": "port_check", "target": "db1"}, "port"),
        ("software_install", {"packages": ["--allow-unauthenticated"]}, "packages"),
        ("software_install", {"packages": []}, "packages"),
        ("user_control", {"action": "create", "username": "Root$(id)"}, "username"),
        ("user_control", {"action": "reset_password", "username": "bob"}, "password"),
        (
            "user_control",
            {"action": "reset_password", "username": "bob", "password": "a\nb"},
            "password",
        ),
        ("group_control", {"action": "add_member", "group": "wheel"}, "member"),
        ("group_control", {"action": "create", "group": "-g0"}, "group"),
        ("service_control", {"action": "stop", "service": "x", "timeout": -1}, "timeout"),
        ("script", {}, "type"),
        ("teleport", {}, "type"),
    ],
)
def test_bad_input_names_its_field(job_type: str, fields: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        render_job(job_type, fields)
    assert info.value.field == field


def test_process_network_and_install_argv() -> None:
    assert argv("process_control", action="force_kill", pid=4242) == ("kill", "-KILL", "--", "4242")
    assert argv("process_control", action="kill", process="nginx") == (
        "pkill",
        "-TERM",
        "-x",
        "--",
        "nginx",
    )
    assert argv("network_diagnostic", tool="ping", target="10.0.0.1", count=2) == (
        "ping",
        "-c",
        "2",
        "--",
        "10.0.0.1",
    )
    port = argv("network_diagnostic", tool="port_check", target="db1", port=5432)
    assert port[-2:] == ("db1", "5432")  # positional parameters, never shell text
    install = argv("software_install", packages=["nginx", "curl=7.88.1-10"])
    assert install[:2] == ("sh", "-c")
    assert install[-2:] == ("nginx", "curl=7.88.1-10")
    assert '"$@"' in install[2]


def test_password_travels_only_in_the_environment() -> None:
    job = render_job(
        "user_control", {"action": "reset_password", "username": "bob", "password": "s3cr;et"}
    )
    command = job.linux.commands[0]
    assert "s3cr;et" not in " ".join(command.argv)
    assert job.linux.env[PASSWORD_ENV] == Secret("s3cr;et")
    assert "password" not in job.spec
    assert "s3cr;et" not in job.windows


def test_group_and_user_windows_rendering_quotes_words() -> None:
    job = render_job("group_control", {"action": "add_member", "group": "ops", "member": "bob"})
    assert job.linux.commands[0].argv == ("gpasswd", "--add", "bob", "--", "ops")
    assert job.windows == "Add-LocalGroupMember -Group 'ops' -Member 'bob'"
    assert render_job("user_control", {"action": "disable", "username": "eve"}).windows == (
        "Disable-LocalUser -Name 'eve'"
    )

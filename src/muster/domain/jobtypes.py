"""Built-in job types (seed 001): typed input to a Linux argv and a Windows rendering.

Each type has a fixed priority (service, process, user and group control are
always critical). Every user-given word is checked against a strict pattern
(never starting with ``-``) and, where the tool understands it, placed after
``--``, so no input can become an option of a command we start. The Linux
side is a :class:`Plan` of argv commands (no shell parses user words; where a
shell is needed the words are passed as positional arguments ``"$1"``); the
Windows side is PowerShell text built with single-quote quoting, kept as data
because it cannot run on these machines.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from muster.domain.durations import MAX_TIMEOUT, check_timeout
from muster.domain.plans import Plan, PlanCommand
from muster.domain.quoting import quote
from muster.domain.scripts import Shell
from muster.domain.secret import Secret
from muster.domain.states import Priority
from muster.errors import ValidationError

__all__ = [
    "JOB_PRIORITIES",
    "PASSWORD_ENV",
    "JobType",
    "RenderedJob",
    "render_job",
]


class JobType(enum.StrEnum):
    SCRIPT = "script"
    COMMAND = "command"
    SERVICE_CONTROL = "service_control"
    PROCESS_CONTROL = "process_control"
    NETWORK_DIAGNOSTIC = "network_diagnostic"
    SOFTWARE_INSTALL = "software_install"
    USER_CONTROL = "user_control"
    GROUP_CONTROL = "group_control"


JOB_PRIORITIES: Final[Mapping[JobType, Priority]] = {
    JobType.SCRIPT: Priority.NORMAL,
    JobType.COMMAND: Priority.NORMAL,
    JobType.SERVICE_CONTROL: Priority.CRITICAL,
    JobType.PROCESS_CONTROL: Priority.CRITICAL,
    JobType.NETWORK_DIAGNOSTIC: Priority.HIGH,
    JobType.SOFTWARE_INSTALL: Priority.NORMAL,
    JobType.USER_CONTROL: Priority.CRITICAL,
    JobType.GROUP_CONTROL: Priority.CRITICAL,
}

#: Environment variable that carries a new password to ``chpasswd`` (never argv).
PASSWORD_ENV: Final = "MUSTER_NEW_PASSWORD"

_SERVICE_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:-]{0,254}")
_PROCESS_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+:-]{0,14}")
_TARGET_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}")
_PACKAGE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._:~-]{0,127}(=[A-Za-z0-9+._:~-]{1,64})?")
_ACCOUNT_RE: Final = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_DEFAULT_TIMEOUT: Final = 300.0

# Shell fragments used where a tool must be chosen on the host; user words
# reach them only as positional parameters, never as shell text.
_INSTALL_SH: Final = (
    "if command -v apt-get >/dev/null 2>&1; then "
    'DEBIAN_FRONTEND=noninteractive exec apt-get install -y -- "$@"; '
    'elif command -v dnf >/dev/null 2>&1; then exec dnf install -y -- "$@"; '
    'elif command -v yum >/dev/null 2>&1; then exec yum install -y -- "$@"; '
    'elif command -v zypper >/dev/null 2>&1; then exec zypper --non-interactive install -- "$@"; '
    'elif command -v apk >/dev/null 2>&1; then exec apk add -- "$@"; '
    'else echo "no supported package manager found" >&2; exit 127; fi'
)
_PORT_CHECK_SH: Final = (
    'if exec 3<>"/dev/tcp/$1/$2"; then echo "open $1:$2"; else echo "closed $1:$2" >&2; exit 1; fi'
)
_NETSTAT_SH: Final = (
    "if command -v ss >/dev/null 2>&1; then exec ss -tulpn; else exec netstat -tulpn; fi"
)
_CHPASSWD_SH: Final = f'printf "%s:%s\\n" "$1" "${PASSWORD_ENV}" | chpasswd'


@dataclass(frozen=True, slots=True)
class RenderedJob:
    """A built-in job ready to queue: the Linux plan and the Windows text (data only)."""

    type: JobType
    priority: Priority
    description: str
    linux: Plan
    #: PowerShell command text for Windows hosts; not executed on these machines.
    windows: str
    timeout: float = _DEFAULT_TIMEOUT
    #: The input as accepted, with secrets removed (safe to store and show).
    spec: Mapping[str, Any] = field(default_factory=dict)


class _Input:
    """Typed access to the request fields; every problem names its field."""

    def __init__(self, fields: Mapping[str, object], allowed: set[str]) -> None:
        unknown = sorted(set(fields) - allowed - {"timeout"})
        if unknown:
            raise ValidationError(
                f"unknown field '{unknown[0]}' for this job type", field=unknown[0]
            )
        self.fields = fields
        self.spec: dict[str, Any] = {}

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self.fields.get(name)
        if not isinstance(value, str) or value not in options:
            raise ValidationError(
                f"{name} must be one of {', '.join(options)}; got {value!r}", field=name
            )
        self.spec[name] = value
        return value

    def word(self, name: str, pattern: re.Pattern[str], what: str, *, required: bool = True) -> str:
        value = self.fields.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValidationError(f"{name} must be {what}; got {value!r}", field=name)
        self.spec[name] = value
        return value

    def integer(self, name: str, low: int, high: int, default: int | None = None) -> int:
        value = self.fields.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(
                f"{name} must be an integer from {low} to {high}; got {value!r}", field=name
            )
        self.spec[name] = value
        return value

    def timeout(self) -> float:
        value = check_timeout(self.fields.get("timeout", _DEFAULT_TIMEOUT), maximum=MAX_TIMEOUT)
        self.spec["timeout"] = value
        return value


def _ps(value: str) -> str:
    return quote(value, Shell.POWERSHELL)


def _plan(
    argv: tuple[str, ...], timeout: float, desc: str, env: Mapping[str, str | Secret] | None = None
) -> Plan:
    return Plan(commands=(PlanCommand(argv, timeout, False, desc),), env=dict(env or {}))


_Renderer = Callable[[_Input, float], tuple[str, Plan, str]]

_SERVICE_PS: Final = {
    "start": "Start-Service -Name {n}",
    "stop": "Stop-Service -Name {n}",
    "restart": "Restart-Service -Name {n}",
    "enable": "Set-Service -Name {n} -StartupType Automatic",
    "disable": "Set-Service -Name {n} -StartupType Disabled",
    "status": "Get-Service -Name {n}",
}


def _service(inp: _Input, timeout: float) -> tuple[str, Plan, str]:
    action = inp.choice("action", tuple(_SERVICE_PS))
    name = inp.word("service", _SERVICE_RE, "a service name (letters, digits, _ . @ : -)")
    desc = f"service {action} {name}"
    argv = ("systemctl", action, "--", name)
    return desc, _plan(argv, timeout, desc), _SERVICE_PS[action].format(n=_ps(name))


def _process(inp: _Input, timeout: float) -> tuple[str, Plan, str]:
    action = inp.choice("action", ("kill", "force_kill"))
    pid_given = inp.fields.get("pid") is not None
    name_given = inp.fields.get("process") is not None
    if pid_given == name_given:
        raise ValidationError("give exactly one of pid or process", field="pid")
    signal = "-KILL" if action == "force_kill" else "-TERM"
    force = " -Force" if action == "force_kill" else ""
    if pid_given:
        pid = inp.integer("pid", 2, 4_194_304)
        desc = f"{action} pid {pid}"
        return (
            desc,
            _plan(("kill", signal, "--", str(pid)), timeout, desc),
            (f"Stop-Process -Id {pid}{force}"),
        )
    name = inp.word("process", _PROCESS_RE, "a process name (up to 15 of letters, digits, _.+:-)")
    desc = f"{action} process {name}"
    argv = ("pkill", signal, "-x", "--", name)
    return desc, _plan(argv, timeout, desc), f"Stop-Process -Name {_ps(name)}{force}"


def _network(inp: _Input, timeout: float) -> tuple[str, Plan, str]:
    tool = inp.choice("tool", ("ping", "traceroute", "nslookup", "dig", "netstat", "port_check"))
    if tool == "netstat":
        return "netstat", _plan(("sh", "-c", _NETSTAT_SH), timeout, "netstat"), "netstat -ano"
    target = inp.word("target", _TARGET_RE, "a host name or IP address")
    desc = f"{tool} {target}"
    t = _ps(target)
    if tool == "ping":
        count = inp.integer("count", 1, 100, default=4)
        argv: tuple[str, ...] = ("ping", "-c", str(count), "--", target)
        return desc, _plan(argv, timeout, desc), f"Test-Connection -ComputerName {t} -Count {count}"
    if tool == "traceroute":
        argv = ("traceroute", "--", target)
        return desc, _plan(argv, timeout, desc), f"Test-NetConnection -ComputerName {t} -TraceRoute"
    if tool in ("nslookup", "dig"):
        # Neither tool reads "--"; the target pattern already forbids a leading "-".
        argv = (tool, target)
        return desc, _plan(argv, timeout, desc), f"Resolve-DnsName -Name {t}"
    port = inp.integer("port", 1, 65535)
    desc = f"port_check {target}:{port}"
    argv = ("timeout", "10", "bash", "-c", _PORT_CHECK_SH, "muster-port-check", target, str(port))
    return desc, _plan(argv, timeout, desc), f"Test-NetConnection -ComputerName {t} -Port {port}"


def _software(inp: _Input, timeout: float) -> tuple[str, Plan, str]:
    raw = inp.fields.get("packages")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not raw or len(raw) > 100:
        raise ValidationError("packages must be a list of 1 to 100 package names", field="packages")
    packages: list[str] = []
    for item in raw:
        if not isinstance(item, str) or not _PACKAGE_RE.fullmatch(item):
            raise ValidationError(
                f"packages: {item!r} is not a package name (letters, digits, +._:~-, "
                "optionally =version)",
                field="packages",
            )
        packages.append(item)
    inp.spec["packages"] = packages
    desc = f"install {' '.join(packages)}"
    argv = ("sh", "-c", _INSTALL_SH, "muster-install", *packages)
    windows = "; ".join(
        f"winget install --id {_ps(p.split('=', 1)[0])} --exact --silent"
        + (f" --version {_ps(p.split('=', 1)[1])}" if "=" in p else "")
        for p in packages
    )
    return desc, _plan(argv, timeout, desc), windows


_ACCOUNT_WHAT: Final = "an account name (lowercase letters, digits, _ -, at most 32)"


def _user(inp: _Input, timeout: float) -> tuple[str, Plan, str]:
    action = inp.choice("action", ("create", "delete", "enable", "disable", "reset_password"))
    user = inp.word("username", _ACCOUNT_RE, _ACCOUNT_WHAT)
    u = _ps(user)
    desc = f"user {action} {user}"
    if action == "reset_password":
        password = inp.fields.get("password")
        if isinstance(password, Secret):
            password = password.reveal()
        if not isinstance(password, str) or not password or any(c in password for c in "\0\n:"):
            raise ValidationError(
                "password must be non-empty text without NUL, newline or ':'", field="password"
            )
        argv: tuple[str, ...] = ("sh", "-c", _CHPASSWD_SH, "muster-chpasswd", user)
        env = {PASSWORD_ENV: Secret(password)}
        windows = (
            f"Set-LocalUser -Name {u} -Password "
            f"(ConvertTo-SecureString $env:{PASSWORD_ENV} -AsPlainText -Force)"
        )
        return desc, _plan(argv, timeout, desc, env), windows
    if inp.fields.get("password") is not None:
        raise ValidationError("password applies only to reset_password", field="password")
    linux: dict[str, tuple[str, ...]] = {
        "create": ("useradd", "--create-home", "--", user),
        "delete": ("userdel", "--", user),
        "enable": ("usermod", "--unlock", "--expiredate", "", "--", user),
        "disable": ("usermod", "--lock", "--expiredate", "1", "--", user),
    }
    windows_ps = {
        "create": f"New-LocalUser -Name {u} -NoPassword",
        "delete": f"Remove-LocalUser -Name {u}",
        "enable": f"Enable-LocalUser -Name {u}",
        "disable": f"Disable-LocalUser -Name {u}",
    }
    return desc, _plan(linux[action], timeout, desc), windows_ps[action]


def _group(inp: _Input, timeout: float) -> tuple[str, Plan, str]:
    action = inp.choice("action", ("create", "delete", "add_member", "remove_member"))
    group = inp.word("group", _ACCOUNT_RE, _ACCOUNT_WHAT)
    g = _ps(group)
    if action in ("create", "delete"):
        if inp.fields.get("member") is not None:
            raise ValidationError("member applies only to add_member/remove_member", field="member")
        desc = f"group {action} {group}"
        argv: tuple[str, ...] = ("groupadd" if action == "create" else "groupdel", "--", group)
        ps = "New-LocalGroup" if action == "create" else "Remove-LocalGroup"
        return desc, _plan(argv, timeout, desc), f"{ps} -Name {g}"
    member = inp.word("member", _ACCOUNT_RE, _ACCOUNT_WHAT)
    desc = f"group {group} {action} {member}"
    flag = "--add" if action == "add_member" else "--delete"
    argv = ("gpasswd", flag, member, "--", group)
    ps = "Add-LocalGroupMember" if action == "add_member" else "Remove-LocalGroupMember"
    return desc, _plan(argv, timeout, desc), f"{ps} -Group {g} -Member {_ps(member)}"


_RENDERERS: Final[Mapping[JobType, tuple[_Renderer, set[str]]]] = {
    JobType.SERVICE_CONTROL: (_service, {"action", "service"}),
    JobType.PROCESS_CONTROL: (_process, {"action", "pid", "process"}),
    JobType.NETWORK_DIAGNOSTIC: (_network, {"tool", "target", "count", "port"}),
    JobType.SOFTWARE_INSTALL: (_software, {"packages"}),
    JobType.USER_CONTROL: (_user, {"action", "username", "password"}),
    JobType.GROUP_CONTROL: (_group, {"action", "group", "member"}),
}


def render_job(job_type: JobType | str, fields: Mapping[str, object]) -> RenderedJob:
    """Validate ``fields`` for a built-in ``job_type`` and render it.

    ``script`` and ``command`` are not rendered here: scripts go through
    their versions and commands through the plan builder.
    """
    try:
        jtype = JobType(job_type)
    except ValueError:
        allowed = ", ".join(t.value for t in _RENDERERS)
        raise ValidationError(
            f"unknown job type {job_type!r} (one of {allowed})", field="type"
        ) from None
    if jtype not in _RENDERERS:
        raise ValidationError(
            f"job type {jtype.value} has its own endpoint, not a template", field="type"
        )
    renderer, allowed_fields = _RENDERERS[jtype]
    inp = _Input(fields, allowed_fields)
    timeout = inp.timeout()
    desc, plan, windows = renderer(inp, timeout)
    return RenderedJob(
        type=jtype,
        priority=JOB_PRIORITIES[jtype],
        description=desc,
        linux=plan,
        windows=windows,
        timeout=timeout,
        spec={"type": jtype.value, **inp.spec},
    )

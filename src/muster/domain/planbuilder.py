"""Build the Plan a host runs for a script version or an ad-hoc command.

A script plan has seed 000's shape: write the rendered body to a temporary
file (mode 0700), run it with the shell's interpreter under the version's
timeout, then remove the file whatever happened (``ignore_errors``).
Parameter values travel beside the plan as ``MUSTER_PARAM_*`` environment
variables, plus ``MUSTER_RUN_ID``; secrets only ever there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from muster.domain.durations import check_timeout
from muster.domain.hosts import is_windows_platform
from muster.domain.params import ParamValue, coerce_values, parameter_env
from muster.domain.plans import Plan, PlanCommand, PlanFile
from muster.domain.render import render_body
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.secret import Secret
from muster.errors import ValidationError

__all__ = [
    "CLEANUP_TIMEOUT",
    "ENV_PREFIX",
    "POSIX_TMP_DIR",
    "RUN_ID_ENV",
    "RUN_ID_TOKEN",
    "WINDOWS_TMP_DIR",
    "build_command_plan",
    "build_script_plan",
    "command_env",
    "script_path",
]

POSIX_TMP_DIR: Final = "/tmp"
WINDOWS_TMP_DIR: Final = "C:\\Windows\\Temp"
RUN_ID_ENV: Final = "MUSTER_RUN_ID"
#: Stands for a host run's id in a plan stored once for many hosts (a workflow
#: step's execution); the worker puts each host run's id back in its place.
RUN_ID_TOKEN: Final = "MUSTERRUNIDTOKEN"
#: A command execution's stored values named ``env:NAME`` are its environment
#: (a workflow's variables): see :func:`command_env`.
ENV_PREFIX: Final = "env:"
_ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
CLEANUP_TIMEOUT: Final = 10.0

_RUN_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Windows paths go through ``cmd /c del``: keep them free of anything cmd parses.
_WINDOWS_DIR_RE: Final = re.compile(r"[A-Za-z]:(\\[A-Za-z0-9_.-]+)*\\?")
_BOM: Final = "\ufeff"


def _check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise ValidationError(
            f"invalid run id {run_id!r}: use 1-128 ASCII letters, digits, '_' or '-', "
            "starting with a letter or digit",
            field="run_id",
        )
    return run_id


def script_path(shell: Shell, run_id: str, *, windows: bool, tmp_dir: str | None = None) -> str:
    """Where a run's script file is written: ``<tmp>/muster_<run_id>.<ext>``."""
    _check_run_id(run_id)
    filename = f"muster_{run_id}.{Shell(shell).extension}"
    if windows:
        directory = WINDOWS_TMP_DIR if tmp_dir is None else tmp_dir
        if not _WINDOWS_DIR_RE.fullmatch(directory):
            raise ValidationError(
                f"invalid Windows temporary directory {directory!r}: an absolute path "
                "of letters, digits, '_', '.', '-' only",
                field="tmp_dir",
            )
        return directory.rstrip("\\") + "\\" + filename
    directory = POSIX_TMP_DIR if tmp_dir is None else tmp_dir
    if not directory.startswith("/") or any(c in directory for c in "\x00\n\r"):
        raise ValidationError(
            f"invalid temporary directory {directory!r}: must be an absolute path",
            field="tmp_dir",
        )
    return directory.rstrip("/") + "/" + filename


def build_script_plan(
    version: ScriptVersion,
    values: Mapping[str, object],
    *,
    run_id: str,
    platform: str = "linux",
    tmp_dir: str | None = None,
) -> Plan:
    """The plan that runs ``version`` with ``values`` on a host of ``platform``.

    ``values`` are checked again here (coercion is idempotent), so no plan is
    ever built from unvalidated input. A Windows shell on a POSIX platform,
    or the reverse, is a ValidationError: such hosts are to be skipped
    before planning.
    """
    windows = is_windows_platform(platform)
    if version.shell.is_windows != windows:
        raise ValidationError(
            f"shell {version.shell.value} cannot run on platform {platform}", field="shell"
        )
    coerced: dict[str, ParamValue] = coerce_values(version.parameters, values)
    path = script_path(version.shell, run_id, windows=windows, tmp_dir=tmp_dir)
    content = render_body(version, coerced)
    if version.shell is Shell.POWERSHELL:
        # Windows PowerShell 5.1 reads a BOM-less file in the ANSI code page.
        content = _BOM + content
    elif version.shell is Shell.CMD:
        # cmd's label and goto handling misbehaves on LF-only batch files.
        content = content.replace("\r\n", "\n").replace("\n", "\r\n")
    label = f"run {version.name}" + (f" v{version.version}" if version.version else "")
    cleanup = ("cmd", "/c", "del", "/q", path) if windows else ("rm", "-f", "--", path)
    env: dict[str, str | Secret] = parameter_env(version.parameters, coerced)
    env[RUN_ID_ENV] = run_id
    return Plan(
        files=(PlanFile(path=path, content=content, mode=0o700),),
        commands=(
            PlanCommand(
                argv=(*version.shell.interpreter, path),
                timeout=version.timeout,
                ignore_errors=False,
                description=label,
            ),
            PlanCommand(
                argv=cleanup, timeout=CLEANUP_TIMEOUT, ignore_errors=True, description="clean up"
            ),
        ),
        env=env,
    )


def build_command_plan(
    command: str,
    *,
    timeout: float,
    shell: Shell = Shell.SH,
    env: Mapping[str, str | Secret] | None = None,
    run_id: str | None = None,
) -> Plan:
    """An ad-hoc command line run by ``shell`` (``sh -c <command>``).

    The command is the operator's own text, passed as one argv word: it is
    interpreted by the shell on purpose and never becomes an option of ours.
    """
    if not isinstance(command, str) or not command.strip():
        raise ValidationError("a command cannot be empty", field="command")
    if "\x00" in command:
        raise ValidationError("a command cannot contain a NUL character", field="command")
    shell = Shell(shell)
    plan_env: dict[str, str | Secret] = dict(env or {})
    if run_id is not None:
        plan_env[RUN_ID_ENV] = _check_run_id(run_id)
    return Plan(
        commands=(
            PlanCommand(
                argv=(*shell.command_argv, command),
                timeout=check_timeout(timeout),
                ignore_errors=False,
                description="command",
            ),
        ),
        env=plan_env,
    )


def command_env(values: Mapping[str, object]) -> dict[str, str | Secret]:
    """The environment a command execution's stored values carry (``env:NAME``
    entries; a name that is no shell variable is refused, naming it)."""
    env: dict[str, str | Secret] = {}
    for key, value in values.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :]
        if not _ENV_NAME_RE.fullmatch(name):
            raise ValidationError(f"env: {name!r} is not a variable name", field="env")
        env[name] = value if isinstance(value, Secret) else str(value)
    return env

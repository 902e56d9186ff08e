"""The POSIX sh program that runs a whole Plan in one SSH round trip.

The remote command line is always the fixed :data:`DRIVER_COMMAND` (``sh -s``);
everything that belongs to the plan - environment (secrets included), file
contents, argv - travels in the driver on the channel's stdin, so it never
shows in a process list or a log of command lines, and is never written to a
file by us.

The driver: sets ``umask 077``; exports the plan's environment; writes each
file from base64 (exact bytes, trailing newline or not) and chmods it; runs
each command with stdin from ``/dev/null``, under ``timeout -k`` when the host
has it; applies the plan execution rule (after a failure only
``ignore_errors`` commands still run) and exits with the plan's exit code.
The whole program is one brace group, so sh has read all of it before
anything runs; the channel's stdin then stays open as a lifeline. A watchdog
waits for its EOF - the controller cancelling or timing out, the channel or
the connection closing - and TERMs the driver, whose trap passes the signal
on to the running command's process group. (OpenSSH refuses channel signals
for root sessions - "session signalling requires privilege separation" - so
signals alone cannot be relied on.)

A plan with no files, no environment and a single command skips the driver:
its argv, shell-quoted, is the exec string itself (the ``muster run -- cmd``
path, as cheap as a bare ``conn.run``).
"""

from __future__ import annotations

import base64
import re
import shlex
from typing import Final

from muster.domain.plans import Plan, PlanCommand
from muster.domain.secret import Secret

__all__ = [
    "DRIVER_COMMAND",
    "KILL_AFTER",
    "TIMEOUT_EXIT",
    "build_driver",
    "driver_deadline",
    "fast_path_command",
]

#: The only remote command line the driver path ever uses.
DRIVER_COMMAND: Final = "sh -s"
#: Seconds ``timeout`` waits after TERM before it sends KILL.
KILL_AFTER: Final = 5
#: The exit status of GNU/busybox ``timeout`` when the command ran too long.
TIMEOUT_EXIT: Final = 124

_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Not in the base64 alphabet, so it can never occur inside the encoded body.
_EOF_MARK: Final = "_MUSTER_EOF_"

_PROLOGUE: Final = f"""{{
umask 077
_muster_pid=
_muster_rc=0
if command -v timeout >/dev/null 2>&1; then _muster_t=1; else _muster_t=; fi
_muster_end() {{
  kill "$_muster_wd" 2>/dev/null
  exit "$1"
}}
_muster_stop() {{
  if [ -n "$_muster_pid" ]; then
    kill -TERM -"$_muster_pid" 2>/dev/null || kill -TERM "$_muster_pid" 2>/dev/null
  fi
  _muster_end 143
}}
trap _muster_stop TERM HUP INT
exec 3<&0
( while read -r _muster_x; do :; done; kill -TERM $$ 2>/dev/null ) <&3 >/dev/null 2>&1 &
_muster_wd=$!
exec 3<&-
_muster_fail() {{
  echo "muster: cannot write plan file $1" >&2
  _muster_end 126
}}
_muster_run() {{
  _muster_s=$1
  shift
  if [ -n "$_muster_t" ]; then
    timeout -k {KILL_AFTER} "$_muster_s" "$@" </dev/null &
  else
    "$@" </dev/null &
  fi
  _muster_pid=$!
  wait "$_muster_pid"
  _muster_r=$?
  _muster_pid=
  return "$_muster_r"
}}
"""


def fast_path_command(plan: Plan) -> str | None:
    """The exec string for a plan simple enough to skip the driver, else None."""
    if plan.files or plan.env or len(plan.commands) != 1:
        return None
    argv = plan.commands[0].argv
    return shlex.join(argv) if argv else None


def driver_deadline(plan: Plan, grace: float = 10.0) -> float:
    """Seconds after which the controller gives up on the driver."""
    return plan.total_timeout + KILL_AFTER * len(plan.commands) + grace


def build_driver(plan: Plan) -> str:
    """The sh program for ``plan``; raises ValueError on what sh cannot carry."""
    parts = [_PROLOGUE]
    for name, value in plan.env.items():
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        text = value.reveal() if isinstance(value, Secret) else value
        _check_text(text, f"environment variable {name}")
        parts.append(f"export {name}={shlex.quote(text)}\n")
    for f in plan.files:
        _check_text(f.path, "file path")
        path = shlex.quote(f.path)
        body = base64.encodebytes(f.content.encode("utf-8")).decode("ascii")
        parts.append(
            f"base64 -d >{path} <<'{_EOF_MARK}' || _muster_fail {path}\n"
            f"{body}{_EOF_MARK}\n"
            f"chmod {f.mode & 0o7777:o} {path} || _muster_fail {path}\n"
        )
    for cmd in plan.commands:
        parts.append(_command_line(cmd))
    parts.append('_muster_end "$_muster_rc"\n}\n')
    return "".join(parts)


def _command_line(cmd: PlanCommand) -> str:
    if not cmd.argv:
        raise ValueError("a plan command needs a non-empty argv")
    for word in cmd.argv:
        _check_text(word, "command argument")
    run = f"_muster_run {_seconds(cmd.timeout)} {shlex.join(cmd.argv)}"
    if cmd.ignore_errors:
        return f"{run}\n"
    return f'if [ "$_muster_rc" -eq 0 ]; then {run}; _muster_rc=$?; fi\n'


def _seconds(timeout: float) -> str:
    if timeout <= 0:
        raise ValueError(f"a command timeout must be positive, got {timeout!r}")
    return f"{timeout:.3f}".rstrip("0").rstrip(".")


def _check_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{what} cannot contain a NUL character")

"""Run plans on this machine: one subprocess per command, each in its own group.

Every command starts a new session (so a process group of its own), with
stdin from ``/dev/null`` and the controller's environment plus the plan's
(secrets are revealed only here, into the child's environment). stdout and
stderr are read concurrently in chunks and handed to the sink as they arrive;
nothing is kept. A command past its timeout, or a cancelled run, takes its
whole process group down: SIGTERM, then SIGKILL after a short grace, so
grandchildren never outlive the run.

On a server the transport is built with a :class:`LocalIsolation`: the
server's own machine holds its database and vault key, so every plan runs as
another (unprivileged) account, with no supplementary groups and umask 077,
in a fresh private working directory removed afterwards, and with a clean
environment (a fixed ``PATH``, the locale, ``HOME`` set to that directory and
nothing of the server's own, such as ``MUSTER_*``). It never falls back to
the server's user: when it cannot switch (the server is not root), or the
account is the server's own, the run fails with the reason, before anything
starts. Without isolation (the CLI and the library on a workstation) commands
run as the invoking user with its environment, as a shell would.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import os
import pwd
import shutil
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from muster.domain.hosts import Host
from muster.domain.plans import Plan, PlanCommand
from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState
from muster.transports.base import OutputSink, Stream, TransportOutcome

__all__ = ["LocalIsolation", "LocalTransport"]

_CHUNK = 64 * 1024
#: After the command itself exits, how long its output pipes may stay open
#: (held by a background grandchild) before we stop reading them.
_DRAIN_GRACE = 1.0


#: ``PATH`` of an isolated run: the system's directories, nothing of the server's.
_SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: What an isolated run keeps of the server's environment: the locale and time zone.
_KEPT_ENV = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")


@dataclass(frozen=True, slots=True)
class LocalIsolation:
    """How a server runs local plans: as ``user``, never as itself (module docstring)."""

    #: An unprivileged account name; never the account the server runs as.
    user: str = "nobody"
    umask: int = 0o077
    #: Where the per-run working directories are made (default: the system's temp dir).
    work_root: str | None = None


@dataclass(frozen=True, slots=True)
class _Account:
    name: str
    uid: int
    gid: int


class _Refused(Exception):
    """An isolated run cannot start; the message says why (it becomes the run's reason)."""


@dataclass(frozen=True, slots=True)
class _Context:
    """Where and as whom one plan's commands run."""

    env: Mapping[str, str]
    cwd: str | None = None
    account: _Account | None = None
    umask: int = -1


@dataclass(frozen=True, slots=True)
class _Result:
    exit_code: int | None
    timed_out: bool = False
    message: str = ""


class LocalTransport:
    """The ``local`` transport; see the module docstring for its guarantees."""

    def __init__(
        self,
        *,
        kill_grace: float = 2.0,
        chunk_size: int = _CHUNK,
        isolation: LocalIsolation | None = None,
    ) -> None:
        self._kill_grace = kill_grace
        self._chunk_size = chunk_size
        self.isolation = isolation

    async def close(self) -> None:
        """Nothing is pooled locally; every process ends with its run."""

    async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
        isolation = self.isolation
        if isolation is None:
            return await self._run_plan(plan, sink, _Context(_environment(plan.env)))
        try:
            account = _account(isolation.user)
            workdir = _make_workdir(account, isolation.work_root)
        except (_Refused, OSError) as exc:
            return TransportOutcome(
                HostRunState.FAILED,
                reason=FailureReason.TRANSPORT_ERROR,
                message=f"local run refused: {exc}",
                started=False,
            )
        try:
            env = _clean_environment(plan.env, account, workdir)
            ctx = _Context(env, cwd=workdir, account=account, umask=isolation.umask)
            return await self._run_plan(plan, sink, ctx)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _run_plan(self, plan: Plan, sink: OutputSink, ctx: _Context) -> TransportOutcome:
        try:
            for f in plan.files:
                _write_file(f.path, f.content, f.mode, ctx.account)
        except OSError as exc:
            return TransportOutcome(
                HostRunState.FAILED,
                reason=FailureReason.TRANSPORT_ERROR,
                message=f"cannot write plan file: {exc}",
                started=False,
            )
        first_failure: _Result | None = None
        for cmd in plan.commands:
            if first_failure is not None and not cmd.ignore_errors:
                continue
            result = await self._run_command(cmd, ctx, sink)
            failed = result.timed_out or result.exit_code != 0
            if failed and first_failure is None and not cmd.ignore_errors:
                first_failure = result
        if first_failure is None:
            return TransportOutcome(HostRunState.SUCCEEDED, exit_code=0)
        if first_failure.timed_out:
            return TransportOutcome(
                HostRunState.TIMED_OUT,
                reason=FailureReason.TIMED_OUT,
                message=first_failure.message,
            )
        return TransportOutcome(
            HostRunState.FAILED,
            exit_code=first_failure.exit_code,
            reason=FailureReason.COMMAND_FAILED,
            message=first_failure.message,
        )

    async def _run_command(self, cmd: PlanCommand, ctx: _Context, sink: OutputSink) -> _Result:
        switch: dict[str, Any] = {}
        if ctx.account is not None:
            switch = {
                "user": ctx.account.uid,
                "group": ctx.account.gid,
                "extra_groups": [],
                "umask": ctx.umask,
            }
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=ctx.env,
                cwd=ctx.cwd,
                start_new_session=True,
                **switch,
            )
        except OSError as exc:
            # What a shell would say and return: 127 not found, 126 not runnable.
            code = 127 if exc.errno == errno.ENOENT else 126
            what = "command not found" if code == 127 else "cannot execute"
            message = f"muster: {what}: {cmd.argv[0] if cmd.argv else ''} ({exc.strerror})"
            sink(Stream.STDERR, message + "\n")
            return _Result(code, message=message)
        assert proc.stdout is not None and proc.stderr is not None
        readers = (
            asyncio.create_task(self._pump(proc.stdout, Stream.STDOUT, sink)),
            asyncio.create_task(self._pump(proc.stderr, Stream.STDERR, sink)),
        )
        try:
            try:
                async with asyncio.timeout(cmd.timeout):
                    code = await proc.wait()
            except TimeoutError:
                await self._kill_group(proc)
                await _finish_readers(readers, _DRAIN_GRACE)
                return _Result(None, timed_out=True, message=f"timed out after {cmd.timeout:g}s")
            await _finish_readers(readers, _DRAIN_GRACE)
        except asyncio.CancelledError:
            for r in readers:
                r.cancel()
            await asyncio.shield(self._kill_group(proc))
            raise
        if code < 0:
            return _Result(code, message=f"killed by signal {-code}")
        return _Result(code, message="" if code == 0 else f"exit code {code}")

    async def _pump(self, reader: asyncio.StreamReader, stream: Stream, sink: OutputSink) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        size = self._chunk_size
        while chunk := await reader.read(size):
            text = decoder.decode(chunk)
            if text:
                sink(stream, text)
        tail = decoder.decode(b"", True)
        if tail:
            sink(stream, tail)

    async def _kill_group(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the whole group, then SIGKILL it after the grace period."""
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._kill_grace):
                await proc.wait()
        # Unconditionally: grandchildren may ignore SIGTERM or outlive the leader.
        _signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _finish_readers(readers: tuple[asyncio.Task[None], ...], grace: float) -> None:
    """Wait for both pipes to reach EOF, but not longer than ``grace``."""
    _done, pending = await asyncio.wait(readers, timeout=grace)
    for task in pending:
        task.cancel()
    for task in readers:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _environment(plan_env: Mapping[str, str | Secret]) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in plan_env.items():
        env[name] = value.reveal() if isinstance(value, Secret) else value
    return env


def _account(name: str) -> _Account:
    """The account isolated runs switch to; ``_Refused`` when that is impossible or unsafe."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise _Refused(f"the account {name!r} to run local commands as does not exist") from None
    me = os.geteuid()
    if entry.pw_uid == me:
        raise _Refused(
            f"local commands on a server never run as the server's own account ({name}): "
            "they could read its data directory; configure an unprivileged account"
        )
    if me != 0:
        raise _Refused(
            f"the server runs as {_name_of(me)} and cannot switch to {name!r} (that needs "
            "root); local commands are refused rather than run as the server's account"
        )
    return _Account(name, entry.pw_uid, entry.pw_gid)


def _name_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _make_workdir(account: _Account, root: str | None) -> str:
    """A new directory only ``account`` may enter (mode 0700, owned by it)."""
    path = tempfile.mkdtemp(prefix="muster-run-", dir=root)
    try:
        os.chown(path, account.uid, account.gid)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def _clean_environment(
    plan_env: Mapping[str, str | Secret], account: _Account, workdir: str
) -> dict[str, str]:
    """The locale of the server and nothing else of it, then the run's own variables."""
    env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
    env.update(
        PATH=_SAFE_PATH,
        HOME=workdir,
        PWD=workdir,
        TMPDIR=workdir,
        USER=account.name,
        LOGNAME=account.name,
        SHELL="/bin/sh",
    )
    for name, value in plan_env.items():
        env[name] = value.reveal() if isinstance(value, Secret) else value
    return env


def _write_file(path: str, content: str, mode: int, account: _Account | None = None) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    if account is not None:
        # Written with the server's rights into a shared directory: never through a
        # link someone planted there, never into a file someone else made.
        flags |= os.O_EXCL | os.O_NOFOLLOW
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    fd = os.open(path, flags, 0o600)
    try:
        if account is not None:
            os.fchown(fd, account.uid, account.gid)
        os.fchmod(fd, mode)
        data = content.encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)

"""Run plans on this machine: one subprocess per command, each in its own group.

Every command starts a new session (so a process group of its own), with
stdin from ``/dev/null`` and the controller's environment plus the plan's
(secrets are revealed only here, into the child's environment). stdout and
stderr are read concurrently in chunks and handed to the sink as they arrive;
nothing is kept. A command past its timeout, or a cancelled run, takes its
whole process group down: SIGTERM, then SIGKILL after a short grace, so
grandchildren never outlive the run.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass

from muster.domain.hosts import Host
from muster.domain.plans import Plan, PlanCommand
from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState
from muster.transports.base import OutputSink, Stream, TransportOutcome

__all__ = ["LocalTransport"]

_CHUNK = 64 * 1024
#: After the command itself exits, how long its output pipes may stay open
#: (held by a background grandchild) before we stop reading them.
_DRAIN_GRACE = 1.0


@dataclass(frozen=True, slots=True)
class _Result:
    exit_code: int | None
    timed_out: bool = False
    message: str = ""


class LocalTransport:
    """The ``local`` transport; see the module docstring for its guarantees."""

    def __init__(self, *, kill_grace: float = 2.0, chunk_size: int = _CHUNK) -> None:
        self._kill_grace = kill_grace
        self._chunk_size = chunk_size

    async def close(self) -> None:
        """Nothing is pooled locally; every process ends with its run."""

    async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
        env = _environment(plan.env)
        try:
            for f in plan.files:
                _write_file(f.path, f.content, f.mode)
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
            result = await self._run_command(cmd, env, sink)
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

    async def _run_command(
        self, cmd: PlanCommand, env: Mapping[str, str], sink: OutputSink
    ) -> _Result:
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
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


def _write_file(path: str, content: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, mode)
        data = content.encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)

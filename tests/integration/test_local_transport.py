"""LocalTransport against real processes: output, exit codes, groups, timeouts."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.plans import Plan, PlanCommand, PlanFile
from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState
from muster.transports.base import Stream
from muster.transports.local import LocalTransport
from tests.integration.ssh_helpers import Collect, sh, wait_gone

HOST = Host("localhost", transport=TransportKind.LOCAL)


async def test_success_streams_stdout_and_stderr_separately() -> None:
    sink = Collect()
    outcome = await LocalTransport().run_plan(
        HOST, Plan(commands=(sh("echo out; echo err >&2"),)), sink
    )
    assert outcome.state is HostRunState.SUCCEEDED
    assert outcome.exit_code == 0
    assert sink.stdout == "out\n"
    assert sink.stderr == "err\n"


async def test_nonzero_exit_is_failed_with_code() -> None:
    outcome = await LocalTransport().run_plan(HOST, Plan(commands=(sh("exit 7"),)), Collect())
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.COMMAND_FAILED
    assert outcome.exit_code == 7


async def test_missing_interpreter_is_127_with_message() -> None:
    sink = Collect()
    plan = Plan(commands=(PlanCommand(("/nonexistent/zsh-nope", "x"), 5),))
    outcome = await LocalTransport().run_plan(HOST, plan, sink)
    assert outcome.state is HostRunState.FAILED
    assert outcome.exit_code == 127
    assert "command not found" in outcome.message
    assert "/nonexistent/zsh-nope" in sink.stderr


async def test_env_reaches_the_command_and_secrets_are_revealed_only_there() -> None:
    sink = Collect()
    plan = Plan(commands=(sh('echo "$A:$TOKEN"'),), env={"A": "plain", "TOKEN": Secret("s3cr3t")})
    outcome = await LocalTransport().run_plan(HOST, plan, sink)
    assert outcome.state is HostRunState.SUCCEEDED
    assert sink.stdout == "plain:s3cr3t\n"


async def test_stdin_is_dev_null() -> None:
    sink = Collect()
    outcome = await LocalTransport().run_plan(HOST, Plan(commands=(sh("cat; echo done"),)), sink)
    assert outcome.state is HostRunState.SUCCEEDED
    assert sink.stdout == "done\n"


async def test_files_are_written_exactly_with_their_mode(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    data = tmp_path / "data.txt"
    plan = Plan(
        files=(
            PlanFile(str(script), "echo from-file\n", 0o700),
            PlanFile(str(data), "no trailing newline é", 0o640),
        ),
        commands=(PlanCommand(("/bin/sh", str(script)), 5),),
    )
    sink = Collect()
    outcome = await LocalTransport().run_plan(HOST, plan, sink)
    assert outcome.state is HostRunState.SUCCEEDED
    assert sink.stdout == "from-file\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    assert stat.S_IMODE(data.stat().st_mode) == 0o640
    assert data.read_bytes() == "no trailing newline é".encode()


async def test_unwritable_file_fails_before_anything_starts(tmp_path: Path) -> None:
    plan = Plan(
        files=(PlanFile(str(tmp_path / "missing-dir" / "x"), "x"),),
        commands=(sh("echo must-not-run"),),
    )
    sink = Collect()
    outcome = await LocalTransport().run_plan(HOST, plan, sink)
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.TRANSPORT_ERROR
    assert outcome.started is False
    assert sink.stdout == ""


async def test_failure_skips_the_rest_but_cleanup_still_runs() -> None:
    plan = Plan(
        commands=(
            sh("echo one"),
            sh("exit 3"),
            sh("echo skipped"),
            sh("echo cleanup; exit 9", ignore_errors=True),
            sh("echo also-skipped"),
        )
    )
    sink = Collect()
    outcome = await LocalTransport().run_plan(HOST, plan, sink)
    assert sink.stdout == "one\ncleanup\n"
    assert outcome.state is HostRunState.FAILED
    assert outcome.exit_code == 3


async def test_ignore_errors_failure_does_not_fail_the_plan() -> None:
    plan = Plan(commands=(sh("exit 4", ignore_errors=True), sh("echo after")))
    sink = Collect()
    outcome = await LocalTransport().run_plan(HOST, plan, sink)
    assert outcome.state is HostRunState.SUCCEEDED
    assert sink.stdout == "after\n"


async def test_timeout_kills_the_whole_group_including_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # The grandchild ignores TERM, so only the group SIGKILL can end it.
    script = f"sh -c 'trap \"\" TERM; echo $$ > {pidfile}; while :; do sleep 1; done' & wait"
    plan = Plan(commands=(sh(script, timeout=0.5), sh("echo cleanup", ignore_errors=True)))
    sink = Collect()
    outcome = await LocalTransport(kill_grace=0.2).run_plan(HOST, plan, sink)
    assert outcome.state is HostRunState.TIMED_OUT
    assert outcome.reason is FailureReason.TIMED_OUT
    assert sink.stdout == "cleanup\n"
    grandchild = int(pidfile.read_text())
    assert await wait_gone(grandchild)


async def test_cancellation_kills_the_group_and_propagates(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = asyncio.Event()

    def sink(stream: Stream, text: str) -> None:
        if "ready" in text:
            started.set()

    plan = Plan(commands=(sh(f"sleep 60 & echo $! > {pidfile}; echo ready; wait", timeout=60),))
    task = asyncio.create_task(LocalTransport(kill_grace=0.2).run_plan(HOST, plan, sink))
    async with asyncio.timeout(10):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(int(pidfile.read_text()))


async def test_large_output_is_streamed_in_chunks_and_not_kept() -> None:
    total = 0
    chunks = 0
    largest = 0

    def sink(stream: Stream, text: str) -> None:
        nonlocal total, chunks, largest
        total += len(text)
        chunks += 1
        largest = max(largest, len(text))

    transport = LocalTransport()
    size = 20 * 1024 * 1024
    plan = Plan(commands=(sh(f"head -c {size} /dev/zero | tr '\\0' x", timeout=60),))
    outcome = await transport.run_plan(HOST, plan, sink)
    assert outcome.state is HostRunState.SUCCEEDED
    assert total == size
    assert chunks > 100  # delivered as it came, not at the end
    assert largest <= 64 * 1024
    # The transport holds no per-run state that could accumulate output.
    assert not hasattr(transport, "__dict__") or all(
        not isinstance(v, str | bytes | list) for v in vars(transport).values()
    )


async def test_multibyte_characters_split_across_chunks_decode_intact() -> None:
    sink = Collect()
    # 3-byte characters over a 64 KiB boundary: 0x10000 is not a multiple of 3.
    plan = Plan(commands=(sh("python3 -c \"import sys; sys.stdout.write('€' * 50000)\""),))
    outcome = await LocalTransport().run_plan(HOST, plan, sink)
    assert outcome.state is HostRunState.SUCCEEDED
    assert sink.stdout == "€" * 50000

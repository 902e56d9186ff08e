"""SshTransport against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from muster.domain.hosts import Host
from muster.domain.plans import Plan, PlanCommand, PlanFile
from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState
from muster.transports.base import Stream
from muster.transports.ssh import HostKeyPolicy, SshTransport
from tests.fleet.sshd import SshdServer, free_port
from tests.integration.ssh_helpers import (
    Collect,
    host_of,
    read_pid,
    sh,
    transport_for,
    wait_gone,
)


@pytest.fixture
async def ssh(sshd_loopback: SshdServer, loopback_known_hosts: Path) -> AsyncIterator[SshTransport]:
    transport = transport_for(sshd_loopback, loopback_known_hosts)
    try:
        yield transport
    finally:
        await transport.close()


async def test_command_succeeds_with_separate_streams(
    ssh: SshTransport, sshd_loopback: SshdServer
) -> None:
    sink = Collect()
    outcome = await ssh.run_plan(
        host_of(sshd_loopback), Plan.command("echo out; echo err >&2"), sink
    )
    assert outcome.state is HostRunState.SUCCEEDED
    assert outcome.exit_code == 0
    assert sink.stdout == "out\n"
    assert sink.stderr == "err\n"


async def test_sessions_skip_bashrc(ssh: SshTransport, sshd_loopback: SshdServer) -> None:
    # Root's .bashrc runs pyenv init; SetEnv SHLVL=1 keeps sshd's bash -c from sourcing it.
    sink = Collect()
    plan = Plan.command('if [ -n "$PYENV_SHELL" ]; then echo bashrc-ran; else echo clean; fi')
    await ssh.run_plan(host_of(sshd_loopback), plan, sink)
    assert sink.stdout == "clean\n"


@pytest.mark.parametrize("driver", [False, True], ids=["fast-path", "driver"])
async def test_nonzero_exit_is_command_failed(
    ssh: SshTransport, sshd_loopback: SshdServer, driver: bool
) -> None:
    plan = Plan(commands=(sh("exit 7"),), env={"X": "1"} if driver else {})
    outcome = await ssh.run_plan(host_of(sshd_loopback), plan, Collect())
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.COMMAND_FAILED
    assert outcome.exit_code == 7


async def test_refused_port_is_unreachable_and_not_started(ssh: SshTransport) -> None:
    outcome = await ssh.run_plan(
        Host("gone", "127.0.0.1", free_port()), Plan.command("true"), Collect()
    )
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.UNREACHABLE
    assert outcome.started is False


async def test_files_and_secret_env_reach_the_script_never_a_command_line(
    ssh: SshTransport, sshd_loopback: SshdServer, tmp_path: Path
) -> None:
    secret = "hunter2 'quoted' $(not run) `nor this`"
    script = tmp_path / "job.sh"
    data = tmp_path / "data.bin"
    scan = (
        "import os, sys\n"
        "needle = os.environ['TOKEN'].encode()\n"
        "def argv(p):\n"
        "    try:\n"
        "        return open(f'/proc/{p}/cmdline', 'rb').read()\n"
        "    except OSError:\n"
        "        return b''\n"
        "hits = [p for p in os.listdir('/proc') if p.isdigit() and needle in argv(p)]\n"
        "print('argv-hits', len(hits))\n"
    )
    body = (
        'printf "%s\\n" "$TOKEN"\n'
        f"python3 - <<'EOF'\n{scan}EOF\n"
        # grandparent of this script is the driver: timeout -> sh -s
        "gp=$(awk '{print $4}' /proc/$PPID/stat)\n"
        "tr '\\0' ' ' </proc/$gp/cmdline; echo\n"
    )
    plan = Plan(
        files=(
            PlanFile(str(script), body, 0o700),
            PlanFile(str(data), "exact\n\nbytes, no final newline ✓", 0o604),
        ),
        commands=(
            PlanCommand(("/bin/sh", str(script)), 20),
            PlanCommand(("rm", "-f", "--", str(script)), 5, ignore_errors=True),
        ),
        env={"TOKEN": Secret(secret), "PLAIN": "v"},
    )
    sink = Collect()
    outcome = await ssh.run_plan(host_of(sshd_loopback), plan, sink)
    assert outcome.state is HostRunState.SUCCEEDED, sink.stderr
    lines = sink.stdout.splitlines()
    assert lines[0] == secret
    assert lines[1] == "argv-hits 0"
    assert lines[2].strip() == "sh -s"
    assert not script.exists()  # the cleanup command ran
    assert data.read_bytes() == "exact\n\nbytes, no final newline ✓".encode()
    assert stat.S_IMODE(data.stat().st_mode) == 0o604


async def test_large_output_is_streamed_in_chunks(
    ssh: SshTransport, sshd_loopback: SshdServer
) -> None:
    total = chunks = largest = 0

    def sink(stream: Stream, text: str) -> None:
        nonlocal total, chunks, largest
        total += len(text)
        chunks += 1
        largest = max(largest, len(text))

    size = 8 * 1024 * 1024
    plan = Plan.command(f"head -c {size} /dev/zero | tr '\\0' y", timeout=60)
    outcome = await ssh.run_plan(host_of(sshd_loopback), plan, sink)
    assert outcome.state is HostRunState.SUCCEEDED
    assert total == size
    assert chunks > 64
    assert largest <= 64 * 1024


async def test_driver_timeout_is_timed_out_and_the_remote_process_is_gone(
    ssh: SshTransport, sshd_loopback: SshdServer, tmp_path: Path
) -> None:
    pidfile = tmp_path / "sleep.pid"
    plan = Plan(
        commands=(sh(f"sleep 30 & echo $! > {pidfile}; wait", timeout=1),),
        env={"A": "b"},
    )
    outcome = await ssh.run_plan(host_of(sshd_loopback), plan, Collect())
    assert outcome.state is HostRunState.TIMED_OUT
    assert outcome.reason is FailureReason.TIMED_OUT
    assert await wait_gone(int(pidfile.read_text()))


async def test_fast_path_timeout_closes_the_channel_at_the_deadline(
    ssh: SshTransport, sshd_loopback: SshdServer
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    plan = Plan.command("sleep 30", timeout=0.5)
    outcome = await ssh.run_plan(host_of(sshd_loopback), plan, Collect())
    assert outcome.state is HostRunState.TIMED_OUT
    assert outcome.reason is FailureReason.TIMED_OUT
    assert loop.time() - started < 15  # the controller did not wait for sleep 30


async def test_without_fast_path_a_timed_out_command_is_killed_remotely(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    # Root sessions ignore channel signals; the driver's stdin lifeline does not.
    pidfile = tmp_path / "self.pid"
    transport = transport_for(sshd_loopback, loopback_known_hosts, fast_path=False)
    plan = Plan.command(f"echo $$ > {pidfile}; exec sleep 30", timeout=1)
    outcome = await transport.run_plan(host_of(sshd_loopback), plan, Collect())
    await transport.close()
    assert outcome.state is HostRunState.TIMED_OUT
    assert await wait_gone(int(pidfile.read_text()))


async def test_cancellation_closes_the_channel_and_stops_the_command(
    ssh: SshTransport, sshd_loopback: SshdServer, tmp_path: Path
) -> None:
    pidfile = tmp_path / "cancel.pid"
    plan = Plan(commands=(sh(f"sleep 30 & echo $! > {pidfile}; wait", timeout=60),), env={"A": "b"})
    task = asyncio.create_task(ssh.run_plan(host_of(sshd_loopback), plan, Collect()))
    pid = await read_pid(pidfile)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(pid)


async def test_plans_on_one_host_share_one_connection(
    ssh: SshTransport, sshd_loopback: SshdServer
) -> None:
    host = host_of(sshd_loopback)
    # Concurrent first uses wait on one handshake...
    outcomes = await asyncio.gather(
        *(ssh.run_plan(host, Plan.command("true"), Collect()) for _ in range(5))
    )
    # ...and later plans reuse it.
    outcomes.append(await ssh.run_plan(host, Plan.command("true"), Collect()))
    assert all(o.state is HostRunState.SUCCEEDED for o in outcomes)
    assert ssh.connections_opened == 1
    assert ssh.pooled_connections == 1


async def test_without_pool_each_plan_connects(
    sshd_loopback: SshdServer, loopback_known_hosts: Path
) -> None:
    transport = transport_for(sshd_loopback, loopback_known_hosts, pool=False)
    for _ in range(2):
        await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert transport.connections_opened == 2
    assert transport.pooled_connections == 0


async def test_idle_connections_expire(
    sshd_loopback: SshdServer, loopback_known_hosts: Path
) -> None:
    transport = transport_for(sshd_loopback, loopback_known_hosts, idle_timeout=0.05)
    await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    async with asyncio.timeout(5):
        while transport.pooled_connections:
            await asyncio.sleep(0.02)
    assert transport.connections_opened == 1


async def test_dropped_pooled_connection_is_replaced(tmp_path: Path) -> None:
    server = SshdServer().start()
    try:
        transport = transport_for(server, server.write_known_hosts(tmp_path / "kh"))
        host = host_of(server)
        assert (
            await transport.run_plan(host, Plan.command("true"), Collect())
        ).state is HostRunState.SUCCEEDED
        server.stop()  # ends the pooled session server-side
        server.start()
        outcome = await transport.run_plan(host, Plan.command("echo again"), sink := Collect())
        assert outcome.state is HostRunState.SUCCEEDED
        assert sink.stdout == "again\n"
        assert transport.connections_opened == 2
        await transport.close()
    finally:
        server.cleanup()


# -- less common paths ---------------------------------------------------


async def test_remote_process_killed_by_a_signal_is_failed(
    ssh: SshTransport, sshd_loopback: SshdServer
) -> None:
    outcome = await ssh.run_plan(host_of(sshd_loopback), Plan.command("kill -KILL $$"), Collect())
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.COMMAND_FAILED
    assert "signal KILL" in outcome.message


async def test_truncated_utf8_at_the_end_is_replaced_not_lost(
    ssh: SshTransport, sshd_loopback: SshdServer
) -> None:
    sink = Collect()
    await ssh.run_plan(host_of(sshd_loopback), Plan.command("printf 'ok\\342\\202'"), sink)
    assert sink.stdout == "ok\ufffd"


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        (Plan(commands=(sh("true"),), env={"BAD NAME": "x"}), "environment variable name"),
        (Plan(commands=(PlanCommand(()),)), "non-empty argv"),
    ],
    ids=["bad-env-name", "empty-argv"],
)
async def test_a_plan_sh_cannot_carry_fails_before_connecting(
    ssh: SshTransport, sshd_loopback: SshdServer, plan: Plan, problem: str
) -> None:
    outcome = await ssh.run_plan(host_of(sshd_loopback), plan, Collect())
    assert outcome.reason is FailureReason.TRANSPORT_ERROR
    assert outcome.message.startswith("invalid plan") and problem in outcome.message
    assert outcome.started is False
    assert ssh.connections_opened == 0


async def test_concurrent_plans_past_max_sessions_get_their_own_connection(
    tmp_path: Path,
) -> None:
    server = SshdServer(max_sessions=1).start()
    try:
        transport = transport_for(server, server.write_known_hosts(tmp_path / "kh"))
        host = host_of(server)
        outcomes = await asyncio.gather(
            *(transport.run_plan(host, Plan.command("sleep 0.5"), Collect()) for _ in range(2))
        )
        assert [o.state for o in outcomes] == [HostRunState.SUCCEEDED] * 2
        assert transport.connections_opened == 2
        assert transport.pooled_connections == 1  # the overflow connection was not kept
        await transport.close()
    finally:
        server.cleanup()


async def test_pool_is_bounded_by_evicting_the_oldest_idle_connection(
    sshd_loopback: SshdServer, tmp_path: Path
) -> None:
    addr, port = sshd_loopback.listen[0]
    known = sshd_loopback.write_known_hosts(tmp_path / "kh", [(addr, port), ("localhost", port)])
    transport = transport_for(sshd_loopback, known, max_pool=1)
    for name in (addr, "localhost", addr):
        outcome = await transport.run_plan(
            Host(name, name, port, user="root"), Plan.command("true"), Collect()
        )
        assert outcome.state is HostRunState.SUCCEEDED
    assert transport.pooled_connections == 1
    assert transport.connections_opened == 3
    await transport.close()


async def test_accept_new_that_cannot_record_the_key_refuses_the_host(
    sshd_loopback: SshdServer,
) -> None:
    # Nothing can be created under /proc, not even by root.
    unwritable = Path("/proc/muster-no-such-dir/known_hosts")
    transport = transport_for(sshd_loopback, unwritable, host_key_policy=HostKeyPolicy.ACCEPT_NEW)
    outcome = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert outcome.reason is FailureReason.TRANSPORT_ERROR
    assert "cannot record the host key" in outcome.message
    assert outcome.started is False


async def test_an_unreadable_known_hosts_is_a_transport_error(
    sshd_loopback: SshdServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    transport = transport_for(sshd_loopback, blocker / "known_hosts")
    outcome = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert outcome.reason is FailureReason.TRANSPORT_ERROR
    assert "cannot read known_hosts" in outcome.message


async def test_without_client_keys_default_keys_and_agent_are_tried(
    sshd_loopback: SshdServer,
    loopback_known_hosts: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # An empty HOME and no agent: no key to offer, so auth fails precisely.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    transport = SshTransport(known_hosts=str(loopback_known_hosts), username="root")
    outcome = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert outcome.reason is FailureReason.AUTH_FAILED

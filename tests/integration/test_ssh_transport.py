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
from tests.fleet.sshd import SshdServer, free_port, generate_key
from tests.integration.ssh_helpers import Collect, read_pid, sh, wait_gone


def host_of(server: SshdServer) -> Host:
    addr, port = server.listen[0]
    return Host("loopback", address=addr, port=port, user="root")


def transport_for(server: SshdServer, known_hosts: Path, **kwargs: object) -> SshTransport:
    return SshTransport(
        known_hosts=str(known_hosts),
        client_keys=[str(server.client_key)],
        connect_timeout=5,
        **kwargs,  # type: ignore[arg-type]
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


# -- host keys and auth --------------------------------------------------


async def test_strict_refuses_a_changed_host_key(sshd_loopback: SshdServer, tmp_path: Path) -> None:
    other = tmp_path / "other_host_key"
    addr, port = sshd_loopback.listen[0]
    known = tmp_path / "kh"
    known.write_text(f"[{addr}]:{port} {generate_key(other)}\n")
    outcome = await transport_for(sshd_loopback, known).run_plan(
        host_of(sshd_loopback), Plan.command("true"), Collect()
    )
    assert outcome.reason is FailureReason.HOST_KEY_MISMATCH
    assert outcome.state is HostRunState.FAILED and outcome.started is False


async def test_strict_refuses_an_unknown_host(sshd_loopback: SshdServer, tmp_path: Path) -> None:
    known = tmp_path / "kh"
    outcome = await transport_for(sshd_loopback, known).run_plan(
        host_of(sshd_loopback), Plan.command("true"), Collect()
    )
    assert outcome.reason is FailureReason.HOST_KEY_UNKNOWN
    assert not known.exists()


async def test_accept_new_records_an_unknown_host_then_trusts_it(
    sshd_loopback: SshdServer, tmp_path: Path
) -> None:
    known = tmp_path / "kh"
    transport = transport_for(sshd_loopback, known, host_key_policy=HostKeyPolicy.ACCEPT_NEW)
    outcome = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    await transport.close()
    assert outcome.state is HostRunState.SUCCEEDED
    assert known.read_text() == sshd_loopback.known_hosts_lines()
    strict = transport_for(sshd_loopback, known)
    again = await strict.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    await strict.close()
    assert again.state is HostRunState.SUCCEEDED


async def test_accept_new_still_refuses_a_changed_key(
    sshd_loopback: SshdServer, tmp_path: Path
) -> None:
    addr, port = sshd_loopback.listen[0]
    known = tmp_path / "kh"
    known.write_text(f"[{addr}]:{port} {generate_key(tmp_path / 'other')}\n")
    before = known.read_text()
    transport = transport_for(sshd_loopback, known, host_key_policy=HostKeyPolicy.ACCEPT_NEW)
    outcome = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert outcome.reason is FailureReason.HOST_KEY_MISMATCH
    assert known.read_text() == before


async def test_wrong_client_key_is_auth_failed(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong_key"
    generate_key(wrong)
    transport = SshTransport(known_hosts=str(loopback_known_hosts), client_keys=[str(wrong)])
    outcome = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert outcome.reason is FailureReason.AUTH_FAILED
    assert outcome.started is False


async def test_host_key_file_overrides_transport_keys(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong_key"
    generate_key(wrong)
    transport = SshTransport(known_hosts=str(loopback_known_hosts), client_keys=[str(wrong)])
    addr, port = sshd_loopback.listen[0]
    host = Host("k", addr, port, user="root", key_file=str(sshd_loopback.client_key))
    outcome = await transport.run_plan(host, Plan.command("true"), Collect())
    await transport.close()
    assert outcome.state is HostRunState.SUCCEEDED

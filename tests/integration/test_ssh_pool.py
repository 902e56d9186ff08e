"""The SSH connection pool under races, against a real OpenSSH sshd.

Handshakes are held open on demand by a :class:`HoldProxy` in front of the
sshd, so each race is staged exactly: runs waiting on one handshake, a waiter
cancelled, the handshake dying or the transport closed while it is pending.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from muster.domain.hosts import Host
from muster.domain.plans import Plan
from muster.domain.states import FailureReason, HostRunState
from muster.transports.base import TransportOutcome
from muster.transports.ssh import SshTransport
from tests.fleet.hold_proxy import HoldProxy
from tests.fleet.sshd import SshdServer
from tests.integration.ssh_helpers import (
    Collect,
    host_of,
    read_pid,
    sh,
    transport_for,
    wait_gone,
)

WITHIN = 20.0


@pytest.fixture
async def proxy(sshd_loopback: SshdServer) -> AsyncIterator[HoldProxy]:
    async with HoldProxy(sshd_loopback.listen[0]) as p:
        yield p


@pytest.fixture
async def held(
    sshd_loopback: SshdServer, proxy: HoldProxy, tmp_path: Path
) -> AsyncIterator[SshTransport]:
    """A transport whose host is the sshd behind ``proxy``."""
    known = sshd_loopback.write_known_hosts(tmp_path / "kh", [("127.0.0.1", proxy.port)])
    transport = transport_for(sshd_loopback, known)
    try:
        yield transport
    finally:
        await transport.close()


@pytest.fixture
def own_sshd() -> Iterator[SshdServer]:
    """An sshd of the test's own, which it may stop and restart."""
    with SshdServer() as server:
        yield server


def proxied(proxy: HoldProxy) -> Host:
    return Host("held", "127.0.0.1", proxy.port, user="root")


def start_runs(
    transport: SshTransport, host: Host, count: int, command: str = "true"
) -> list[asyncio.Task[TransportOutcome]]:
    return [
        asyncio.create_task(transport.run_plan(host, Plan.command(command), Collect()))
        for _ in range(count)
    ]


async def until(condition: object, within: float = WITHIN) -> None:
    """Wait for ``condition()`` to hold; fail past ``within`` seconds."""
    assert callable(condition)
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.01)


# -- runs waiting on one handshake ----------------------------------------


async def test_runs_waiting_on_one_handshake_share_its_connection(
    held: SshTransport, proxy: HoldProxy
) -> None:
    runs = start_runs(held, proxied(proxy), 3)
    async with asyncio.timeout(WITHIN):
        await proxy.accepted.wait()
    proxy.release()
    outcomes = await asyncio.gather(*runs)
    assert [o.state for o in outcomes] == [HostRunState.SUCCEEDED] * 3
    assert proxy.connections == 1
    assert held.connections_opened == 1


async def test_a_cancelled_waiter_does_not_abort_the_handshake_for_the_others(
    held: SshTransport, proxy: HoldProxy
) -> None:
    first, second = start_runs(held, proxied(proxy), 2, "echo still here")
    async with asyncio.timeout(WITHIN):
        await proxy.accepted.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    proxy.release()
    outcome = await second
    assert outcome.state is HostRunState.SUCCEEDED
    assert held.connections_opened == 1


async def test_a_handshake_whose_waiters_were_all_cancelled_serves_the_next_run(
    held: SshTransport, proxy: HoldProxy
) -> None:
    runs = start_runs(held, proxied(proxy), 2)
    async with asyncio.timeout(WITHIN):
        await proxy.accepted.wait()
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    proxy.release()
    # Nobody waits for it any more, but the connection is made and pooled...
    await until(lambda: held.connections_opened == 1)
    assert held.pooled_connections == 1
    # ...so the next run needs no handshake of its own.
    outcome = await held.run_plan(proxied(proxy), Plan.command("true"), Collect())
    assert outcome.state is HostRunState.SUCCEEDED
    assert proxy.connections == 1
    assert held.connections_opened == 1


async def test_a_handshake_dying_fails_every_run_waiting_on_it_then_the_next_run_reconnects(
    held: SshTransport, proxy: HoldProxy
) -> None:
    runs = start_runs(held, proxied(proxy), 2)
    async with asyncio.timeout(WITHIN):
        await proxy.accepted.wait()
    proxy.cut()
    outcomes = await asyncio.gather(*runs)
    for outcome in outcomes:
        assert outcome.state is HostRunState.FAILED
        assert outcome.reason is FailureReason.CONNECTION_LOST
        assert outcome.started is False
    assert held.pooled_connections == 0
    # The failed handshake is not left behind for later runs to wait on.
    proxy.release()
    outcome = await held.run_plan(proxied(proxy), Plan.command("true"), Collect())
    assert outcome.state is HostRunState.SUCCEEDED, outcome.message
    assert proxy.connections == 2


# -- close() while a handshake or a plan is in progress ---------------------


async def test_close_during_a_handshake_ends_the_waiting_runs_as_cancelled_and_leaks_nothing(
    held: SshTransport, proxy: HoldProxy
) -> None:
    runs = start_runs(held, proxied(proxy), 2)
    async with asyncio.timeout(WITHIN):
        await proxy.accepted.wait()
    await held.close()
    async with asyncio.timeout(WITHIN):
        outcomes = await asyncio.gather(*runs)
    for outcome in outcomes:
        assert outcome.state is HostRunState.CANCELLED
        assert outcome.reason is FailureReason.CANCELLED
        assert outcome.started is False
        assert f"127.0.0.1:{proxy.port}" in outcome.message
        assert "closed while connecting" in outcome.message
    # The half-made connection was closed, not left to the garbage collector.
    async with asyncio.timeout(WITHIN):
        await proxy.client_gone.wait()
    assert held.connections_opened == 0
    assert held.pooled_connections == 0


async def test_close_during_a_plan_loses_the_connection_and_stops_the_remote_command(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    transport = transport_for(sshd_loopback, loopback_known_hosts)
    pidfile = tmp_path / "sleep.pid"
    plan = Plan(commands=(sh(f"sleep 30 & echo $! > {pidfile}; wait", timeout=60),), env={"A": "b"})
    run = asyncio.create_task(transport.run_plan(host_of(sshd_loopback), plan, Collect()))
    pid = await read_pid(pidfile)
    await transport.close()
    async with asyncio.timeout(WITHIN):
        outcome = await run
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.CONNECTION_LOST
    assert outcome.started is True
    assert outcome.message == "channel closed without an exit status"
    assert await wait_gone(pid)
    assert transport.pooled_connections == 0


# -- connections that die -------------------------------------------------


async def test_sshd_dying_mid_command_is_connection_lost_after_the_start(
    own_sshd: SshdServer, tmp_path: Path
) -> None:
    transport = transport_for(own_sshd, own_sshd.write_known_hosts(tmp_path / "kh"))
    sink = Collect(wake_on="running")
    run = asyncio.create_task(
        transport.run_plan(host_of(own_sshd), Plan.command("echo running; exec sleep 30"), sink)
    )
    async with asyncio.timeout(WITHIN):
        await sink.seen.wait()
    own_sshd.stop()  # the session processes die with it
    async with asyncio.timeout(WITHIN):
        outcome = await run
    await transport.close()
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.CONNECTION_LOST
    assert outcome.started is True
    assert "ConnectionLost" in outcome.message


async def test_a_pooled_connection_that_dies_while_idle_leaves_the_pool_at_once(
    own_sshd: SshdServer, tmp_path: Path
) -> None:
    transport = transport_for(own_sshd, own_sshd.write_known_hosts(tmp_path / "kh"))
    host = host_of(own_sshd)
    first = await transport.run_plan(host, Plan.command("true"), Collect())
    assert first.state is HostRunState.SUCCEEDED
    own_sshd.stop()
    own_sshd.start()
    await until(lambda: transport.pooled_connections == 0)
    outcome = await transport.run_plan(host, Plan.command("true"), Collect())
    await transport.close()
    assert outcome.state is HostRunState.SUCCEEDED
    assert transport.connections_opened == 2


async def test_a_stale_pooled_connection_whose_retry_cannot_connect_is_unreachable(
    own_sshd: SshdServer, tmp_path: Path
) -> None:
    transport = transport_for(own_sshd, own_sshd.write_known_hosts(tmp_path / "kh"))
    host = host_of(own_sshd)
    first = await transport.run_plan(host, Plan.command("true"), Collect())
    assert first.state is HostRunState.SUCCEEDED
    # The sshd is gone for good: the pooled connection is dead (the client has not
    # noticed yet) and the retry on a new connection is refused.
    own_sshd.stop()
    outcome = await transport.run_plan(host, Plan.command("true"), Collect())
    await transport.close()
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.UNREACHABLE
    assert outcome.started is False
    assert transport.pooled_connections == 0


async def test_a_host_refusing_every_channel_fails_after_one_connection_of_its_own(
    tmp_path: Path,
) -> None:
    # MaxSessions 0: sshd authenticates, then refuses every session channel.
    with SshdServer(max_sessions=0) as server:
        transport = transport_for(server, server.write_known_hosts(tmp_path / "kh"))
        outcome = await transport.run_plan(host_of(server), Plan.command("true"), Collect())
        await transport.close()
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.TRANSPORT_ERROR
    assert outcome.started is False
    assert outcome.message.startswith("ChannelOpenError")
    # The pooled connection, then one of the plan's own, which was not kept.
    assert transport.connections_opened == 2
    assert transport.pooled_connections == 0

"""SshTransport against real sshd hosts in network namespaces, failing on cue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from muster.domain.hosts import Host
from muster.domain.plans import Plan
from muster.domain.states import FailureReason, HostRunState
from muster.transports.ssh import SshTransport
from tests.fleet.netns import NetnsHost
from tests.integration.ssh_helpers import Collect

pytestmark = pytest.mark.netns


def host_of(h: NetnsHost) -> Host:
    return Host(h.name, address=h.addr, port=h.port, user="root")


@pytest.fixture
async def ssh(netns_known_hosts: Path, fleet_client_key: Path) -> AsyncIterator[SshTransport]:
    transport = SshTransport(
        known_hosts=str(netns_known_hosts),
        client_keys=[str(fleet_client_key)],
        connect_timeout=1.5,
        keepalive_interval=0.5,
        keepalive_count_max=2,
    )
    try:
        yield transport
    finally:
        await transport.close()


async def test_fleet_runs_concurrently(ssh: SshTransport, netns_fleet: list[NetnsHost]) -> None:
    sinks = [Collect() for _ in netns_fleet]
    outcomes = await asyncio.gather(
        *(
            ssh.run_plan(host_of(h), Plan.command("ip -4 -o addr show scope global"), s)
            for h, s in zip(netns_fleet, sinks, strict=True)
        )
    )
    assert [o.state for o in outcomes] == [HostRunState.SUCCEEDED] * 3
    # Each command really ran inside its own namespace.
    for h, s in zip(netns_fleet, sinks, strict=True):
        assert h.addr in s.stdout


async def test_stopped_sshd_is_refused_as_unreachable(
    ssh: SshTransport, netns_fleet: list[NetnsHost]
) -> None:
    netns_fleet[0].stop_sshd()
    outcome = await ssh.run_plan(host_of(netns_fleet[0]), Plan.command("true"), Collect())
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.UNREACHABLE
    assert outcome.started is False
    assert "ConnectionRefusedError" in outcome.message


async def test_silently_dropped_packets_are_a_connect_timeout(
    ssh: SshTransport, netns_fleet: list[NetnsHost]
) -> None:
    netns_fleet[1].blackhole()
    outcome = await ssh.run_plan(host_of(netns_fleet[1]), Plan.command("true"), Collect())
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.CONNECT_TIMEOUT
    assert outcome.started is False


async def test_blackhole_route_is_unreachable_at_once(
    ssh: SshTransport, netns_fleet: list[NetnsHost]
) -> None:
    netns_fleet[2].blackhole_route()
    outcome = await ssh.run_plan(host_of(netns_fleet[2]), Plan.command("true"), Collect())
    assert outcome.reason is FailureReason.UNREACHABLE
    assert outcome.started is False


async def test_link_down_before_connect_fails_without_starting(
    netns_known_hosts: Path, fleet_client_key: Path, netns_fleet: list[NetnsHost]
) -> None:
    netns_fleet[0].link_down()
    transport = SshTransport(
        known_hosts=str(netns_known_hosts), client_keys=[str(fleet_client_key)], connect_timeout=6
    )
    outcome = await transport.run_plan(host_of(netns_fleet[0]), Plan.command("true"), Collect())
    # ARP gives up after ~3 s: EHOSTUNREACH, well before the connect timeout.
    assert outcome.reason is FailureReason.UNREACHABLE
    assert outcome.started is False


async def test_slow_host_still_succeeds(
    netns_fleet: list[NetnsHost], fleet_client_key: Path, tmp_path: Path
) -> None:
    h = netns_fleet[0]
    assert h.sshd is not None
    proxy_host, proxy_port = h.slow(300)
    known = h.sshd.write_known_hosts(tmp_path / "kh", [(proxy_host, proxy_port)])
    transport = SshTransport(
        known_hosts=str(known), client_keys=[str(fleet_client_key)], connect_timeout=20
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    sink = Collect()
    outcome = await transport.run_plan(
        Host("slow", proxy_host, proxy_port, user="root"), Plan.command("echo slow-ok"), sink
    )
    elapsed = loop.time() - started
    await transport.close()
    assert outcome.state is HostRunState.SUCCEEDED
    assert sink.stdout == "slow-ok\n"
    # The handshake and the command each crossed the 300 ms link several times.
    assert elapsed >= 0.6


async def test_host_cut_off_mid_command_is_connection_lost_others_finish(
    ssh: SshTransport, netns_fleet: list[NetnsHost]
) -> None:
    victim, *others = netns_fleet
    victim_sink = Collect(wake_on="started")
    victim_run = asyncio.create_task(
        ssh.run_plan(
            host_of(victim), Plan.command("echo started; sleep 30", timeout=60), victim_sink
        )
    )
    async with asyncio.timeout(10):
        await victim_sink.seen.wait()
    other_sinks = [Collect() for _ in others]
    other_runs = [
        asyncio.create_task(ssh.run_plan(host_of(h), Plan.command("sleep 1; echo fine"), s))
        for h, s in zip(others, other_sinks, strict=True)
    ]
    victim.link_down()
    async with asyncio.timeout(20):
        lost = await victim_run
        finished = await asyncio.gather(*other_runs)
    assert lost.state is HostRunState.FAILED
    assert lost.reason is FailureReason.CONNECTION_LOST
    assert lost.started is True
    assert [o.state for o in finished] == [HostRunState.SUCCEEDED] * 2
    assert [s.stdout for s in other_sinks] == ["fine\n"] * 2

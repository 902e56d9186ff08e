"""The dispatcher over the real ssh transport, against the simulated fleet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from muster.domain.executions import Execution
from muster.domain.hosts import Host, TransportKind
from muster.domain.plans import Plan, PlanCommand, PlanFile
from muster.domain.secret import Secret
from muster.domain.states import ExecutionStatus, FailureReason, HostRunState
from muster.engine.dispatcher import Dispatcher, DispatchPolicy
from muster.testing.simfleet import SimFleet
from muster.transports.ssh import SshTransport


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[SimFleet]:
    async with SimFleet(
        200, base_address="127.77.4.1", state_dir=tmp_path, groups=("web", "db", "cache")
    ) as f:
        yield f


@pytest.fixture
async def transport(fleet: SimFleet) -> AsyncIterator[SshTransport]:
    t = SshTransport(
        known_hosts=str(fleet.known_hosts_path),
        client_keys=[str(fleet.client_key_path)],
        username="root",
    )
    yield t
    await t.close()


async def test_two_hundred_hosts_all_succeed(fleet: SimFleet, transport: SshTransport) -> None:
    hosts = fleet.hosts()
    execution = Execution.create(id="e200", description="command", hosts=hosts)
    dispatcher = Dispatcher({TransportKind.SSH: transport}, DispatchPolicy(forks=50, per_group=20))
    plan = Plan.command('echo "hi $MUSTER_SIM_HOST"')
    result = await dispatcher.run(execution, lambda _h: plan, hosts)
    failed = {
        n: r.message for n, r in result.host_runs.items() if r.state is not HostRunState.SUCCEEDED
    }
    assert failed == {}
    assert result.status is ExecutionStatus.SUCCEEDED
    assert all(r.stdout == f"hi {n}\n" for n, r in result.host_runs.items())
    assert transport.connections_opened == 200


async def test_driver_plan_with_files_secrets_and_events(
    fleet: SimFleet, transport: SshTransport, tmp_path: Path
) -> None:
    hosts = fleet.hosts()[:5]
    target = tmp_path / "out"
    target.mkdir()

    def plan_for(host: Host) -> Plan:
        script = f"{target}/{host.name}.sh"
        return Plan(
            files=(
                PlanFile(
                    script, 'echo "token=$TOKEN"\necho \'@@{"host": "\'"$MUSTER_SIM_HOST"\'"}\'\n'
                ),
            ),
            commands=(
                PlanCommand(("/bin/sh", script), timeout=30),
                PlanCommand(("/bin/sh", "-c", "echo done >&2"), timeout=30, ignore_errors=True),
            ),
            env={"TOKEN": Secret("tok-123-secret")},
        )

    execution = Execution.create(id="eplan", description="script", hosts=hosts)
    result = await Dispatcher({TransportKind.SSH: transport}).run(execution, plan_for, hosts)
    assert result.status is ExecutionStatus.SUCCEEDED, {
        n: (r.message, r.stderr) for n, r in result.host_runs.items()
    }
    for host in hosts:
        run = result.host_runs[host.name]
        assert "token=***\n" in run.stdout
        assert "tok-123" not in run.stdout + run.stderr
        assert run.events == [{"host": host.name}]
        assert "done" in run.stderr


async def test_missing_shell_and_failures_are_recorded(
    fleet: SimFleet, transport: SshTransport
) -> None:
    good, bad = fleet.hosts()[:2]
    zsh_only = Host("zsh-only", address=good.address, port=good.port, shells=("zsh",))
    hosts = [good, bad, zsh_only]
    execution = Execution.create(id="emix", description="cmd", hosts=hosts)

    def plan_for(host: Host) -> Plan:
        return Plan.command("exit 4" if host is bad else "true")

    result = await Dispatcher({TransportKind.SSH: transport}).run(
        execution, plan_for, hosts, required_shell="bash"
    )
    assert result.host_runs[good.name].state is HostRunState.SUCCEEDED
    failed = result.host_runs[bad.name]
    assert (failed.state, failed.exit_code) == (HostRunState.FAILED, 4)
    assert result.host_runs["zsh-only"].reason is FailureReason.SHELL_UNAVAILABLE
    assert result.status is ExecutionStatus.FAILED

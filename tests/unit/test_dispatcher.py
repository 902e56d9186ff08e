"""Dispatcher: limits, spacing, skips, cancellation, masking, listener order."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from muster.domain.executions import Execution, HostRun
from muster.domain.hosts import Host, TransportKind
from muster.domain.plans import Plan
from muster.domain.secret import Secret
from muster.domain.states import ExecutionStatus, FailureReason, HostRunState
from muster.engine.dispatcher import Dispatcher, DispatchPolicy, ExecutionListener
from muster.testing import ScriptedRun, ScriptedTransport
from muster.transports.base import Stream, TransportOutcome

PLAN = Plan.command("echo hi")


class Recorder(ExecutionListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def on_state(self, execution: Execution, host_run: HostRun) -> None:
        self.events.append((host_run.host, "state", host_run.state.value))

    def on_output(self, execution: Execution, host_run: HostRun, stream: Stream, text: str) -> None:
        self.events.append((host_run.host, stream.value, text))


def _hosts(n: int, **kw: Any) -> list[Host]:
    return [Host(f"h{i:03d}", **kw) for i in range(n)]


async def _run(
    hosts: list[Host],
    transport: ScriptedTransport,
    policy: DispatchPolicy | None = None,
    listener: ExecutionListener | None = None,
    plans: Any = None,
    required_shell: str | None = None,
) -> Execution:
    execution = Execution.create(id="e", description="test", hosts=hosts)
    dispatcher = Dispatcher({TransportKind.SSH: transport}, policy, listener)
    return await dispatcher.run(
        execution, plans or (lambda _h: PLAN), hosts, required_shell=required_shell
    )


async def test_every_host_runs_once_and_succeeds() -> None:
    transport = ScriptedTransport()
    hosts = _hosts(25)
    execution = await _run(hosts, transport, DispatchPolicy(forks=4))
    assert sorted(transport.started) == [h.name for h in hosts]
    assert execution.status is ExecutionStatus.SUCCEEDED
    assert len(execution.successful_hosts) == 25
    for run in execution.host_runs.values():
        assert run.started_at is not None and run.finished_at is not None
        assert run.started_at <= run.finished_at
        assert run.exit_code == 0


async def test_forks_bounds_concurrency() -> None:
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(yields=5))
    await _run(_hosts(30), transport, DispatchPolicy(forks=3))
    assert transport.max_running == 3


async def test_worker_pool_not_one_task_per_host() -> None:
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(yields=1))
    execution = await _run(_hosts(3000), transport, DispatchPolicy(forks=20))
    assert len(execution.successful_hosts) == 3000
    # the test task + 20 workers (+ at most a notifier in flight)
    assert transport.max_tasks <= 20 + 3


async def test_per_group_limit_counts_each_group_of_a_host() -> None:
    hosts = (
        [Host(f"w{i}", groups=("web",)) for i in range(8)]
        + [Host(f"d{i}", groups=("db",)) for i in range(8)]
        + [Host(f"b{i}", groups=("web", "db")) for i in range(4)]
        + [Host(f"n{i}") for i in range(4)]
    )
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(yields=6))
    execution = await _run(hosts, transport, DispatchPolicy(forks=10, per_group=2))
    assert execution.status is ExecutionStatus.SUCCEEDED
    assert transport.max_running_per_group == {"web": 2, "db": 2}
    # ungrouped hosts are bound only by forks
    assert transport.max_running > 4


async def test_per_group_keeps_other_groups_moving() -> None:
    web_gate = asyncio.Event()
    hosts = [Host(f"w{i}", groups=("web",)) for i in range(3)] + [
        Host(f"d{i}", groups=("db",)) for i in range(3)
    ]

    def script(host: Host, _plan: Plan) -> ScriptedRun:
        return ScriptedRun(gate=web_gate if "web" in host.groups else None)

    transport = ScriptedTransport(script)
    task = asyncio.ensure_future(_run(hosts, transport, DispatchPolicy(forks=3, per_group=1)))
    # one web host is stuck; all db hosts must still get through
    async with asyncio.timeout(5):
        while sum(n.startswith("d") for n in transport.started) < 3:
            await asyncio.sleep(0)
    assert [n for n in transport.started if n.startswith("w")] == ["w0"]
    web_gate.set()
    execution = await task
    assert execution.status is ExecutionStatus.SUCCEEDED


async def test_delay_spaces_host_starts() -> None:
    transport = ScriptedTransport()
    await _run(_hosts(4), transport, DispatchPolicy(forks=4, delay=0.05))
    times = [transport.start_times[n] for n in transport.started]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    # Starts are spaced from the previous start as it happened; what lies between
    # leaving the spacer and reaching the transport is a few microseconds of work.
    assert all(g >= 0.05 - 0.005 for g in gaps), gaps


async def test_hosts_without_the_shell_are_skipped_never_dispatched() -> None:
    hosts = [Host("a"), Host("b", shells=("sh", "dash")), Host("c", shells=("zsh",))]
    recorder = Recorder()
    transport = ScriptedTransport()
    execution = await _run(hosts, transport, listener=recorder, required_shell="zsh")
    assert transport.started == ["c"]
    a = execution.host_runs["a"]
    assert a.state is HostRunState.SKIPPED
    assert a.reason is FailureReason.SHELL_UNAVAILABLE
    assert "zsh" in a.message and "bash, sh" in a.message
    assert "sh, dash" in execution.host_runs["b"].message
    assert execution.status is ExecutionStatus.SUCCEEDED
    assert execution.skipped_hosts == ["a", "b"]
    assert ("a", "state", "skipped") in recorder.events


async def test_host_of_unconfigured_transport_fails_before_start() -> None:
    transport = ScriptedTransport()
    hosts = [Host("a"), Host("agent1", transport=TransportKind.AGENT)]
    execution = await _run(hosts, transport)
    run = execution.host_runs["agent1"]
    assert run.state is HostRunState.FAILED and run.started_at is None
    assert run.reason is FailureReason.TRANSPORT_ERROR
    assert "agent" in run.message
    assert transport.started == ["a"]


async def test_outcomes_and_listener_order() -> None:
    def script(host: Host, _plan: Plan) -> ScriptedRun:
        if host.name == "bad":
            return ScriptedRun(
                output=[(Stream.STDERR, "boom\n")],
                outcome=TransportOutcome(
                    HostRunState.FAILED,
                    exit_code=2,
                    reason=FailureReason.COMMAND_FAILED,
                    message="exit code 2",
                ),
            )
        return ScriptedRun(output=[(Stream.STDOUT, "hi\n")])

    recorder = Recorder()
    execution = await _run([Host("ok"), Host("bad")], ScriptedTransport(script), listener=recorder)
    assert execution.status is ExecutionStatus.FAILED
    assert execution.failed_hosts == ["bad"]
    bad = execution.host_runs["bad"]
    assert (bad.exit_code, bad.reason, bad.stderr) == (2, FailureReason.COMMAND_FAILED, "boom\n")
    for name, text, stream in (("ok", "hi\n", "stdout"), ("bad", "boom\n", "stderr")):
        mine = [e for e in recorder.events if e[0] == name]
        assert mine[0] == (name, "state", "running")
        assert mine[1] == (name, stream, text)
        assert mine[2][1] == "state" and mine[2][2] in ("succeeded", "failed")
        assert len(mine) == 3


async def test_output_is_masked_before_anyone_sees_it() -> None:
    plan = Plan(commands=PLAN.commands, env={"TOKEN": Secret("s3cr3t-value")})
    chunks = [(Stream.STDOUT, "token=s3cr"), (Stream.STDOUT, '3t-value\n@@{"t": "s3cr3t-value"}\n')]
    recorder = Recorder()
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(output=chunks))
    execution = await _run([Host("a")], transport, listener=recorder, plans={"a": plan})
    run = execution.host_runs["a"]
    assert run.stdout == 'token=***\n@@{"t": "***"}\n'
    assert run.events == [{"t": "***"}]
    seen = "".join(text for _h, kind, text in recorder.events if kind == "stdout")
    assert seen == run.stdout
    assert "s3cr3t" not in repr(recorder.events)


async def test_output_is_bounded_per_host() -> None:
    chunks = [(Stream.STDOUT, "x" * 1000)] * 50
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(output=chunks))
    execution = await _run([Host("a")], transport, DispatchPolicy(output_cap=4096))
    run = execution.host_runs["a"]
    assert run.stdout_truncated
    assert run.stdout.startswith("x" * 4096 + "\n[muster: output truncated, 45904 more bytes")
    assert run.stdout_bytes == 50_000


async def test_a_raising_transport_or_plan_fails_only_that_host() -> None:
    def script(host: Host, _plan: Plan) -> ScriptedRun:
        return ScriptedRun(raises=RuntimeError("bug") if host.name == "t" else None)

    def plans(host: Host) -> Plan:
        if host.name == "p":
            raise ValueError("no plan for p")
        return PLAN

    execution = await _run(
        [Host("ok"), Host("t"), Host("p")], ScriptedTransport(script), plans=plans
    )
    assert execution.host_runs["ok"].state is HostRunState.SUCCEEDED
    t, p = execution.host_runs["t"], execution.host_runs["p"]
    assert t.state is HostRunState.FAILED and "bug" in t.message
    assert p.state is HostRunState.FAILED and "no plan for p" in p.message
    assert p.started_at is None


async def test_a_failing_listener_does_not_strand_runs() -> None:
    class Broken(ExecutionListener):
        def on_state(self, execution: Execution, host_run: HostRun) -> None:
            raise RuntimeError("listener bug")

    execution = await _run(_hosts(3), ScriptedTransport(), listener=Broken())
    assert execution.status is ExecutionStatus.SUCCEEDED


async def test_cancel_stops_unstarted_and_cancels_running() -> None:
    gate = asyncio.Event()
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(gate=gate))
    hosts = _hosts(10)
    execution = Execution.create(id="e", description="t", hosts=hosts)
    dispatcher = Dispatcher({TransportKind.SSH: transport}, DispatchPolicy(forks=2))
    task = asyncio.ensure_future(dispatcher.run(execution, {h.name: PLAN for h in hosts}, hosts))
    await transport.wait_running(2)
    dispatcher.cancel()
    result = await task
    assert result.status is ExecutionStatus.CANCELLED
    assert sorted(transport.cancelled) == sorted(transport.started) == ["h000", "h001"]
    running = [r for r in result.host_runs.values() if r.started_at is not None]
    assert {r.message for r in running} == {"cancelled while running"}
    unstarted = [r for r in result.host_runs.values() if r.started_at is None]
    assert len(unstarted) == 8
    assert all(r.state is HostRunState.CANCELLED for r in unstarted)
    assert all(r.reason is FailureReason.CANCELLED for r in result.host_runs.values())


async def test_cancel_during_start_delay() -> None:
    transport = ScriptedTransport()
    hosts = _hosts(3)
    execution = Execution.create(id="e", description="t", hosts=hosts)
    dispatcher = Dispatcher({TransportKind.SSH: transport}, DispatchPolicy(forks=3, delay=30))
    task = asyncio.ensure_future(dispatcher.run(execution, lambda _h: PLAN, hosts))
    async with asyncio.timeout(5):
        while not execution.host_runs["h000"].terminal:
            await asyncio.sleep(0)
    dispatcher.cancel()
    result = await task
    assert transport.started == ["h000"]
    assert [r.state for r in result.host_runs.values()] == [
        HostRunState.SUCCEEDED,
        HostRunState.CANCELLED,
        HostRunState.CANCELLED,
    ]


async def test_cancelling_the_caller_cancels_hosts_and_propagates() -> None:
    gate = asyncio.Event()
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(gate=gate))
    hosts = _hosts(5)
    execution = Execution.create(id="e", description="t", hosts=hosts)
    dispatcher = Dispatcher({TransportKind.SSH: transport}, DispatchPolicy(forks=2))
    task = asyncio.ensure_future(dispatcher.run(execution, lambda _h: PLAN, hosts))
    await transport.wait_running(2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(r.state is HostRunState.CANCELLED for r in execution.host_runs.values())
    assert len(transport.cancelled) == 2


def test_policy_rejects_nonsense() -> None:
    for kwargs in ({"forks": 0}, {"per_group": 0}, {"delay": -1.0}):
        with pytest.raises(ValueError):
            DispatchPolicy(**kwargs)


def test_output_budget_shrinks_the_per_host_cap_with_many_hosts() -> None:
    policy = DispatchPolicy(output_cap=1024 * 1024, output_budget=100 * 1024 * 1024)
    assert policy.stream_cap(10) == 1024 * 1024
    assert policy.stream_cap(1000) == 100 * 1024 * 1024 // 2000
    assert policy.stream_cap(10**7) == policy.min_output_cap


async def test_many_hosts_share_the_output_budget() -> None:
    chunks = [(Stream.STDOUT, "y" * 500)] * 4
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(output=chunks))
    policy = DispatchPolicy(output_cap=10_000, output_budget=40_000, min_output_cap=100)
    execution = await _run(_hosts(40), transport, policy)
    for run in execution.host_runs.values():
        assert run.stdout_truncated and run.stdout_bytes == 2000
        assert run.stdout.startswith("y" * 500 + "\n[muster: output truncated, 1500 more")

"""The one host executor: preflight, start, capture, outcome, cancel, for every face."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.plans import Plan
from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState
from muster.engine.executor import (
    HostResult,
    PlanFactory,
    RunControl,
    execute_host,
    result_of,
)
from muster.errors import ValidationError
from muster.testing import ScriptedRun, ScriptedTransport
from muster.transports.base import OutputSink, Stream, Transport, TransportOutcome

S = HostRunState
R = FailureReason
HOST = Host("web1")
PLAN = Plan.command("echo hi")


class Recorder:
    """Records what the executor told it, in order; ``allow`` answers ``start()``."""

    def __init__(self, allow: bool = True) -> None:
        self.allow = allow
        self.calls: list[tuple[str, object]] = []
        self.results: list[HostResult] = []

    async def start(self) -> bool:
        self.calls.append(("start", self.allow))
        return self.allow

    def output(self, stream: Stream, text: str) -> None:
        self.calls.append((stream.value, text))

    async def finish(self, result: HostResult) -> None:
        self.calls.append(("finish", result.state.value))
        self.results.append(result)

    def text(self, stream: str) -> str:
        return "".join(str(t) for kind, t in self.calls if kind == stream)


async def _execute(
    transport: Transport | None = None,
    *,
    host: Host | None = HOST,
    plan_for: PlanFactory = lambda _h: PLAN,
    recorder: Recorder | None = None,
    keep_bytes: int = 10_000,
    control: RunControl | None = None,
) -> tuple[HostResult | None, Recorder]:
    rec = recorder or Recorder()
    transports: dict[TransportKind, Transport] = {}
    if transport is not None:
        transports[TransportKind.SSH] = transport
    result = await execute_host(
        "web1", host, transports, plan_for, rec, keep_bytes=keep_bytes, control=control
    )
    return result, rec


def _outcome(
    outcome: TransportOutcome, output: list[tuple[Stream, str]] | None = None
) -> ScriptedTransport:
    return ScriptedTransport(lambda _h, _p: ScriptedRun(output=output or [], outcome=outcome))


async def test_success_records_start_output_and_finish_in_order() -> None:
    transport = _outcome(
        TransportOutcome(S.SUCCEEDED, exit_code=0),
        [(Stream.STDOUT, "hi\n"), (Stream.STDERR, "warn\n")],
    )
    result, rec = await _execute(transport)
    assert result is not None and rec.results == [result]
    assert (result.state, result.exit_code, result.reason) == (S.SUCCEEDED, 0, None)
    assert rec.calls == [
        ("start", True),
        ("stdout", "hi\n"),
        ("stderr", "warn\n"),
        ("finish", "succeeded"),
    ]
    assert result.output is not None and result.output.stdout.text == "hi\n"
    assert transport.started == ["web1"]


@pytest.mark.parametrize(
    ("outcome", "state", "reason"),
    [
        (TransportOutcome(S.FAILED, exit_code=3), S.FAILED, R.COMMAND_FAILED),
        (TransportOutcome(S.FAILED, exit_code=3, reason=R.AUTH_FAILED), S.FAILED, R.AUTH_FAILED),
        (TransportOutcome(S.FAILED), S.FAILED, R.TRANSPORT_ERROR),
        (TransportOutcome(S.TIMED_OUT, message="after 1s"), S.TIMED_OUT, R.TIMED_OUT),
        (TransportOutcome(S.RUNNING), S.FAILED, R.TRANSPORT_ERROR),
        (TransportOutcome(S.FAILED, reason=R.UNREACHABLE, started=False), S.FAILED, R.UNREACHABLE),
    ],
)
async def test_outcomes_map_to_one_state_and_reason(
    outcome: TransportOutcome, state: HostRunState, reason: FailureReason
) -> None:
    result, rec = await _execute(_outcome(outcome))
    assert result is not None
    assert (result.state, result.reason, result.exit_code) == (state, reason, outcome.exit_code)
    assert rec.calls[-1] == ("finish", state.value)
    assert result_of(outcome).reason is reason


async def test_a_raising_transport_is_a_transport_error() -> None:
    transport = ScriptedTransport(
        lambda _h, _p: ScriptedRun(output=[(Stream.STDOUT, "half")], raises=RuntimeError("bug"))
    )
    result, rec = await _execute(transport)
    assert result is not None
    assert (result.state, result.reason) == (S.FAILED, R.TRANSPORT_ERROR)
    assert "RuntimeError('bug')" in result.message
    assert rec.text("stdout") == "half"


async def test_a_deleted_host_fails_before_start() -> None:
    transport = ScriptedTransport()
    result, rec = await _execute(transport, host=None)
    assert result is not None
    assert (result.state, result.reason) == (S.FAILED, R.HOST_DELETED)
    assert "web1" in result.message and "deleted" in result.message
    assert rec.calls == [("finish", "failed")] and transport.started == []


async def test_a_host_without_a_transport_fails_before_start() -> None:
    result, rec = await _execute(None)
    assert result is not None
    assert (result.state, result.reason) == (S.FAILED, R.TRANSPORT_ERROR)
    assert "no ssh transport" in result.message
    assert rec.calls == [("finish", "failed")]


@pytest.mark.parametrize(
    "error", [ValidationError("the pinned script version no longer exists"), KeyError("web1")]
)
async def test_a_plan_that_cannot_be_built_fails_before_start(error: Exception) -> None:
    def plan_for(_host: Host) -> Plan:
        raise error

    transport = ScriptedTransport()
    result, rec = await _execute(transport, plan_for=plan_for)
    assert result is not None
    assert (result.state, result.reason, result.output) == (S.FAILED, R.PLAN_ERROR, None)
    assert result.message.startswith("could not build the plan: ") and str(error) in result.message
    assert rec.calls == [("finish", "failed")] and transport.started == []


async def test_a_refused_start_sends_nothing_and_finishes_nothing() -> None:
    transport = ScriptedTransport()
    result, rec = await _execute(transport, recorder=Recorder(allow=False))
    assert result is None
    assert rec.calls == [("start", False)] and transport.started == []


async def test_output_is_masked_across_chunks_before_the_recorder_hears_it() -> None:
    plan = Plan(commands=PLAN.commands, env={"TOKEN": Secret("s3cr3t-value")})
    chunks = [
        (Stream.STDOUT, "token=s3cr"),
        (Stream.STDOUT, '3t-value\n@@{"t": "s3cr3t-value"}\n'),
        (Stream.STDERR, "err s3cr3t"),
        (Stream.STDERR, '-value\n@@{"not": "an event on stderr"}\n'),
    ]
    transport = _outcome(TransportOutcome(S.SUCCEEDED, exit_code=0), chunks)
    result, rec = await _execute(transport, plan_for=lambda _h: plan)
    assert result is not None and result.output is not None
    assert rec.text("stdout") == 'token=***\n@@{"t": "***"}\n'
    assert rec.text("stderr") == 'err ***\n@@{"not": "an event on stderr"}\n'
    assert "s3cr3t" not in repr(rec.calls)
    assert result.events == [{"t": "***"}]
    assert result.output.stdout.text == rec.text("stdout")


async def test_a_secret_held_back_at_the_end_is_forwarded_before_finish() -> None:
    plan = Plan(commands=PLAN.commands, env={"TOKEN": Secret("abcdef")})
    transport = _outcome(TransportOutcome(S.SUCCEEDED, exit_code=0), [(Stream.STDOUT, "x abc")])
    _result, rec = await _execute(transport, plan_for=lambda _h: plan)
    assert rec.calls[-2:] == [("stdout", "abc"), ("finish", "succeeded")]
    assert rec.text("stdout") == "x abc"


async def test_output_kept_is_bounded_while_the_recorder_hears_it_all() -> None:
    chunks = [(Stream.STDOUT, "x" * 1000)] * 20
    transport = _outcome(TransportOutcome(S.SUCCEEDED, exit_code=0), chunks)
    result, rec = await _execute(transport, keep_bytes=4096)
    assert result is not None and result.output is not None
    out = result.output.stdout
    assert out.truncated and out.total_bytes == 20_000
    assert out.text == "x" * 4096 + "\n[muster: output truncated, 15904 more bytes not stored]\n"
    assert len(rec.text("stdout")) == 20_000


async def test_a_control_cancel_kills_the_command_and_returns_cancelled() -> None:
    gate = asyncio.Event()
    transport = ScriptedTransport(
        lambda _h, _p: ScriptedRun(output=[(Stream.STDOUT, "begun\n")], gate=gate)
    )
    control = RunControl()
    task = asyncio.ensure_future(_execute(transport, control=control))
    await transport.wait_running(1)
    control.cancel("cancelled on request")
    control.cancel("a second reason is ignored")
    result, rec = await task
    assert result is not None
    assert (result.state, result.reason, result.message) == (
        S.CANCELLED,
        R.CANCELLED,
        "cancelled on request",
    )
    assert transport.cancelled == ["web1"]
    assert rec.calls == [("start", True), ("stdout", "begun\n"), ("finish", "cancelled")]
    assert not task.cancelled()


async def test_a_control_cancel_before_send_sends_nothing() -> None:
    control = RunControl()
    control.cancel("worker shutting down")
    transport = ScriptedTransport()
    result, rec = await _execute(transport, control=control)
    assert result is not None
    assert (result.state, result.message) == (S.CANCELLED, "worker shutting down")
    assert transport.started == []
    assert rec.calls == [("start", True), ("finish", "cancelled")]


async def test_a_cancel_from_outside_is_recorded_and_propagates() -> None:
    gate = asyncio.Event()
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(gate=gate))
    rec = Recorder()
    task = asyncio.ensure_future(_execute(transport, recorder=rec, control=RunControl()))
    await transport.wait_running(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(r.state, r.message) for r in rec.results] == [(S.CANCELLED, "cancelled while running")]
    assert transport.cancelled == ["web1"]


async def test_an_outside_cancel_wins_over_a_control_cancel() -> None:
    gate = asyncio.Event()
    transport = ScriptedTransport(lambda _h, _p: ScriptedRun(gate=gate))
    control = RunControl()
    task = asyncio.ensure_future(_execute(transport, control=control))
    await transport.wait_running(1)
    control.cancel("lease lost")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class _Stubborn:
    """A transport that ignores being cancelled and reports success."""

    def __init__(self) -> None:
        self.inside = asyncio.Event()

    async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
        self.inside.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return TransportOutcome(S.SUCCEEDED, exit_code=0)

    async def close(self) -> None:
        return None


async def test_a_transport_that_swallows_the_cancel_keeps_its_outcome() -> None:
    transport = _Stubborn()
    control = RunControl()

    async def run() -> tuple[HostResult | None, int]:
        result, _rec = await _execute(transport, control=control)
        task = asyncio.current_task()
        assert task is not None
        return result, task.cancelling()

    task = asyncio.ensure_future(run())
    await transport.inside.wait()
    control.cancel("stop")
    result, cancelling = await task
    assert result is not None and result.state is S.SUCCEEDED
    assert cancelling == 0  # the request was consumed: later timeouts in the task still work

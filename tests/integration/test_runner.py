"""The in-memory run path (library and CLI) over the real local transport."""

from __future__ import annotations

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.states import ExecutionStatus, FailureReason, HostRunState
from muster.engine.dispatcher import Dispatcher, DispatchPolicy
from muster.engine.runner import command_job, run_job, script_job
from muster.errors import ParameterError
from muster.transports.local import LocalTransport

LOCAL = [Host(name=n, transport=TransportKind.LOCAL) for n in ("alpha", "beta", "café")]


def dispatcher() -> Dispatcher:
    return Dispatcher({TransportKind.LOCAL: LocalTransport()}, DispatchPolicy(forks=4))


async def test_script_job_renders_parameters_per_host() -> None:
    version = ScriptVersion(
        name="greet",
        shell=Shell.BASH,
        body='printf "%s %s|" ${who} ${n}; printf "%s" "$MUSTER_PARAM_TOKEN" | wc -c',
        parameters=(
            ParameterSpec("who", required=True),
            ParameterSpec("n", ParameterType.INTEGER, default=3),
            ParameterSpec("token", ParameterType.SECRET),
        ),
        version=2,
    )
    job = script_job(version, {"who": "a b; $(id)", "token": "hunter22"})
    assert "greet v2" in job.description
    execution = await run_job(dispatcher(), job, LOCAL, execution_id="e1")
    assert execution.status is ExecutionStatus.SUCCEEDED
    for run in execution.host_runs.values():
        assert run.stdout.strip() == "a b; $(id) 3|8"


async def test_bad_parameters_fail_before_any_host() -> None:
    version = ScriptVersion(
        name="x", shell=Shell.SH, body="true", parameters=(ParameterSpec("n", "integer"),)
    )
    with pytest.raises(ParameterError) as info:
        script_job(version, {"n": "two", "ghost": 1})
    assert set(info.value.problems) == {"n", "ghost"}


async def test_command_job_and_missing_shell_skips() -> None:
    execution = await run_job(dispatcher(), command_job("echo $0", timeout=10), LOCAL[:1])
    assert execution.host_runs["alpha"].stdout.strip() == "/bin/sh"

    zsh_only = ScriptVersion(name="z", shell=Shell.ZSH, body="echo hi")
    hosts = [LOCAL[0], Host(name="win", transport=TransportKind.LOCAL, shells=("bash",))]
    execution = await run_job(dispatcher(), script_job(zsh_only), hosts)
    win = execution.host_runs["win"]
    assert win.state is HostRunState.SKIPPED
    assert win.reason is FailureReason.SHELL_UNAVAILABLE


async def test_timeout_is_per_host() -> None:
    execution = await run_job(dispatcher(), command_job("sleep 5", timeout=0.3), LOCAL[:2])
    assert execution.status is ExecutionStatus.TIMED_OUT
    assert {r.state for r in execution.host_runs.values()} == {HostRunState.TIMED_OUT}

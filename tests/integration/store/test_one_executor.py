"""Both faces, one executor: the in-memory Dispatcher and the store-backed Worker
end the same run in the same state, for the same reason, on real local processes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.states import FailureReason, HostRunState
from muster.engine.dispatcher import Dispatcher, DispatchPolicy
from muster.engine.runner import Job, run_job
from muster.store.base import ExecutionKind, HostRunRecord, HostTarget, NewExecution
from muster.store.sqlalchemy_store import SqlStore
from muster.transports.local import LocalTransport
from muster.worker import Worker

from .waiting import wait_until

S = HostRunState
R = FailureReason

COUNT = (ParameterSpec("n", ParameterType.INTEGER),)

#: name -> (body, timeout, parameters, values, expected (state, reason, exit code))
CASES: Mapping[
    str,
    tuple[
        str,
        float,
        tuple[ParameterSpec, ...],
        dict[str, object],
        tuple[HostRunState, FailureReason | None, int | None],
    ],
] = {
    "succeeds": ("echo ok", 30, (), {}, (S.SUCCEEDED, None, 0)),
    "exits non-zero": ("echo no >&2; exit 7", 30, (), {}, (S.FAILED, R.COMMAND_FAILED, 7)),
    "times out": ("sleep 30", 0.5, (), {}, (S.TIMED_OUT, R.TIMED_OUT, None)),
    # A value no plan can be built from (the API would refuse it; a stored one can be stale).
    "plan cannot be built": ("echo ${n}", 30, COUNT, {"n": "two"}, (S.FAILED, R.PLAN_ERROR, None)),
}


def _version(case: str) -> ScriptVersion:
    body, timeout, params, _values, _expected = CASES[case]
    return ScriptVersion(
        name=case.replace(" ", "-"),
        shell=Shell.BASH,
        body=body,
        timeout=timeout,
        parameters=params,
    )


def _local() -> dict[TransportKind, LocalTransport]:
    return {TransportKind.LOCAL: LocalTransport(kill_grace=0.5)}


async def _through_dispatcher(case: str) -> tuple[HostRunState, FailureReason | None, int | None]:
    version = _version(case)
    job = Job(
        description=case,
        shell=version.shell,
        version=version,
        values=CASES[case][3],
        timeout=version.timeout,
    )
    host = Host("one", transport=TransportKind.LOCAL)
    execution = await run_job(Dispatcher(_local(), DispatchPolicy()), job, [host])
    run = execution.host_runs["one"]
    return run.state, run.reason, run.exit_code


async def _through_worker(
    store: SqlStore, case: str
) -> tuple[HostRunState, FailureReason | None, int | None]:
    v = store.save_script(_version(case)).version
    host = store.create_host(Host(name="one", transport=TransportKind.LOCAL))
    ex = store.create_execution(
        NewExecution(
            kind=ExecutionKind.SCRIPT,
            targets=[HostTarget(host.id, host.name)],
            timeout=v.timeout,
            script_id=v.script_id,
            script_version=v.number,
            content_hash=v.content_hash,
            parameters=CASES[case][3],
        )
    )
    run = await _run_worker(store, ex.id)
    return run.state, FailureReason(run.reason) if run.reason else None, run.exit_code


async def _run_worker(store: SqlStore, execution_id: str) -> HostRunRecord:
    worker = Worker(store, _local(), worker_id="w-faces", lease_seconds=5.0, heartbeat_seconds=0.5)
    task = asyncio.create_task(worker.run())
    try:
        rec = await wait_until(
            store,
            execution_id,
            lambda: store.get_execution(execution_id).status.terminal,
            what="execution end",
        )
    finally:
        await worker.stop(grace=5)
        await asyncio.wait_for(task, 10)
    assert rec
    return store.get_execution(execution_id).host_runs[0]


@pytest.fixture
def live_store(engine, vault):  # type: ignore[no-untyped-def]
    s = SqlStore(engine, vault=vault)
    yield s
    s.notifier.close()


@pytest.mark.parametrize("case", list(CASES))
async def test_dispatcher_and_worker_end_a_run_alike(live_store: SqlStore, case: str) -> None:
    expected = CASES[case][4]
    assert await _through_dispatcher(case) == expected
    assert await _through_worker(live_store, case) == expected


async def test_a_host_deleted_after_queueing_fails_as_host_deleted(live_store: SqlStore) -> None:
    store = live_store
    v = store.save_script(_version("succeeds")).version
    host = store.create_host(Host(name="gone", transport=TransportKind.LOCAL))
    ex = store.create_execution(
        NewExecution(
            kind=ExecutionKind.SCRIPT,
            targets=[HostTarget(host.id, host.name)],
            timeout=v.timeout,
            script_id=v.script_id,
            script_version=v.number,
            content_hash=v.content_hash,
        )
    )
    store.delete_host(host.id)
    run = await _run_worker(store, ex.id)
    assert (run.state, run.reason, run.started_at) == (S.FAILED, "host_deleted", None)
    assert "gone" in (run.message or "")

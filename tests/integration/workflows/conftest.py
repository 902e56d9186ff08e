"""The ``workflow_engine`` fixture: one interface over every face that runs workflows.

Test bodies in this package talk to a :class:`WorkflowHarness` only, so the same
body runs on each engine named in :data:`ENGINES`. The in-process engine
(:class:`muster.engine.workflow.WorkflowEngine`) runs host steps through the
real local transport on two hosts, ``h1`` (group ``web``) and ``h2`` (group
``db``); the server face adds its own harness to ``ENGINES`` (same hosts and
groups, real worker and store).

Definitions in these tests give no targets unless a test is about targets:
a step without targets runs on every harness host.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.workflows import HostOutcome, StepStatus
from muster.engine.workflow import WorkflowEngine, WorkflowRun
from muster.testing import InMemoryStore
from muster.transports.local import LocalTransport

#: Engines the shared test bodies run on (the server face appends "server").
ENGINES = ["in_process"]

HOSTS = ("h1", "h2")
GROUPS = {"h1": "web", "h2": "db"}


@dataclass(frozen=True)
class RunView:
    """What a test may look at, whichever engine ran the instance."""

    id: str
    status: str
    steps: Mapping[str, str]
    messages: Mapping[str, str]
    outcomes: Mapping[str, Mapping[str, HostOutcome]]
    attempts: Mapping[str, int]

    def stdout(self, step: str, host: str = "h1") -> str:
        return self.outcomes[step][host].stdout

    def exit_code(self, step: str, host: str = "h1") -> int | None:
        return self.outcomes[step][host].exit_code


class WorkflowHarness(Protocol):
    hosts: tuple[str, ...]

    async def start(self, definition: str, params: Mapping[str, Any] | None = None) -> str: ...
    async def wait(self, instance_id: str, timeout: float = 60) -> RunView: ...
    async def run(
        self, definition: str, params: Mapping[str, Any] | None = None, timeout: float = 60
    ) -> RunView: ...
    async def wait_step(
        self, instance_id: str, step: str, statuses: set[str], timeout: float = 30
    ) -> RunView: ...
    async def view(self, instance_id: str) -> RunView: ...
    async def pause(
        self, instance_id: str, step: str | None = None, seconds: float | None = None
    ) -> None: ...
    async def resume(self, instance_id: str, step: str | None = None) -> None: ...
    async def kill(self, instance_id: str, step: str | None = None) -> None: ...
    async def retry(self, instance_id: str, step: str) -> None: ...
    async def resume_failed(self, instance_id: str) -> None: ...
    async def approve(self, instance_id: str, step: str, user: str) -> None: ...
    async def reject(self, instance_id: str, step: str, user: str) -> None: ...


def view_of(run: WorkflowRun) -> RunView:
    return RunView(
        id=run.id,
        status=run.status.value,
        steps={k: v.status.value for k, v in run.steps.items()},
        messages={k: v.message for k, v in run.steps.items()},
        outcomes={k: dict(r.hosts) for k, r in run.results.items()},
        attempts={k: v.attempt for k, v in run.steps.items()},
    )


class InProcessHarness:
    """The library's engine, local transport, real subprocesses."""

    hosts = HOSTS

    def __init__(self) -> None:
        hosts = [Host(n, transport=TransportKind.LOCAL, groups=(GROUPS[n],)) for n in HOSTS]
        self.engine = WorkflowEngine(
            {TransportKind.LOCAL: LocalTransport()}, hosts, store=InMemoryStore()
        )

    async def start(self, definition: str, params: Mapping[str, Any] | None = None) -> str:
        return await self.engine.start(definition, params=params, created_by="tester")

    async def wait(self, instance_id: str, timeout: float = 60) -> RunView:
        return view_of(await self.engine.wait(instance_id, timeout=timeout))

    async def run(
        self, definition: str, params: Mapping[str, Any] | None = None, timeout: float = 60
    ) -> RunView:
        return await self.wait(await self.start(definition, params), timeout)

    async def wait_step(
        self, instance_id: str, step: str, statuses: set[str], timeout: float = 30
    ) -> RunView:
        run = await self.engine.wait_for(
            instance_id,
            lambda s: s.steps[step].status.value in statuses,
            timeout=timeout,
        )
        return view_of(run)

    async def view(self, instance_id: str) -> RunView:
        return view_of(self.engine.get(instance_id))

    async def pause(
        self, instance_id: str, step: str | None = None, seconds: float | None = None
    ) -> None:
        until = None
        if seconds is not None:
            until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        await self.engine.pause(instance_id, step, until=until)

    async def resume(self, instance_id: str, step: str | None = None) -> None:
        await self.engine.resume(instance_id, step)

    async def kill(self, instance_id: str, step: str | None = None) -> None:
        await self.engine.kill(instance_id, step)

    async def retry(self, instance_id: str, step: str) -> None:
        await self.engine.retry(instance_id, step)

    async def resume_failed(self, instance_id: str) -> None:
        await self.engine.resume_failed(instance_id)

    async def approve(self, instance_id: str, step: str, user: str) -> None:
        await self.engine.approve(instance_id, step, user)

    async def reject(self, instance_id: str, step: str, user: str) -> None:
        await self.engine.reject(instance_id, step, user)

    async def close(self) -> None:
        await self.engine.close()


#: Factories per engine name; the server face registers its own here.
HARNESSES: dict[str, Any] = {"in_process": InProcessHarness}

# The server face: a real server over its HTTP API (same hosts, groups, users).
from tests.integration.workflows.server_harness import (  # noqa: E402
    ServerHarness,
    stop_shared_workflow_server,  # noqa: F401 - a session fixture
)

HARNESSES["server"] = ServerHarness
ENGINES.append("server")


@pytest.fixture(params=ENGINES)
async def workflow_engine(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowHarness]:
    harness = HARNESSES[request.param]()
    if hasattr(harness, "open"):
        await harness.open()
    try:
        yield harness
    finally:
        await harness.close()


__all__ = ["ENGINES", "HARNESSES", "RunView", "StepStatus", "WorkflowHarness", "view_of"]

"""Approval steps in an in-process rollout: the engine's approver is asked once per
step for the whole rollout (not once per host instance), its answer reaches every
host, and a refusal fails the hosts' gate with the reason the approver gave."""

from __future__ import annotations

from typing import Any

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.workflows import parse_workflow
from muster.engine.rollout import RolloutEngine
from muster.engine.rollout_approvals import ApprovalAnswer
from muster.engine.rollout_result import RolloutStatus, WaveStatus
from muster.testing import InMemoryStore
from muster.testing.scripted import ScriptedTransport

pytestmark = pytest.mark.timeout(30)

HOSTS = [Host(n, transport=TransportKind.LOCAL) for n in ("h1", "h2", "h3")]
WORKFLOW = parse_workflow(
    {
        "name": "w",
        "targets": "*",
        "steps": [
            {"id": "ok", "type": "approval", "title": "go", "approvers": ["user:ops"]},
            {"id": "change", "command": "change", "depends_on": ["ok"]},
        ],
        "rollout": {"waves": [1, "100%"]},
    }
)


class Operator:
    def __init__(self, approve: bool) -> None:
        self.approve = approve
        self.asked: list[tuple[str, str]] = []

    async def __call__(self, step: str, title: str) -> ApprovalAnswer:
        self.asked.append((step, title))
        return ApprovalAnswer(self.approve, "alice", "" if self.approve else "not today")


@pytest.fixture
async def transport() -> ScriptedTransport:
    return ScriptedTransport()


async def _run(transport: ScriptedTransport, operator: Operator) -> Any:
    engine = RolloutEngine(
        {TransportKind.LOCAL: transport},  # type: ignore[dict-item]
        HOSTS,
        store=InMemoryStore(),
        approver=operator,
    )
    try:
        return await engine.run(WORKFLOW)
    finally:
        await engine.close()


async def test_asked_once_and_every_host_runs(transport: ScriptedTransport) -> None:
    operator = Operator(approve=True)
    run = await _run(transport, operator)
    assert run.status is RolloutStatus.SUCCEEDED, run.message
    assert operator.asked == [("ok", "go")]
    assert sorted(transport.started) == ["h1", "h2", "h3"]


async def test_a_refusal_fails_the_gate_naming_the_reason(transport: ScriptedTransport) -> None:
    operator = Operator(approve=False)
    run = await _run(transport, operator)
    assert run.status is RolloutStatus.FAILED
    assert [w.status for w in run.waves] == [WaveStatus.FAILED, WaveStatus.NOT_RUN]
    failure = run.waves[0].failed_hosts["h1"]
    assert failure.reason == "workflow_failed"
    assert "rejected by alice" in failure.detail and "not today" in failure.detail
    assert transport.started == [] and operator.asked == [("ok", "go")]

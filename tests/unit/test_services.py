"""The services that need only the Store protocol, on the in-memory store.

Submission (what is refused before anything is stored, what the approval gate
alone decides) and the reaper loop run here without HTTP, a database or
sleeps. The approval lifecycle and key rotation need the approval, audit and
credential areas, which only the SQL store has: they are tested on real
SQLite and PostgreSQL in ``tests/integration/store/test_services.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence

import pytest

from muster.domain.approval_rules import (
    ApprovalGate,
    ApprovalNeed,
    ApprovalRule,
    ApprovalScope,
    approval_need,
)
from muster.domain.hosts import Host, TransportKind
from muster.domain.jobtypes import render_job
from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.scripts import ScriptVersion
from muster.domain.states import ExecutionStatus, HostRunState
from muster.errors import ParameterError, PermissionDeniedError, ValidationError
from muster.security.rbac import Permission
from muster.services.actor import Actor
from muster.services.reaper import Reaper, reap_interval
from muster.services.submission import submit_command, submit_job, submit_script
from muster.store.base import ExecutionKind, ReapReport, VersionRecord
from muster.testing import FakeClock, InMemoryStore

S = HostRunState
#: Every wait's deadline (the condition is normally met in milliseconds).
DEADLINE = 10.0

OPERATOR = Actor("olga", roles=("operator",), address="192.0.2.7")
ADMIN = Actor("ada", roles=("admin",), permissions=frozenset({Permission.HOSTS_LOCAL}))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[InMemoryStore]:
    s = InMemoryStore(clock=clock)
    yield s
    s.close()


@pytest.fixture
def fleet(store: InMemoryStore) -> InMemoryStore:
    store.create_host(Host(name="web1", address="192.0.2.1", groups=("web",)))
    store.create_host(Host(name="db1", address="192.0.2.2", groups=("db",)))
    store.create_host(Host(name="dash", address="192.0.2.3", shells=("sh",)))
    store.create_host(Host(name="server", transport=TransportKind.LOCAL))
    return store


class RecordingGate:
    """A gate that requires approval for hosts in ``groups`` and records every question."""

    def __init__(self, *groups: str) -> None:
        self.groups = {g: ApprovalRule(ApprovalScope.GROUP, g, required=True) for g in groups}
        self.asked: list[tuple[str, list[str], str | None]] = []

    def __call__(
        self, kind: str, hosts: Sequence[Host], script_id: str | None
    ) -> ApprovalNeed | None:
        self.asked.append((kind, [h.name for h in hosts], script_id))
        return approval_need(groups=self.groups, host_groups={h.name: h.groups for h in hosts})


def _version(store: InMemoryStore, *, requires_approval: bool = False) -> VersionRecord:
    saved = store.save_script(
        ScriptVersion(
            name="deploy",
            shell="bash",
            body="echo ${release}",
            parameters=(ParameterSpec("release", ParameterType.INTEGER, required=True),),
            requires_approval=requires_approval,
        )
    )
    return saved.version


def _count(store: InMemoryStore) -> int:
    return store.list_executions(limit=500).total


# -- submission ---------------------------------------------------------------


def test_the_gate_alone_decides_whether_a_script_run_waits(fleet: InMemoryStore) -> None:
    flagged = _version(fleet, requires_approval=True)
    gate = RecordingGate("db")
    # the version asks for approval, but no rule applies to web1: it is queued
    free = submit_script(fleet, flagged, ["web1"], {"release": "7"}, actor=OPERATOR, gate=gate)
    assert fleet.get_execution(free).status is ExecutionStatus.QUEUED
    # a group rule holds the run, whatever the version says; the reason is kept
    held = submit_script(
        fleet, flagged, ["web1", "db"], {"release": 8}, requested_by="olga", gate=gate
    )
    execution = fleet.get_execution(held)
    assert execution.status is ExecutionStatus.PENDING_APPROVAL
    assert {r.state for r in execution.host_runs} == {S.PENDING_APPROVAL}
    assert execution.policy["approval"]["reasons"] == ["host group 'db' requires approval (db1)"]
    assert execution.requested_by == "olga" and execution.parameters == {"release": 8}
    assert gate.asked == [
        (ExecutionKind.SCRIPT.value, ["web1"], flagged.script_id),
        (ExecutionKind.SCRIPT.value, ["web1", "db1"], flagged.script_id),
    ]


def test_commands_and_jobs_ask_the_gate_with_their_kind(fleet: InMemoryStore) -> None:
    gate = RecordingGate("web")
    command = submit_command(fleet, "uptime", ["web1"], timeout=30, gate=gate, actor=OPERATOR)
    job = render_job("service_control", {"service": "nginx", "action": "restart"})
    fields = {"service": "nginx", "action": "restart"}
    job_id = submit_job(fleet, job, fields, ["db1"], gate=gate, actor=OPERATOR)
    assert [(k, h) for k, h, _ in gate.asked] == [("command", ["web1"]), ("job", ["db1"])]
    assert fleet.get_execution(command).status is ExecutionStatus.PENDING_APPROVAL
    assert fleet.get_execution(job_id).status is ExecutionStatus.QUEUED


def test_the_servers_own_machine_needs_hosts_local(fleet: InMemoryStore) -> None:
    version = _version(fleet)
    gate = RecordingGate()
    for actor in (OPERATOR, None):
        with pytest.raises(PermissionDeniedError, match=r"hosts\.local.*: server"):
            # ``*`` reaches the server too: refused, not quietly narrowed
            submit_script(fleet, version, ["*"], {"release": 1}, actor=actor, gate=gate)
        with pytest.raises(PermissionDeniedError, match="server"):
            submit_command(fleet, "id", ["server"], timeout=5, actor=actor, gate=gate)
    assert _count(fleet) == 0
    done = submit_script(fleet, version, ["*"], {"release": 1}, actor=ADMIN, gate=gate)
    assert len(fleet.get_execution(done).host_runs) == 4


def test_bad_requests_store_nothing_and_name_the_problem(fleet: InMemoryStore) -> None:
    version = _version(fleet)
    gate: ApprovalGate = RecordingGate()
    with pytest.raises(ValidationError) as missing:
        submit_script(fleet, version, ["web1", "nope*", "label=x"], {"release": 1}, gate=gate)
    assert missing.value.field == "host_ids"
    assert "nope*, label=x" in missing.value.problems["host_ids"]
    with pytest.raises(ParameterError, match="release"):
        submit_script(fleet, version, ["web1"], {"release": "seven"}, actor=OPERATOR, gate=gate)
    with pytest.raises(ValidationError, match="unknown shell 'fish'") as shell:
        submit_command(fleet, "ls", ["web1"], timeout=5, shell="fish", gate=gate)
    assert shell.value.field == "shell"
    assert _count(fleet) == 0


def test_hosts_without_the_shell_are_skipped_with_the_reason(fleet: InMemoryStore) -> None:
    version = _version(fleet)
    gate = RecordingGate()
    ex = submit_script(fleet, version, ["web1", "dash"], {"release": 3}, actor=OPERATOR, gate=gate)
    runs = {r.host_name: r for r in fleet.get_execution(ex).host_runs}
    assert runs["web1"].state is S.QUEUED
    assert runs["dash"].state is S.SKIPPED
    assert runs["dash"].message == "host does not advertise shell bash (has: sh)"


# -- the reaper loop ------------------------------------------------------------


def test_reap_interval_is_a_third_of_the_lease_within_bounds() -> None:
    assert reap_interval(30) == 5.0
    assert reap_interval(6) == 2.0
    assert reap_interval(0.3) == 0.5
    with pytest.raises(ValueError, match="positive"):
        Reaper(InMemoryStore(), interval=0)


def test_a_pass_hands_back_a_dead_workers_claim(fleet: InMemoryStore, clock: FakeClock) -> None:
    version = _version(fleet)
    ex = submit_script(fleet, version, ["web1"], {"release": 1}, gate=RecordingGate())
    [claim] = fleet.claim_host_runs("w-dead", 1, lease_seconds=30)
    reaper = Reaper(fleet, interval=5)
    assert reaper.tick() == ReapReport()  # the lease still holds
    clock.advance(31)
    report = reaper.tick()
    assert report is not None and report.requeued == (claim.id,)
    assert fleet.get_execution(ex).host_runs[0].state is S.QUEUED
    assert reaper.passes == 2


class FlakyStore(InMemoryStore):
    """An in-memory store whose ``reap`` fails while ``failing`` is set, and which
    signals every call (the loop's passes are waited on, never slept for)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = True
        self.calls = 0
        self.called = threading.Condition()

    def reap(self, now=None) -> ReapReport:  # type: ignore[no-untyped-def]
        with self.called:
            self.calls += 1
            self.called.notify_all()
        if self.failing:
            raise ConnectionError("database unreachable")
        return super().reap(now)

    def wait_calls(self, n: int) -> None:
        with self.called:
            assert self.called.wait_for(lambda: self.calls >= n, timeout=DEADLINE)


def test_a_failed_pass_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    reaper = Reaper(store, interval=60)
    assert reaper.tick() is None
    assert "reap failed" in caplog.text and "database unreachable" in caplog.text
    store.failing = False
    assert reaper.tick() == ReapReport()
    assert reaper.passes == 2


async def test_the_loop_passes_until_stopped() -> None:
    store = FlakyStore()
    reaper = Reaper(store, interval=0.01, name="test-reaper")
    task = reaper.start()
    assert reaper.start() is task  # once
    await asyncio.to_thread(store.wait_calls, 3)  # failing passes did not end it
    await reaper.stop()
    assert task.done() and not task.cancelled()
    calls = store.calls
    await asyncio.sleep(0)
    assert store.calls == calls

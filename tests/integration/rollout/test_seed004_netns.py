"""Seed 004's example on 20 real sshd hosts in network namespaces, in four waves.

* all green;
* a verification failure on a wave-2 host stops the rollout, waves 2 then 1
  are rolled back (checked from the hosts' own timestamps and the recorded
  rollback times), the evidence per host is kept, and ``status``,
  ``failed_servers`` and ``verification_results`` say exactly that;
* a host cut off mid-wave (its namespace's link set down) counts against the
  threshold as ``unreachable``; its rollback is retried until the link is back,
  or the host is flagged when it stays away.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import muster
from muster.domain.executions import Execution, HostRun
from muster.domain.states import FailureReason, HostRunState
from muster.engine.dispatcher import ExecutionListener
from tests.integration.rollout.conftest import NsFleet
from tests.integration.rollout.seed004 import CACHE, DB, NAMES, WAVES, WEB, read_log, seed_004

pytestmark = [pytest.mark.netns, pytest.mark.timeout(280)]

#: A dead link is noticed after ~1 s of unanswered keepalives.
FAST_SSH = {"keepalive_interval": 0.5, "keepalive_count_max": 2, "connect_timeout": 3.0}


def _engine(
    fleet: NsFleet,
    state: Path,
    *,
    ssh: Mapping[str, Any] | None = None,
    rollout: Mapping[str, Any] | None = None,
) -> tuple[muster.Engine, muster.MaintenanceWorkflow]:
    return seed_004(
        fleet.addresses, fleet.client_key, fleet.known_hosts, state, ssh=ssh, rollout=rollout
    )


def test_seed_004_on_20_namespace_hosts_is_green_in_four_waves(
    fleet: NsFleet, tmp_path: Path
) -> None:
    engine, workflow = _engine(fleet, tmp_path)
    result = engine.execute(workflow)

    assert result.status == "succeeded", result.message
    assert result.successful_servers == sorted(NAMES)
    assert result.failed_servers == []
    assert [w.hosts for w in result.waves] == [tuple(w) for w in WAVES]
    assert [w.status.value for w in result.waves] == ["succeeded"] * 4
    evidence = result.verification_results["verify_package_versions"]
    assert sorted(evidence) == sorted(NAMES)
    for ev in evidence.values():
        check = ev.checks[0]
        assert (ev.passed, check.before_value, check.after_value) == (True, "3.0.11-1", "3.0.13-1")
    # Each host upgraded itself (its own address), wave after wave.
    upgrades = [(h, ns) for h, what, ns in read_log(tmp_path, fleet.addresses) if what == "upgrade"]
    assert sorted(h for h, _ in upgrades) == sorted(NAMES)
    at = dict(upgrades)
    for earlier, later in itertools.pairwise(WAVES):
        assert max(at[h] for h in earlier) < min(at[h] for h in later)
    assert sorted(result.task_results["verify_web"].hosts) == list(WEB)
    for name, addr in fleet.addresses.items():
        assert "3.0.13-1" in (tmp_path / f"pkgs-{addr}").read_text(), name


def test_a_verification_failure_on_a_wave_2_host_rolls_back_wave_2_then_wave_1(
    fleet: NsFleet, tmp_path: Path
) -> None:
    bad_host = "web03.example.com"
    (tmp_path / f"broken-{fleet.addresses[bad_host]}").touch()
    engine, workflow = _engine(fleet, tmp_path)
    result = engine.execute(workflow)

    assert result.status == "rolled_back", result.message
    assert result.failed_servers == [bad_host]
    assert result.successful_servers == sorted(set(WEB) - {bad_host})
    assert [w.status.value for w in result.waves] == [
        "rolled_back",
        "rolled_back",
        "not_run",
        "not_run",
    ]
    failure = result.waves[1].failed_hosts[bad_host]
    assert (failure.reason, failure.gate) == ("verification_failed", True)
    assert list(result.waves[1].failed_hosts) == [bad_host]
    gate = result.waves[1].gate
    assert gate is not None and not gate.passed
    assert f"verification failed on 1 host(s): {bad_host}" in gate.why

    # The evidence, per host, of every host that ran.
    evidence = result.verification_results["verify_package_versions"]
    assert sorted(evidence) == list(WEB)
    bad = evidence[bad_host]
    assert not bad.passed
    assert (bad.checks[0].before_value, bad.checks[0].after_value) == ("3.0.11-1", "3.0.2-1")
    assert all(evidence[h].passed for h in WEB if h != bad_host)
    exported = result.to_dict()["verification_results"]["verify_package_versions"]
    assert sorted(exported) == list(WEB)
    assert exported[bad_host]["passed"] is False

    # Newest wave first: every wave-2 undo (hosts' own clocks) before any wave-1 undo.
    log = read_log(tmp_path, fleet.addresses)
    undo = [(h, what, ns) for h, what, ns in log if what.startswith("undo")]
    assert sorted((h, w) for h, w, _ in undo) == sorted(
        (h, w) for h in WEB for w in ("undo-backup", "undo-upgrade")
    )
    wave2_last = max(ns for h, _, ns in undo if h in WAVES[1])
    wave1 = [(w, ns) for h, w, ns in undo if h == WEB[0]]
    assert wave2_last < min(ns for _, ns in wave1)
    assert [w for w, _ in wave1] == ["undo-upgrade", "undo-backup"]
    # ... and the recorded rollback outcomes agree.
    assert set(result.rollback) == set(WEB)
    assert all(o.state.value == "rolled_back" for o in result.rollback.values())
    assert {o.wave for h, o in result.rollback.items() if h != WEB[0]} == {1}
    canary = result.rollback[WEB[0]]
    assert canary.wave == 0 and canary.started_at is not None
    assert all(
        o.finished_at is not None and o.finished_at <= canary.started_at
        for h, o in result.rollback.items()
        if h != WEB[0]
    )
    assert result.flagged_hosts == []
    # The rollback restored what was there before, and later waves never ran.
    for host in WEB:
        assert "3.0.11-1" in (tmp_path / f"pkgs-{fleet.addresses[host]}").read_text()
    assert not any(h in DB + CACHE for h, _, _ in log)


class _RollbackAttempts(ExecutionListener):
    """Sees a rollback command fail to reach ``host`` and says so."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.failed = asyncio.Event()
        self.reasons: list[FailureReason | None] = []

    def on_state(self, execution: Execution, host_run: HostRun) -> None:
        if host_run.host != self.host or "(rollback " not in execution.description:
            return
        if host_run.state is HostRunState.FAILED:
            self.reasons.append(host_run.reason)
            self.failed.set()


async def _cut_off_mid_upgrade(fleet: NsFleet, state: Path, victim: str) -> None:
    """Wait until ``victim`` is inside its upgrade, then cut its link and let the
    step finish there, unseen (as a host whose network died does)."""
    addr = fleet.addresses[victim]
    async with asyncio.timeout(60):
        while not (state / f"started-{addr}").exists():
            await asyncio.sleep(0.05)  # polling another process's marker file, bounded
    await asyncio.to_thread(fleet.hosts[victim].link_down)
    (state / f"hang-{addr}").unlink()


def _hang(fleet: NsFleet, state: Path, victim: str) -> None:
    (state / f"hang-{fleet.addresses[victim]}").touch()


@pytest.mark.parametrize("comes_back", [True, False], ids=["link-returns", "link-stays-down"])
async def test_a_host_cut_off_mid_wave_counts_as_unreachable_and_is_rolled_back_or_flagged(
    fleet: NsFleet, tmp_path: Path, comes_back: bool
) -> None:
    victim = "web05.example.com"
    _hang(fleet, tmp_path, victim)
    retry = {"tries": 8, "delay": 1, "backoff": 1} if comes_back else {"tries": 2, "delay": 1}
    engine, workflow = _engine(fleet, tmp_path, ssh=FAST_SSH, rollout={"rollback_retry": retry})
    attempts = _RollbackAttempts(victim)
    engine.listener = attempts
    run = asyncio.create_task(engine.execute_async(workflow))
    await _cut_off_mid_upgrade(fleet, tmp_path, victim)
    if comes_back:
        async with asyncio.timeout(120):
            await attempts.failed.wait()
        await asyncio.to_thread(fleet.hosts[victim].link_up)
    async with asyncio.timeout(200):
        result = await run

    # The lost host counts against the threshold (0 per wave), as unreachable.
    assert result.failed_servers == [victim]
    failure = result.waves[1].failed_hosts[victim]
    assert (failure.reason, failure.step, failure.gate) == (
        "unreachable",
        "upgrade_packages",
        False,
    )
    assert "connection_lost" in failure.detail
    gate = result.waves[1].gate
    assert gate is not None and not gate.passed
    assert (gate.failed, gate.counted) == (1, len(WAVES[1]))
    assert "over the failure threshold (0 per wave)" in gate.why
    # Its verification has no after-capture: failed evidence, not a second failure.
    assert not result.verification_results["verify_package_versions"][victim].passed

    # Its first rollback attempt could not reach it.
    assert attempts.reasons and attempts.reasons[0] in (
        FailureReason.UNREACHABLE,
        FailureReason.CONNECT_TIMEOUT,
    )
    outcome = result.rollback[victim]
    others = [h for h in WEB if h != victim]
    assert all(result.rollback[h].state.value == "rolled_back" for h in others)
    addr = fleet.addresses[victim]
    undone = [w for h, w, _ in read_log(tmp_path, fleet.addresses) if h == victim]
    # The upgrade finished on the host while nobody could see it.
    assert "upgrade" in undone
    if comes_back:
        assert result.status == "rolled_back", result.message
        assert outcome.state.value == "rolled_back", outcome.message
        assert outcome.attempts >= 3  # (one per rollback step, plus the retries)
        assert result.flagged_hosts == []
        assert undone[-2:] == ["undo-upgrade", "undo-backup"]
        assert "3.0.11-1" in (tmp_path / f"pkgs-{addr}").read_text()
    else:
        assert result.status == "rollback_failed", result.message
        assert outcome.state.value == "unreachable"
        assert outcome.attempts == 2
        assert "unreachable through 2 attempt(s)" in outcome.message
        assert result.flagged_hosts == [victim]
        assert result.waves[1].status.value == "rollback_failed"
        assert result.waves[0].status.value == "rolled_back"
        assert not any(w.startswith("undo") for w in undone)
        assert "3.0.13-1" in (tmp_path / f"pkgs-{addr}").read_text()

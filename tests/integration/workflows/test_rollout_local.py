"""The rollout driver on real local subprocesses (and a closed SSH port for an
unreachable host): waves, gates, soak, threshold, windows on a clock the test
moves, pause/resume/abort, rollback automatic and on request, flagged hosts.

Every host is a local host: each step appends ``<host> <step>`` to a log file,
so the order of what ran is read back from the file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from muster.app import SshOptions, default_transports
from muster.domain.hosts import Host, TransportKind
from muster.domain.inventory import Inventory
from muster.domain.workflows import parse_workflow
from muster.engine.rollout import RolloutEngine
from muster.engine.rollout_result import RollbackState, RolloutRun, RolloutStatus, WaveStatus
from muster.errors import ConflictError
from muster.testing import InMemoryStore
from muster.testing.clock import FakeClock
from tests.fleet.sshd import free_port

pytestmark = pytest.mark.timeout(120)

HOST = 'h="${MUSTER_RUN_ID##*_}"'
SUNDAY = dt.datetime(2026, 1, 4, tzinfo=dt.UTC)


def _inventory() -> Inventory:
    inv = Inventory()
    for name, group in (("h1", "web"), ("h2", "web"), ("h3", "web"), ("h4", "db")):
        inv.add_host(Host(name, transport=TransportKind.LOCAL, groups=(group,)))
    return inv


def _log(path: Path, what: str) -> str:
    return f'{HOST}; echo "$h {what}" >> {path}'


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _definition(tmp: Path, rollout: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    log = tmp / "log"
    steps = [
        {"id": "backup", "command": _log(log, "backup"), "rollback": _log(log, "undo-backup")},
        {
            "id": "upgrade",
            "command": _log(log, "upgrade"),
            "depends_on": ["backup"],
            "rollback": _log(log, "undo-upgrade"),
        },
        {"id": "verify", "command": _log(log, "verify"), "depends_on": ["upgrade"]},
    ]
    doc: dict[str, Any] = {"name": "patch", "targets": "*", "steps": steps, **extra}
    if rollout is not None:
        doc["rollout"] = rollout
    return doc


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(SUNDAY)


@pytest.fixture
async def engine(clock: FakeClock) -> AsyncIterator[RolloutEngine]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        await asyncio.sleep(0)

    eng = RolloutEngine(
        default_transports(SshOptions(connect_timeout=5)),
        _inventory(),
        store=InMemoryStore(),
        clock=clock,
        sleep=sleep,
    )
    eng.slept = slept  # type: ignore[attr-defined]
    try:
        yield eng
    finally:
        await eng.close()


def _waves(run: RolloutRun) -> list[tuple[tuple[str, ...], str]]:
    return [(w.hosts, w.status.value) for w in run.waves]


def _hosts_of(lines: list[str], what: str) -> list[str]:
    return [line.split()[0] for line in lines if line.split()[1] == what]


async def test_waves_run_in_order_and_succeed(engine: RolloutEngine, tmp_path: Path) -> None:
    wf = parse_workflow(_definition(tmp_path, {"waves": [1, "50%", "100%"]}))
    run = await engine.run(wf)
    assert run.status is RolloutStatus.SUCCEEDED, run.message
    assert _waves(run) == [
        (("h1",), "succeeded"),
        (("h2",), "succeeded"),
        (("h3", "h4"), "succeeded"),
    ]
    assert run.successful_servers == ["h1", "h2", "h3", "h4"] and run.failed_servers == []
    upgraded = _hosts_of(_lines(tmp_path / "log"), "upgrade")
    assert upgraded[:2] == ["h1", "h2"] and sorted(upgraded[2:]) == ["h3", "h4"]
    assert all(w.gate is not None and w.gate.passed for w in run.waves)
    assert json.loads(json.dumps(run.to_dict()))["status"] == "succeeded"


async def test_a_failed_host_stops_and_rolls_back_newest_wave_first(
    engine: RolloutEngine, tmp_path: Path
) -> None:
    doc = _definition(tmp_path, {"waves": [["h1"], ["h2", "h3"], ["h4"]], "auto_rollback": True})
    doc["steps"][1]["command"] = _log(tmp_path / "log", "upgrade") + '; [ "$h" != h3 ]'
    run = await engine.run(parse_workflow(doc))
    assert run.status is RolloutStatus.ROLLED_BACK, run.message
    assert run.failed_servers == ["h3"]
    failure = run.waves[1].failed_hosts["h3"]
    assert (failure.reason, failure.step) == ("command_failed", "upgrade")
    assert _waves(run) == [
        (("h1",), "rolled_back"),
        (("h2", "h3"), "rolled_back"),
        (("h4",), "not_run"),
    ]
    lines = _lines(tmp_path / "log")
    undo = [line for line in lines if line.split()[1].startswith("undo")]
    # Wave 2 (h2, h3) first, each host newest step first; then wave 1.
    assert sorted(undo[:4]) == sorted(
        ["h2 undo-upgrade", "h2 undo-backup", "h3 undo-upgrade", "h3 undo-backup"]
    )
    for h in ("h2", "h3"):
        assert undo.index(f"{h} undo-upgrade") < undo.index(f"{h} undo-backup")
    assert undo[4:] == ["h1 undo-upgrade", "h1 undo-backup"]
    assert "h4 backup" not in lines
    assert {h: o.state for h, o in run.rollback.items()} == dict.fromkeys(
        ("h1", "h2", "h3"), RollbackState.ROLLED_BACK
    )
    assert run.flagged_hosts == []
    assert "stopped at wave 2" in run.message and run.message.endswith("rolled back")


async def test_the_failure_threshold_tolerates_and_hosts_go_on(
    engine: RolloutEngine, tmp_path: Path
) -> None:
    doc = _definition(tmp_path, {"waves": [2, "100%"], "failure_threshold": 1})
    doc["steps"][1]["command"] = _log(tmp_path / "log", "upgrade") + '; [ "$h" != h1 ]'
    run = await engine.run(parse_workflow(doc))
    assert run.status is RolloutStatus.FAILED
    assert "every wave ran; 1 host(s) failed within the failure threshold" in run.message
    assert _waves(run) == [(("h1", "h2"), "succeeded"), (("h3", "h4"), "succeeded")]
    assert run.failed_servers == ["h1"]
    # h1 failing did not hold h2 back: each host runs its own instance.
    assert sorted(_hosts_of(_lines(tmp_path / "log"), "verify")) == ["h2", "h3", "h4"]
    assert run.steps["upgrade"].status.value == "failed"


async def test_rollout_scope_counts_every_wave(engine: RolloutEngine, tmp_path: Path) -> None:
    doc = _definition(
        tmp_path,
        {"waves": [1, 2, 3, 4], "failure_threshold": "25%", "threshold_scope": "rollout"},
    )
    doc["steps"][1]["command"] = (
        _log(tmp_path / "log", "upgrade") + '; [ "$h" != h1 ] && [ "$h" != h3 ]'
    )
    run = await engine.run(parse_workflow(doc))
    assert _waves(run)[2:] == [(("h3",), "failed"), (("h4",), "not_run")]
    assert "2 of 4 host(s) failed" in run.message


async def test_rollback_on_request_and_a_failed_rollback_is_flagged(
    engine: RolloutEngine, tmp_path: Path
) -> None:
    doc = _definition(tmp_path, {"waves": [["h1"], ["h2"]]})
    doc["steps"][2]["command"] = _log(tmp_path / "log", "verify") + '; [ "$h" != h2 ]'
    doc["steps"][0]["rollback"] = _log(tmp_path / "log", "undo-backup") + '; [ "$h" != h1 ]'
    run = await engine.run(parse_workflow(doc))
    assert run.status is RolloutStatus.FAILED and run.rollback == {}
    with pytest.raises(ConflictError):
        await engine.pause()
    run = await engine.rollback()
    assert run.status is RolloutStatus.ROLLBACK_FAILED
    assert run.flagged_hosts == ["h1"]
    assert run.rollback["h1"].state is RollbackState.FAILED
    assert run.rollback["h1"].message.startswith("rollback of backup failed")
    assert run.rollback["h1"].steps["backup"].exit_code == 1
    assert run.rollback["h2"].state is RollbackState.ROLLED_BACK
    assert "flagged" in run.message
    with pytest.raises(ConflictError, match="only a failed or aborted rollout"):
        await engine.rollback()


async def test_a_host_step_without_a_rollback_leaves_nothing_to_do(
    engine: RolloutEngine, tmp_path: Path
) -> None:
    doc = _definition(tmp_path, {"waves": [["h1"], ["h2"]], "auto_rollback": True})
    for step in doc["steps"]:
        step.pop("rollback", None)
    doc["steps"][1]["command"] = '[ "${MUSTER_RUN_ID##*_}" != h2 ]'
    run = await engine.run(parse_workflow(doc))
    assert run.status is RolloutStatus.ROLLED_BACK
    assert {h: o.state.value for h, o in run.rollback.items()} == {
        "h1": "nothing_to_do",
        "h2": "nothing_to_do",
    }


async def test_verification_tasks_gate_and_run_again_after_the_soak(
    engine: RolloutEngine, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    doc = _definition(
        tmp_path,
        {"waves": [["h1"], ["h2"], ["h3"]], "verification_tasks": ["verify"], "soak": "90s"},
    )
    # h2 passes its check the first time, fails it after the soak.
    doc["steps"][2]["command"] = (
        f'{HOST}; echo "$h verify" >> {tmp_path / "log"}; '
        f'if [ "$h" = h2 ]; then [ ! -f {flag} ] || exit 3; touch {flag}; fi'
    )
    run = await engine.run(parse_workflow(doc))
    assert engine.slept.count(90.0) == 2  # type: ignore[attr-defined]
    assert _waves(run) == [(("h1",), "succeeded"), (("h2",), "failed"), (("h3",), "not_run")]
    failure = run.waves[1].failed_hosts["h2"]
    assert failure.gate and failure.detail.startswith("after the soak: step verify")
    assert run.waves[1].soak_results["verify"].hosts["h2"].exit_code == 3
    assert _hosts_of(_lines(tmp_path / "log"), "verify") == ["h1", "h1", "h2", "h2"]


async def test_a_wave_waits_for_its_window_as_the_forecast_said(
    engine: RolloutEngine, clock: FakeClock, tmp_path: Path
) -> None:
    seen: list[tuple[int, str]] = []
    engine.observer = lambda run: seen.extend(
        (w.index, w.status.value) for w in run.waves if w.status is WaveStatus.WAITING_WINDOW
    )
    clock.advance(2.5 * 3600)  # Sunday 02:30: web's window closes in 30 minutes
    doc = _definition(
        tmp_path,
        {"waves": [["h4"], ["web"]], "wave_duration": "1h"},
        windows={"web": "Sun 01:00-03:00", "db": "Sun 02:00-05:00"},
    )
    run = await engine.run(parse_workflow(doc))
    assert run.status is RolloutStatus.SUCCEEDED, run.message
    next_sunday = SUNDAY + dt.timedelta(days=7, hours=1)
    assert run.waves[0].waited_for_window_until is None
    assert run.waves[1].waited_for_window_until == next_sunday
    assert "window closes at 2026-01-04 03:00" in run.waves[1].wait_reason
    assert (1, "waiting_window") in seen
    # The forecast, made before anything ran, predicted exactly this wait.
    assert [f.fit.starts_at for f in run.forecast] == [
        SUNDAY + dt.timedelta(hours=2.5),
        next_sunday,
    ]
    assert run.waves[1].started_at == next_sunday


async def test_a_wave_that_will_never_fit_stops_the_rollout(
    engine: RolloutEngine, tmp_path: Path
) -> None:
    doc = _definition(
        tmp_path,
        {"waves": [["h1"], ["h2", "h4"]], "auto_rollback": True},
        windows={"web": "Sun 01:00-03:00", "db": "Sun 03:00-05:00"},
    )
    run = await engine.run(parse_workflow(doc))
    # A stop like any other: with auto_rollback the changed hosts are rolled back.
    assert run.status is RolloutStatus.ROLLED_BACK
    assert _waves(run) == [(("h1",), "rolled_back"), (("h2", "h4"), "failed")]
    assert run.message.startswith("wave 2 will not fit: no instant within 366 days")
    assert run.forecast[1].will_not_fit


async def _until(predicate: Any, what: str) -> None:
    async with asyncio.timeout(30):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_pause_holds_the_next_wave_and_resume_finishes(
    engine: RolloutEngine, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    doc = _definition(tmp_path, {"waves": [["h1"], ["h2"]]})
    doc["steps"][0]["command"] = f"while [ ! -f {go} ]; do sleep 0.02; done; " + _log(
        tmp_path / "log", "backup"
    )
    task = asyncio.ensure_future(engine.run(parse_workflow(doc)))
    await _until(lambda: engine.run_state is not None and engine._active, "h1 to start")
    await engine.pause()
    assert engine.run_state is not None and engine.run_state.status is RolloutStatus.PAUSED
    go.touch()
    await _until(lambda: "h1 backup" in _lines(tmp_path / "log"), "h1's backup")
    for _ in range(20):
        await asyncio.sleep(0.02)
    # Paused: h1's next step and the next wave do not start.
    assert _lines(tmp_path / "log") == ["h1 backup"]
    assert engine.run_state.waves[1].status is WaveStatus.PENDING
    await engine.resume()
    run = await task
    assert run.status is RolloutStatus.SUCCEEDED, run.message
    with pytest.raises(ConflictError):
        await engine.resume()


async def test_abort_stops_without_rollback(engine: RolloutEngine, tmp_path: Path) -> None:
    doc = _definition(tmp_path, {"waves": [["h1"], ["h2"]], "auto_rollback": True})
    doc["steps"][1]["command"] = "sleep 30"
    task = asyncio.ensure_future(engine.run(parse_workflow(doc)))
    await _until(lambda: "h1 backup" in _lines(tmp_path / "log"), "h1's backup")
    await _until(lambda: engine._active, "h1 running")
    await engine.abort()
    run = await task
    assert run.status is RolloutStatus.ABORTED
    assert _waves(run) == [(("h1",), "aborted"), (("h2",), "not_run")]
    assert run.rollback == {}
    with pytest.raises(ConflictError):
        await engine.abort()
    run = await engine.rollback()  # on request, later
    assert run.status is RolloutStatus.ROLLED_BACK
    assert run.rollback["h1"].state is RollbackState.ROLLED_BACK


@pytest.fixture
def closed_port() -> Iterator[int]:
    yield free_port()


async def test_an_unreachable_host_counts_and_its_rollback_is_retried_then_flagged(
    clock: FakeClock, tmp_path: Path, closed_port: int
) -> None:
    inv = _inventory()
    inv.add_host(Host("gone", address="127.0.0.1", port=closed_port, user="root", groups=("db",)))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    engine = RolloutEngine(
        default_transports(SshOptions(known_hosts=str(tmp_path / "none"), connect_timeout=5)),
        inv,
        store=InMemoryStore(),
        clock=clock,
        sleep=sleep,
    )
    doc = _definition(
        tmp_path,
        {
            "waves": [["h1"], ["db"]],
            "auto_rollback": True,
            "rollback_retry": {"tries": 3, "delay": 10, "backoff": 2},
        },
    )
    try:
        run = await engine.run(parse_workflow(doc))
    finally:
        await engine.close()
    assert run.waves[1].failed_hosts["gone"].reason == "unreachable"
    assert run.status is RolloutStatus.ROLLBACK_FAILED
    assert run.flagged_hosts == ["gone"]
    gone = run.rollback["gone"]
    assert (gone.state, gone.attempts) == (RollbackState.UNREACHABLE, 3)
    assert slept == [10, 20]
    assert "not attempted: nothing" in gone.message  # only backup had started there
    assert run.rollback["h4"].state is RollbackState.ROLLED_BACK

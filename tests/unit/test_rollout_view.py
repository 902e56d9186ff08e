"""The rollout's terminal view: each change printed once, the summary and the forecast
say status, servers, verification, rollback newest-first and flagged hosts; host
text is printed as written, never read as markup."""

from __future__ import annotations

import datetime as dt

from rich.console import Console

from muster.cli.rollout_view import RolloutProgress, forecast_view, summary_view, wave_line
from muster.domain.rollout import FitStatus, HostFailure, WaveFit, WaveForecast
from muster.domain.rollout_gate import Gate
from muster.domain.verification import HostEvidence
from muster.engine.rollout_result import (
    RollbackOutcome,
    RollbackState,
    RolloutRun,
    RolloutStatus,
    WaveResult,
    WaveStatus,
)

AT = dt.datetime(2026, 1, 4, 1, 0, tzinfo=dt.UTC)


def _console() -> Console:
    return Console(record=True, width=200, color_system=None, highlight=False)


def _evidence(host: str, passed: bool, drift: tuple[str, ...] = ()) -> HostEvidence:
    return HostEvidence("pkgs", host, {"v": "1"}, {"v": "2"}, (), drift, passed, None)


def _stopped_run() -> RolloutRun:
    run = RolloutRun(id="r1", workflow="patch")
    run.waves = [
        WaveResult(0, ("[web1]",)),
        WaveResult(1, ("web2", "web3")),
        WaveResult(2, ("db1",)),
    ]
    return run


def test_progress_prints_each_change_once_and_the_rollback_lane_in_order() -> None:
    console = _console()
    progress = RolloutProgress(console)
    run = _stopped_run()
    progress(run)  # nothing moved yet
    assert console.export_text() == ""
    w1, w2, _ = run.waves
    w1.status = WaveStatus.RUNNING
    progress(run)
    progress(run)
    w1.status, w1.gate = WaveStatus.SUCCEEDED, Gate(True, "", 0, 1)
    w2.status = WaveStatus.WAITING_WINDOW
    w2.waited_for_window_until, w2.wait_reason = AT, "a host's window is closed now"
    progress(run)
    w2.status = WaveStatus.RUNNING
    progress(run)
    w2.status = WaveStatus.FAILED
    w2.failed_hosts = {"web3": HostFailure("web3", "verification_failed", "check v failed")}
    w2.gate = Gate(False, "1 of 2 host(s) failed", 1, 2)
    progress(run)
    w2.status = WaveStatus.ROLLING_BACK
    run.rollback["web3"] = RollbackOutcome("web3", 1, RollbackState.ROLLED_BACK, message="ok")
    run.rollback["web2"] = RollbackOutcome("web2", 1, RollbackState.FAILED, message="undo: 1")
    progress(run)
    progress(run)
    lines = console.export_text().splitlines()
    assert lines == [
        r"wave 1/3 running: 1 host(s): [web1]",
        "wave 1/3 succeeded: gate passed (0 failed of 1 counted)",
        "wave 2/3 waiting_window until 2026-01-04 01:00 UTC: a host's window is closed now",
        "wave 2/3 running: 2 host(s): web2, web3",
        "wave 2/3 failed: gate failed: 1 of 2 host(s) failed (1 failed of 2 counted)",
        "  failed web3: verification_failed: check v failed",
        "rollback wave 2/3: rolling back 2 host(s)",
        "rollback   wave 2 web3: rolled_back: ok",
        "rollback   wave 2 web2: failed FLAGGED: undo: 1",
    ]


def test_summary_names_status_servers_verification_rollback_and_flagged() -> None:
    run = _stopped_run()
    run.status, run.message = RolloutStatus.ROLLBACK_FAILED, "stopped at wave 2"
    w1, w2, w3 = run.waves
    w1.status, w2.status, w3.status = (
        WaveStatus.ROLLED_BACK,
        WaveStatus.ROLLBACK_FAILED,
        WaveStatus.NOT_RUN,
    )
    w1.gate, w2.gate = Gate(True), Gate(False, "over", 1, 2)
    w2.failed_hosts = {"web3": HostFailure("web3", "verification_failed", "v")}
    run.verification_results = {
        "pkgs": {
            "[web1]": _evidence("[web1]", True),
            "web3": _evidence("web3", False, ("v",)),
        }
    }
    run.rollback = {
        "web3": RollbackOutcome("web3", 1, RollbackState.ROLLED_BACK),
        "web2": RollbackOutcome("web2", 1, RollbackState.UNREACHABLE, message="gone"),
        "[web1]": RollbackOutcome("[web1]", 0, RollbackState.ROLLED_BACK),
    }
    console = _console()
    console.print(summary_view(run))
    text = console.export_text()
    assert "rollout patch rollback_failed: stopped at wave 2" in text
    row = next(line for line in text.splitlines() if line.lstrip().startswith("2/3"))
    assert [c.strip() for c in row.split("│")] == [
        "2/3",
        "rollback_failed",
        "web2, web3",
        "failed",
        "web3",
    ]
    assert "failed servers (1): web3" in text
    assert "verification pkgs: failed on web3 (2 host(s), drift on web3)" in text
    assert "rolled back (2), newest wave first: web3, [web1]" in text
    assert "flagged (rollback failed) (1): web2" in text
    assert "  web2: gone" in text


def test_summary_of_a_green_rollout_has_no_rollback_lines() -> None:
    run = RolloutRun(id="r", workflow="ok", status=RolloutStatus.SUCCEEDED, message="fine")
    run.waves = [WaveResult(0, tuple(f"h{i}" for i in range(12)), WaveStatus.SUCCEEDED)]
    console = _console()
    console.print(summary_view(run))
    text = console.export_text()
    assert "rollout ok succeeded: fine" in text
    assert "h7 (+4 more)" in text
    assert "rolled back" not in text and "flagged" not in text


def test_forecast_view_marks_waves_that_will_not_fit() -> None:
    items = [
        WaveForecast(0, ("a",), WaveFit(FitStatus.NOW, AT, AT + dt.timedelta(hours=2), "w"), 60),
        WaveForecast(1, ("b",), WaveFit(FitStatus.WAITS, AT, None, None, "closed now"), 60),
        WaveForecast(2, ("c",), WaveFit(FitStatus.WILL_NOT_FIT, None, reason="no window"), 60),
    ]
    console = _console()
    console.print(forecast_view("wf", items, ["z"]))
    text = console.export_text()
    rows = [line for line in text.splitlines() if "/3" in line]
    assert "now" in rows[0] and "2026-01-04 03:00 UTC" in rows[0]
    assert "2026-01-04 01:00 UTC" in rows[1] and "closed now" in rows[1]
    assert "will not fit: no window" in rows[2]
    assert "not in any wave (1): z" in text


def test_wave_line_for_soak_and_a_wave_that_never_fit() -> None:
    wave = WaveResult(0, ("a",), WaveStatus.SOAKING)
    assert "soaking" in wave_line(wave, 1)
    wave = WaveResult(1, ("a",), WaveStatus.FAILED, wait_reason="wave 2 will not fit: x")
    assert wave_line(wave, 2).endswith(": wave 2 will not fit: x")

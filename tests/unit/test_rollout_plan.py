"""Rollout arithmetic: waves, thresholds, failures, window fit and the forecast."""

from __future__ import annotations

import datetime as dt

import pytest

from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.rollout import (
    FitStatus,
    fit_wave,
    forecast_rollout,
    host_failures,
    host_windows,
    plan_waves,
    rollout_reason,
)
from muster.domain.rollout_gate import judge_gate, merge_results
from muster.domain.rollout_spec import RetrySpec, RolloutSpec, Threshold, ThresholdScope, WaveSpec
from muster.domain.verification import HostEvidence
from muster.domain.workflows import HostOutcome, StepResult
from muster.domain.workflows.rollout_parse import window_objects

UTC = dt.UTC


def _inventory() -> tuple[Inventory, list[Host]]:
    inv = Inventory()
    for group, names in {
        "web": ["web1", "web2", "web3"],
        "db": ["db1", "db2"],
        "cache": ["cache1", "cache2"],
    }.items():
        for name in names:
            inv.add_host(Host(name, groups=(group,)))
    return inv, inv.all_hosts()


def _names(waves: list[list[Host]]) -> list[list[str]]:
    return [[h.name for h in w] for w in waves]


@pytest.mark.parametrize(
    ("waves", "expected"),
    [
        (
            [
                WaveSpec(("web1",)),
                WaveSpec(("web2", "web3")),
                WaveSpec(("db",)),
                WaveSpec(("cache",)),
            ],
            [["web1"], ["web2", "web3"], ["db1", "db2"], ["cache1", "cache2"]],
        ),
        # Cumulative counts; a count past the target takes what is left.
        (
            [WaveSpec(count=1), WaveSpec(count=3), WaveSpec(count=50)],
            [["web1"], ["web2", "web3"], ["db1", "db2", "cache1", "cache2"]],
        ),
        # Percents round up (10% of 7 is 1 host, never 0), cumulative.
        (
            [WaveSpec(count=1), WaveSpec(percent=10), WaveSpec(percent=50), WaveSpec(percent=100)],
            [["web1"], ["web2", "web3", "db1"], ["db2", "cache1", "cache2"]],
        ),
        # A host already in a wave is not repeated; an empty wave is dropped.
        (
            [WaveSpec(("web",)), WaveSpec(("web1", "db1")), WaveSpec(("web2",))],
            [["web1", "web2", "web3"], ["db1"]],
        ),
        # Hosts no wave reaches are left alone (only 100% takes the rest).
        ([WaveSpec(count=1), WaveSpec(percent=50)], [["web1"], ["web2", "web3", "db1"]]),
        # Selectors outside the target (unknown names) pick nothing.
        ([WaveSpec(("nosuch",)), WaveSpec(("db*",))], [["db1", "db2"]]),
    ],
)
def test_plan_waves(waves: list[WaveSpec], expected: list[list[str]]) -> None:
    inv, hosts = _inventory()
    assert _names(plan_waves(RolloutSpec(tuple(waves)), hosts, inv)) == expected


def test_plan_waves_over_a_plain_host_list_and_a_partial_target() -> None:
    _, hosts = _inventory()
    target = [h for h in hosts if h.name != "web2"]
    spec = RolloutSpec((WaveSpec(("web",)), WaveSpec(percent=100)))
    assert _names(plan_waves(spec, target, hosts)) == [
        ["web1", "web3"],
        ["db1", "db2", "cache1", "cache2"],
    ]


@pytest.mark.parametrize(
    ("threshold", "failed", "counted", "breached"),
    [
        (Threshold(), 0, 10, False),
        (Threshold(), 1, 10, True),
        (Threshold(count=2), 2, 10, False),
        (Threshold(count=2), 3, 10, True),
        (Threshold(count=None, percent=10), 1, 10, False),
        (Threshold(count=None, percent=10), 2, 10, True),
        (Threshold(count=None, percent=0), 1, 1000, True),
        (Threshold(count=None, percent=50), 1, 0, True),
    ],
)
def test_threshold(threshold: Threshold, failed: int, counted: int, breached: bool) -> None:
    assert threshold.breached(failed, counted) is breached


def test_retry_delays_back_off() -> None:
    assert RetrySpec(tries=4, delay=1, backoff=2).delays() == [1, 2, 4]
    assert RetrySpec(tries=1).delays() == []


def _result(step: str, **states: str | tuple[str, str]) -> StepResult:
    hosts = {}
    for host, value in states.items():
        state, reason = value if isinstance(value, tuple) else (value, None)
        hosts[host] = HostOutcome(host, state, message=f"{state} here", reason=reason)
    return StepResult(step, 1, hosts)


def _evidence(host: str, passed: bool, name: str = "v") -> HostEvidence:
    return HostEvidence(name, host, {}, {}, (), (), passed, None if passed else "no after capture")


def test_host_failures_keep_the_reason_and_prefer_gate_failures() -> None:
    results = {
        "upgrade": _result("upgrade", a="succeeded", b=("failed", "unreachable"), c="succeeded"),
        "verify_web": _result("verify_web", a="succeeded", c="failed"),
    }
    failures = host_failures(
        ["a", "b", "c", "d"],
        results,
        [_evidence("a", True), _evidence("d", False), _evidence("b", False)],
        verification_tasks=["verify_web"],
        gating=["v"],
    )
    assert sorted(failures) == ["b", "c", "d"]
    assert (failures["b"].reason, failures["b"].step, failures["b"].gate) == (
        "unreachable",
        "upgrade",
        False,  # its missing evidence follows from it: the threshold judges it
    )
    assert (failures["c"].reason, failures["c"].gate) == ("failed", True)
    assert failures["d"].reason == "verification_failed"
    assert "no after capture" in failures["d"].detail


@pytest.mark.parametrize("own", ["unreachable", "connect_timeout", "connection_lost"])
def test_every_way_of_losing_a_host_counts_as_unreachable(own: str) -> None:
    failures = host_failures(["a"], {"s": _result("s", a=("failed", own))})
    assert failures["a"].reason == "unreachable"
    assert rollout_reason(own) == "unreachable"
    # The transport's own reason stays in the detail, for the operator.
    if own != "unreachable":
        assert f"failed ({own})" in failures["a"].detail


@pytest.mark.parametrize("own", ["command_failed", "timed_out", "auth_failed"])
def test_other_reasons_count_under_their_own_name(own: str) -> None:
    failures = host_failures(["a"], {"s": _result("s", a=("failed", own))})
    assert failures["a"].reason == own == rollout_reason(own)
    assert "(" not in failures["a"].detail.split(":")[1]


def test_evidence_of_a_verification_that_does_not_gate_fails_no_host() -> None:
    assert host_failures(["a"], {}, [_evidence("a", False)], gating=[]) == {}


def test_merge_results_unions_hosts_and_skips_synthetic_steps() -> None:
    merged = merge_results(
        [
            {"s": _result("s", a="succeeded"), "cap": _result("cap", a="succeeded")},
            {"s": _result("s", b="failed")},
        ],
        skip=["cap"],
    )
    assert list(merged) == ["s"] and sorted(merged["s"].hosts) == ["a", "b"]


@pytest.mark.parametrize(
    ("scope", "failed_so_far", "total", "passed"),
    [(ThresholdScope.WAVE, 5, 10, True), (ThresholdScope.ROLLOUT, 2, 10, False)],
)
def test_gate_threshold_scope(
    scope: ThresholdScope, failed_so_far: int, total: int, passed: bool
) -> None:
    spec = RolloutSpec(
        (WaveSpec(count=1),), failure_threshold=Threshold(count=1), threshold_scope=scope
    )
    failures = host_failures(["a", "b"], {"s": _result("s", a="failed", b="succeeded")})
    gate = judge_gate(spec, ["a", "b"], failures, failed_so_far=failed_so_far, total=total)
    assert gate.passed is passed
    assert gate.to_dict()["passed"] is passed


def test_gate_fails_on_a_verification_whatever_the_threshold() -> None:
    spec = RolloutSpec((WaveSpec(count=1),), failure_threshold=Threshold(count=5))
    failures = host_failures(["a"], {}, [_evidence("a", False)], gating=["v"])
    gate = judge_gate(spec, ["a"], failures, failed_so_far=1, total=1)
    assert not gate.passed and "verification failed on 1 host(s)" in gate.why


def test_gate_without_a_rollout_follows_the_instance() -> None:
    assert judge_gate(None, ["a"], {}, failed_so_far=0, total=1).passed
    refused = judge_gate(
        None, ["a"], {}, failed_so_far=0, total=1, instance_ok=False, instance_message="rejected"
    )
    assert (refused.passed, refused.why) == (False, "rejected")
    failed = judge_gate(
        None, ["a"], host_failures(["a"], {"s": _result("s", a="failed")}), failed_so_far=1, total=1
    )
    assert (failed.passed, failed.why) == (False, "1 host(s) failed: a")


# -- windows ---------------------------------------------------------------------------


SUNDAY = dt.datetime(2026, 1, 4, tzinfo=UTC)  # a Sunday


def _at(hours: float) -> dt.datetime:
    return SUNDAY + dt.timedelta(hours=hours)


def _windows() -> dict[str, tuple]:
    inv, hosts = _inventory()
    objects = {
        "web": window_objects("web", "Sunday 01:00-03:00"),
        "db": window_objects("db", "Sun 03:00-05:00"),
        "cache": window_objects("cache", "Sun 01:00-05:00"),
    }
    return host_windows(objects, inv, hosts)


@pytest.mark.parametrize(
    ("hosts", "now", "duration", "status", "starts", "closes"),
    [
        (["web1"], _at(1.5), 1800, FitStatus.NOW, _at(1.5), _at(3)),
        (["web1"], _at(0), 1800, FitStatus.WAITS, _at(1), _at(3)),
        # 20 minutes left is too short for a 30-minute wave: next Sunday.
        (["web1"], _at(2 + 40 / 60), 1800, FitStatus.WAITS, _at(24 * 7 + 1), _at(24 * 7 + 3)),
        # Every host inside at once: web closes at 03:00, db opens then: never together.
        (["web1", "db1"], _at(0), 0, FitStatus.WILL_NOT_FIT, None, None),
        (["db1", "cache1"], _at(0), 3600, FitStatus.WAITS, _at(3), _at(5)),
        # A wave longer than any period will not fit.
        (["cache1"], _at(0), 5 * 3600, FitStatus.WILL_NOT_FIT, None, None),
    ],
)
def test_fit_wave(
    hosts: list[str],
    now: dt.datetime,
    duration: float,
    status: FitStatus,
    starts: dt.datetime | None,
    closes: dt.datetime | None,
) -> None:
    by_host = _windows()
    fit = fit_wave({h: by_host[h] for h in hosts}, now, duration, horizon=dt.timedelta(days=30))
    assert (fit.status, fit.starts_at, fit.closes_at) == (status, starts, closes)
    if status is FitStatus.WAITS:
        assert "it fits at" in fit.reason
    if status is FitStatus.WILL_NOT_FIT:
        assert "no instant within 30 days" in fit.reason


def test_fit_wave_reason_names_a_window_closing_too_soon() -> None:
    by_host = _windows()
    fit = fit_wave({"web1": by_host["web1"]}, _at(2.9), 3600)
    assert fit.reason.startswith(
        "the wave needs 1:00:00 but a host's window closes at 2026-01-04 03:00"
    )


def test_hosts_without_windows_never_hold_a_wave() -> None:
    fit = fit_wave({"a": (), "b": ()}, _at(0), 10**6)
    assert (fit.status, fit.starts_at) == (FitStatus.NOW, _at(0))


def test_one_off_windows_a_few_seconds_long() -> None:
    start = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    opens, closes = start + dt.timedelta(seconds=5), start + dt.timedelta(seconds=9)
    spec = f"{opens.isoformat()}/{closes.isoformat()}"
    windows = window_objects("web", spec)
    fit = fit_wave({"web1": windows}, start, 2)
    assert (fit.status, fit.starts_at) == (FitStatus.WAITS, start + dt.timedelta(seconds=5))
    assert fit.window == f"web: {spec}"


def test_forecast_places_each_wave_after_the_previous_one() -> None:
    by_host = _windows()
    waves = [["web1"], ["web2", "web3"], ["db1", "db2"], ["cache1", "cache2"]]
    plan = forecast_rollout(waves, by_host, _at(0.5), wave_duration=3600, soak=0)
    assert [(f.fit.status, f.fit.starts_at) for f in plan] == [
        (FitStatus.WAITS, _at(1)),
        (FitStatus.NOW, _at(2)),  # planned at 02:00, an hour is left: fits
        (FitStatus.NOW, _at(3)),
        (FitStatus.NOW, _at(4)),
    ]
    later = forecast_rollout(waves, by_host, _at(0.5), wave_duration=3600, soak=1800)
    # Wave 2 planned at 02:30 has 30 minutes left: it waits a week.
    assert later[1].fit.starts_at == _at(24 * 7 + 1)
    assert later[1].to_dict()["status"] == "waits"


def test_forecast_after_a_wave_that_will_not_fit() -> None:
    by_host = _windows()
    plan = forecast_rollout([["web1", "db1"], ["cache1"]], by_host, _at(0))
    assert [f.will_not_fit for f in plan] == [True, True]
    assert plan[1].fit.reason == "an earlier wave will not fit"

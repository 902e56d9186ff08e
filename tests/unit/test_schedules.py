"""Cron, DST, Feb 29 and misfire decisions of muster.domain.schedules, driven by FakeClock."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from muster.domain.schedules import (
    MISFIRE_THRESHOLD,
    Cron,
    FiringStatus,
    MisfirePolicy,
    Schedule,
    ScheduleState,
    ScheduleTarget,
    TargetKind,
    cron_firings,
    decide,
    firings_between,
    next_firing,
    parse_cron,
    validate_end,
)
from muster.errors import ValidationError
from muster.testing import FakeClock

UTC = dt.UTC
F = FiringStatus


def _schedule(expr: str = "30 2 * * *", tz: str = "UTC", **kw: object) -> Schedule:
    return Schedule(
        name="nightly",
        cron=parse_cron(expr, tz),
        target=ScheduleTarget(TargetKind.COMMAND, command="true"),
        selector=("web*",),
        **kw,  # type: ignore[arg-type]
    )


def _day(cron: Cron, day: dt.date) -> list[dt.datetime]:
    zone = cron.zone
    start = dt.datetime.combine(day, dt.time(), zone).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(UTC)
    return cron_firings(cron, start, end)


def _run_day(schedule: Schedule, day: dt.date, step: float = 240.0) -> list[dt.datetime]:
    """Drive decide() minute by minute through a local day as a live scheduler would."""
    zone = schedule.cron.zone
    start = dt.datetime.combine(day, dt.time(), zone).astimezone(UTC)
    clock = FakeClock(start)
    state = ScheduleState(cursor=start - dt.timedelta(microseconds=1))
    fired: list[dt.datetime] = []
    end = start + dt.timedelta(hours=25)
    while clock.now < end:
        decision = decide(schedule, state, clock.now)
        fired += decision.to_fire
        state = ScheduleState(decision.cursor, state.runs + len(decision.to_fire))
        clock.advance(step)
    return [f for f in fired if f.astimezone(zone).date() == day]


# --- DST: both transitions, both zones: a 02:30 (Berlin) / 01:30 and 02:30 (New York) job

SPRING_FALL = [
    ("Europe/Berlin", dt.date(2026, 3, 29), dt.date(2026, 10, 25), "30 2 * * *"),
    ("America/New_York", dt.date(2026, 3, 8), dt.date(2026, 11, 1), "30 2 * * *"),
    ("America/New_York", dt.date(2026, 3, 8), dt.date(2026, 11, 1), "30 1 * * *"),
]


@pytest.mark.parametrize(("tz", "spring", "fall", "expr"), SPRING_FALL)
def test_fixed_time_job_runs_once_on_both_transition_days(
    tz: str, spring: dt.date, fall: dt.date, expr: str
) -> None:
    schedule = _schedule(expr, tz)
    for day in (spring, fall, spring - dt.timedelta(days=1), fall + dt.timedelta(days=1)):
        fired = _run_day(schedule, day)
        assert len(fired) == 1, (day, fired)
        assert fired == _day(schedule.cron, day)


def test_spring_forward_runs_at_the_end_of_the_gap() -> None:
    cron = parse_cron("30 2 * * *", "Europe/Berlin")
    (only,) = _day(cron, dt.date(2026, 3, 29))
    # 02:30 does not exist that day: it runs once, at 03:00 CEST (01:00 UTC).
    assert only == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert only.astimezone(cron.zone).strftime("%H:%M %Z") == "03:00 CEST"


def test_fall_back_runs_at_the_first_occurrence() -> None:
    cron = parse_cron("30 2 * * *", "Europe/Berlin")
    (only,) = _day(cron, dt.date(2026, 10, 25))
    assert only == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, not CET
    ny = parse_cron("30 1 * * *", "America/New_York")
    (first,) = _day(ny, dt.date(2026, 11, 1))
    assert first.astimezone(ny.zone).strftime("%H:%M %Z") == "01:30 EDT"


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
def test_interval_jobs_keep_every_real_hour_across_transitions(tz: str) -> None:
    cron = parse_cron("0 * * * *", tz)
    spring, fall = {
        "Europe/Berlin": (dt.date(2026, 3, 29), dt.date(2026, 10, 25)),
        "America/New_York": (dt.date(2026, 3, 8), dt.date(2026, 11, 1)),
    }[tz]
    assert len(_day(cron, spring)) == 23  # the day has 23 hours
    fall_day = _day(cron, fall)
    assert len(fall_day) == 25  # and this one 25: the repeated hour runs too
    gaps = {b - a for a, b in itertools.pairwise(fall_day)}
    assert gaps == {dt.timedelta(hours=1)}


# --- Feb 29 and other calendar facts


def test_feb_29_fires_only_in_leap_years() -> None:
    cron = parse_cron("0 12 29 2 *", "Europe/Berlin")
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    got = cron_firings(cron, start, dt.datetime(2037, 1, 1, tzinfo=UTC))
    assert [d.year for d in got] == [2028, 2032, 2036]
    assert all(d.astimezone(cron.zone).strftime("%m-%d %H:%M") == "02-29 12:00" for d in got)


def test_feb_29_schedule_waits_years_without_misfiring() -> None:
    schedule = _schedule("0 0 29 2 *", misfire_policy=MisfirePolicy.CATCH_UP, catch_up_limit=5)
    clock = FakeClock(dt.datetime(2027, 3, 1, tzinfo=UTC))
    state = ScheduleState(cursor=clock.now)
    decision = decide(schedule, state, clock.now)
    assert decision.ticks == () and decision.next_run == dt.datetime(2028, 2, 29, tzinfo=UTC)
    clock.advance((dt.datetime(2028, 2, 29, 0, 0, 5, tzinfo=UTC) - clock.now).total_seconds())
    decision = decide(schedule, state, clock.now)
    assert decision.to_fire == [dt.datetime(2028, 2, 29, tzinfo=UTC)]
    assert decision.next_run == dt.datetime(2032, 2, 29, tzinfo=UTC)


# --- misfire policies and maximum lateness


def _downtime(policy: MisfirePolicy, **kw: object) -> list[tuple[dt.datetime, FiringStatus]]:
    """An hourly schedule whose scheduler was down from 00:00 to 05:10 (5 ticks due)."""
    schedule = _schedule("0 * * * *", misfire_policy=policy, **kw)
    clock = FakeClock(dt.datetime(2030, 6, 1, 0, 0, 30, tzinfo=UTC))
    state = ScheduleState(cursor=clock.now)
    clock.advance(5 * 3600 + 600)
    decision = decide(schedule, state, clock.now)
    assert decision.cursor == dt.datetime(2030, 6, 1, 5, tzinfo=UTC)
    assert decision.next_run == dt.datetime(2030, 6, 1, 6, tzinfo=UTC)
    return [(t.due_at, t.status) for t in decision.ticks]


def _h(hour: int) -> dt.datetime:
    return dt.datetime(2030, 6, 1, hour, tzinfo=UTC)


def test_skip_records_every_missed_tick_and_runs_none() -> None:
    assert _downtime(MisfirePolicy.SKIP) == [(_h(h), F.MISSED) for h in range(1, 6)]


def test_run_once_runs_the_newest_and_folds_the_rest() -> None:
    got = _downtime(MisfirePolicy.RUN_ONCE)
    assert got == [(_h(h), F.SKIPPED) for h in range(1, 5)] + [(_h(5), F.FIRED)]


def test_catch_up_runs_at_most_n_newest_oldest_first() -> None:
    got = _downtime(MisfirePolicy.CATCH_UP, catch_up_limit=3)
    assert got == [(_h(1), F.SKIPPED), (_h(2), F.SKIPPED)] + [(_h(h), F.FIRED) for h in (3, 4, 5)]
    everything = _downtime(MisfirePolicy.CATCH_UP, catch_up_limit=50)
    assert everything == [(_h(h), F.FIRED) for h in range(1, 6)]


def test_maximum_lateness_records_older_ticks_missed_whatever_the_policy() -> None:
    got = _downtime(
        MisfirePolicy.CATCH_UP, catch_up_limit=50, max_lateness=dt.timedelta(minutes=150)
    )
    # at 05:10, ticks older than 02:40 are too late: 01:00 and 02:00 missed.
    assert got == [(_h(1), F.MISSED), (_h(2), F.MISSED)] + [(_h(h), F.FIRED) for h in (3, 4, 5)]


def test_a_tick_within_the_threshold_is_on_time_under_skip() -> None:
    schedule = _schedule("0 * * * *", misfire_policy=MisfirePolicy.SKIP)
    state = ScheduleState(cursor=_h(0))
    on_time = decide(schedule, state, _h(1) + MISFIRE_THRESHOLD)
    assert [(t.due_at, t.status) for t in on_time.ticks] == [(_h(1), F.FIRED)]
    late = decide(schedule, state, _h(1) + MISFIRE_THRESHOLD + dt.timedelta(seconds=1))
    assert [(t.due_at, t.status) for t in late.ticks] == [(_h(1), F.MISSED)]


def test_short_maximum_lateness_wins_over_on_time() -> None:
    schedule = _schedule("0 * * * *", max_lateness=dt.timedelta(seconds=5))
    decision = decide(schedule, ScheduleState(cursor=_h(0)), _h(1) + dt.timedelta(seconds=6))
    assert [t.status for t in decision.ticks] == [F.MISSED]


def test_nothing_is_decided_twice() -> None:
    schedule = _schedule("*/5 * * * *")
    clock = FakeClock(_h(0))
    state = ScheduleState(cursor=clock.now)
    seen: list[dt.datetime] = []
    for _ in range(40):
        clock.advance(37)
        decision = decide(schedule, state, clock.now)
        seen += [t.due_at for t in decision.ticks]
        state = ScheduleState(decision.cursor, state.runs + len(decision.to_fire))
    assert len(seen) == len(set(seen)) == 4  # 00:05 .. 00:20 within 24m40s
    assert state.runs == 4


def test_a_long_downtime_is_bounded_and_says_so() -> None:
    schedule = _schedule("* * * * *", misfire_policy=MisfirePolicy.SKIP)
    decision = decide(schedule, ScheduleState(cursor=_h(0)), _h(0) + dt.timedelta(days=1))
    assert len(decision.ticks) == 1000
    assert decision.ticks[-1].due_at == _h(0) + dt.timedelta(days=1)
    assert "440 earlier tick(s) not recorded" in (decision.ticks[0].reason or "")


# --- max runs, end date, paused


def test_max_runs_stops_the_schedule() -> None:
    schedule = _schedule("0 * * * *", max_runs=2)
    state = ScheduleState(cursor=_h(0))
    first = decide(schedule, state, _h(1))
    assert first.to_fire == [_h(1)] and not first.finished
    state = ScheduleState(first.cursor, 1)
    second = decide(schedule, state, _h(2))
    assert second.to_fire == [_h(2)] and second.finished and second.next_run is None
    assert decide(schedule, ScheduleState(second.cursor, 2), _h(5)).ticks == ()


def test_max_runs_caps_a_catch_up() -> None:
    schedule = _schedule(
        "0 * * * *", max_runs=2, misfire_policy=MisfirePolicy.CATCH_UP, catch_up_limit=10
    )
    decision = decide(
        schedule, ScheduleState(cursor=_h(0), runs=1), _h(4) + dt.timedelta(minutes=5)
    )
    assert [t.status for t in decision.ticks] == [F.FIRED, F.SKIPPED, F.SKIPPED, F.SKIPPED]
    assert decision.finished


def test_end_date_stops_the_schedule_and_the_forecast() -> None:
    schedule = _schedule("0 * * * *", end_at=_h(3))
    assert firings_between(schedule, _h(0), _h(10)) == [_h(0), _h(1), _h(2), _h(3)]
    decision = decide(schedule, ScheduleState(cursor=_h(2)), _h(6))
    assert [t.due_at for t in decision.ticks] == [_h(3)]
    assert decision.finished and decision.next_run is None


def test_forecast_of_a_paused_or_used_up_schedule_is_empty() -> None:
    assert firings_between(_schedule("0 * * * *", enabled=False), _h(0), _h(5)) == []
    assert firings_between(_schedule("0 * * * *", max_runs=2), _h(0), _h(5), runs=1) == [_h(0)]


def test_next_firing_is_strictly_after() -> None:
    cron = parse_cron("0 * * * *")
    assert next_firing(cron, _h(1)) == _h(2)
    assert next_firing(cron, _h(1) - dt.timedelta(microseconds=1)) == _h(1)


# --- bad input names the field


@pytest.mark.parametrize(
    ("expr", "tz", "field"),
    [
        ("* * * *", "UTC", "cron_expression"),
        ("61 * * * *", "UTC", "cron_expression"),
        ("0 0 * * * *", "UTC", "cron_expression"),
        ("R * * * *", "UTC", "cron_expression"),
        ("0 0 30 2 *", "UTC", "cron_expression"),
        ("0 0 * * *", "Mars/Olympus", "timezone"),
        ("0 0 * * *", "", "timezone"),
    ],
)
def test_bad_cron_or_zone_names_the_field(expr: str, tz: str, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_cron(expr, tz)
    assert err.value.field == field


def test_aliases_and_names_are_cron() -> None:
    assert parse_cron("@daily").expression == "@daily"
    assert parse_cron("0 9 * * MON-FRI", "Europe/Berlin").timezone == "Europe/Berlin"
    assert ZoneInfo("UTC") == parse_cron("@hourly").zone


def test_end_date_in_the_past_names_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        validate_end(_h(1), now=_h(2))
    assert err.value.field == "end_at"
    validate_end(_h(3), now=_h(2))

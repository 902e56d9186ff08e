"""Maintenance windows as pure arithmetic: DST in both directions and both zones,
windows crossing midnight, blackouts inside windows, Feb 29, bad input.

Time moves by a FakeClock, as the claim's gate sees it: each test walks the
clock across an edge and asks the same question a worker's claim asks.
"""

from __future__ import annotations

import datetime as dt

import pytest

from muster.domain.windows import (
    ClosePolicy,
    ForecastStatus,
    MaintenanceWindow,
    PlannedRun,
    WindowKind,
    WindowScope,
    closes_at,
    forecast,
    is_open,
    next_open,
    parse_days,
    parse_recurring,
    window_status,
    windows_for,
)
from muster.errors import ValidationError
from muster.testing import FakeClock

UTC = dt.UTC


def utc(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=UTC)


def rec(spec: str, **kw: object) -> MaintenanceWindow:
    kw.setdefault("target", "db")
    return parse_recurring(spec, **kw)  # type: ignore[arg-type]


def one_off(kind: WindowKind, a: dt.datetime, b: dt.datetime, **kw: object) -> MaintenanceWindow:
    return MaintenanceWindow(
        name=f"{kind.value} {a}",
        kind=kind,
        target="db",
        starts_at=a,
        ends_at=b,
        **kw,  # type: ignore[arg-type]
    )


def open_minutes(windows: list[MaintenanceWindow], clock: FakeClock, minutes: int) -> int:
    """How many of the next ``minutes`` minutes are open, walking the clock."""
    n = 0
    for _ in range(minutes):
        n += is_open(windows, clock())
        clock.advance(60)
    return n


# -- DST: Europe/Berlin (2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00)


def test_berlin_spring_forward_window_through_the_gap_lasts_what_the_wall_clock_shows():
    w = [rec("Sun 01:00-04:00 Europe/Berlin")]
    clock = FakeClock(utc(2026, 3, 28, 23, 0))  # 00:00 CET
    assert not is_open(w, clock())
    assert next_open(w, clock()) == utc(2026, 3, 29, 0, 0)  # 01:00 CET
    # 01:00 CET .. 04:00 CEST is two real hours: the hour 02:00-03:00 never happens.
    assert open_minutes(w, clock, 4 * 60) == 120
    assert closes_at(w, utc(2026, 3, 29, 1, 59)) == utc(2026, 3, 29, 2, 0)


def test_berlin_start_in_the_gap_opens_when_the_wall_clock_passes_it():
    w = [rec("Sun 02:30-03:30 Europe/Berlin")]
    clock = FakeClock(utc(2026, 3, 29, 0, 59))  # 01:59 CET; next minute is 03:00 CEST
    assert not is_open(w, clock())
    clock.advance(60)
    assert is_open(w, clock())  # 03:00 CEST: 02:30 has passed on the wall clock
    assert closes_at(w, clock()) == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    clock.advance(30 * 60)
    assert not is_open(w, clock())


def test_berlin_fall_back_window_holds_the_repeated_hour_twice():
    w = [rec("Sun 02:00-03:00 Europe/Berlin")]
    clock = FakeClock(utc(2026, 10, 24, 23, 0))  # 01:00 CEST
    assert next_open(w, clock()) == utc(2026, 10, 25, 0, 0)  # first 02:00 (CEST)
    # 02:00 CEST .. 03:00 CET: every instant whose wall clock reads 02:xx, two hours.
    assert open_minutes(w, clock, 4 * 60) == 120
    assert is_open(w, utc(2026, 10, 25, 1, 30))  # 02:30 CET, the second pass
    assert not is_open(w, utc(2026, 10, 25, 2, 0))  # 03:00 CET


def test_berlin_window_keeps_local_time_across_both_changes():
    w = [rec("Sun 01:00-03:00 Europe/Berlin")]
    # Winter: 01:00 CET = 00:00 UTC; summer: 01:00 CEST = 23:00 UTC the day before.
    assert next_open(w, utc(2026, 3, 1, 12)) == utc(2026, 3, 1, 0) + dt.timedelta(days=7)
    assert next_open(w, utc(2026, 7, 1)) == utc(2026, 7, 4, 23, 0)
    assert window_status(w, utc(2026, 12, 5, 12)).reason == (
        "outside maintenance window; next opens Sun 01:00 CET"
    )
    assert window_status(w, utc(2026, 7, 1)).reason == (
        "outside maintenance window; next opens Sun 01:00 CEST"
    )


# -- DST: America/New_York (2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00)


def test_new_york_spring_forward_window_inside_the_gap_does_not_happen_that_day():
    w = [rec("Sun 02:00-03:00 America/New_York")]
    clock = FakeClock(utc(2026, 3, 8, 5, 0))  # 00:00 EST
    assert open_minutes(w, clock, 6 * 60) == 0
    # The next one is a week later, at 02:00 EDT.
    assert next_open(w, utc(2026, 3, 8, 5)) == utc(2026, 3, 15, 6, 0)
    assert window_status(w, utc(2026, 3, 8, 5)).reason == (
        "outside maintenance window; next opens Sun 2026-03-15 02:00 EDT"
    )


def test_new_york_spring_forward_end_in_the_gap_closes_at_the_jump():
    w = [rec("Sun 01:30-02:30 America/New_York")]
    clock = FakeClock(utc(2026, 3, 8, 6, 0))  # 01:00 EST
    assert next_open(w, clock()) == utc(2026, 3, 8, 6, 30)
    assert closes_at(w, utc(2026, 3, 8, 6, 45)) == utc(2026, 3, 8, 7, 0)  # 03:00 EDT
    assert open_minutes(w, clock, 120) == 30


def test_new_york_fall_back_window_lasts_two_real_hours():
    w = [rec("Sun 01:00-02:00 America/New_York")]
    clock = FakeClock(utc(2026, 11, 1, 4, 0))  # 00:00 EDT
    assert next_open(w, clock()) == utc(2026, 11, 1, 5, 0)  # 01:00 EDT
    assert closes_at(w, utc(2026, 11, 1, 5, 0)) == utc(2026, 11, 1, 7, 0)  # 02:00 EST
    assert open_minutes(w, clock, 4 * 60) == 120


# -- midnight, week wrap, several windows


def test_window_crossing_midnight_belongs_to_the_day_it_opens():
    w = [rec("Sat 22:00-02:00 Europe/Berlin")]
    assert not is_open(w, utc(2026, 12, 5, 20, 59))  # Sat 21:59 CET
    assert is_open(w, utc(2026, 12, 5, 21, 0))  # Sat 22:00
    assert is_open(w, utc(2026, 12, 6, 0, 30))  # Sun 01:30
    assert not is_open(w, utc(2026, 12, 6, 1, 0))  # Sun 02:00
    assert not is_open(w, utc(2026, 12, 6, 21, 30))  # Sun 22:30: Sunday is not listed
    assert closes_at(w, utc(2026, 12, 5, 23, 0)) == utc(2026, 12, 6, 1, 0)


def test_window_crossing_midnight_at_the_end_of_the_week():
    w = [rec("Sun 23:00-01:00 UTC")]
    clock = FakeClock(utc(2026, 12, 6, 22, 0))  # Sun 22:00
    assert open_minutes(w, clock, 4 * 60) == 120
    assert is_open(w, utc(2026, 12, 7, 0, 59))  # Mon 00:59


def test_overlapping_windows_merge_and_the_later_end_closes():
    w = [
        rec("Sun 01:00-03:00 UTC", close_policy=ClosePolicy.STOP),
        rec("Sun 02:00-04:00 UTC", target="web", scope=WindowScope.HOST),
    ]
    at = utc(2026, 12, 6, 1, 30)
    status = window_status(w, at)
    assert status.open and status.closes_at == utc(2026, 12, 6, 4, 0)
    assert status.close_policy is ClosePolicy.FINISH  # the window that ends the period


def test_several_days_and_ranges():
    assert parse_days("Mon-Fri") == frozenset(range(5))
    assert parse_days("Sat,Sun") == frozenset({5, 6})
    assert parse_days("Fri-Mon") == frozenset({4, 5, 6, 0})
    assert parse_days("daily") == frozenset(range(7))
    w = [rec("Mon-Fri 12:00-13:00 UTC")]
    assert is_open(w, utc(2026, 12, 4, 12, 30))  # Friday
    assert not is_open(w, utc(2026, 12, 5, 12, 30))  # Saturday


# -- blackouts and extra windows


def test_blackout_inside_a_window_closes_it_and_names_the_reopening():
    window = rec("Sun 01:00-05:00 UTC")
    blackout = one_off(
        WindowKind.BLACKOUT, utc(2026, 12, 6, 2), utc(2026, 12, 6, 3), close_policy=ClosePolicy.STOP
    )
    w = [window, blackout]
    clock = FakeClock(utc(2026, 12, 6, 1, 30))
    status = window_status(w, clock())
    assert status.open and status.closes_at == utc(2026, 12, 6, 2)
    assert status.close_policy is ClosePolicy.STOP  # the blackout ends the period
    clock.advance(3600)
    status = window_status(w, clock())
    assert not status.open
    assert status.reason == "outside maintenance window; next opens Sun 03:00 UTC"
    clock.advance(3600)
    assert window_status(w, clock()).closes_at == utc(2026, 12, 6, 5)
    assert open_minutes(w, FakeClock(utc(2026, 12, 6, 0)), 6 * 60) == 3 * 60


def test_blackout_alone_closes_an_otherwise_always_open_host():
    blackout = one_off(WindowKind.BLACKOUT, utc(2026, 12, 24), utc(2026, 12, 27))
    assert is_open([blackout], utc(2026, 12, 23, 23, 59))
    assert not is_open([blackout], utc(2026, 12, 25))
    assert next_open([blackout], utc(2026, 12, 25)) == utc(2026, 12, 27)
    assert closes_at([blackout], utc(2026, 12, 20)) == utc(2026, 12, 24)


def test_extra_window_opens_outside_the_recurring_ones():
    w = [
        rec("Sun 01:00-03:00 UTC"),
        one_off(WindowKind.EXTRA, utc(2026, 12, 9, 10), utc(2026, 12, 9, 11)),
    ]
    assert is_open(w, utc(2026, 12, 9, 10, 30))
    assert next_open(w, utc(2026, 12, 8)) == utc(2026, 12, 9, 10)


def test_no_window_means_always_open():
    assert is_open([], utc(2026, 12, 5))
    status = window_status([], utc(2026, 12, 5))
    assert status.open and status.closes_at is None and status.reason is None


def test_windows_cover_hosts_directly_through_groups_or_all():
    mine = rec("Sun 01:00-03:00 UTC", scope=WindowScope.HOST, target="web1")
    group = rec("Sat 01:00-03:00 UTC", scope=WindowScope.GROUP, target="db")
    fleet = one_off(
        WindowKind.BLACKOUT, utc(2026, 12, 24), utc(2026, 12, 25), scope=WindowScope.ALL
    )
    ws = [mine, group, fleet]
    assert windows_for(ws, "web1", ["web"]) == [mine, fleet]
    assert windows_for(ws, "db1", ["db", "eu"]) == [group, fleet]
    assert windows_for(ws, "x", []) == [fleet]


# -- Feb 29


def test_feb_29_daily_window_crossing_into_and_out_of_the_leap_day():
    w = [rec("daily 23:00-01:00 UTC")]
    assert is_open(w, utc(2028, 2, 29, 0, 30))  # from Feb 28
    assert closes_at(w, utc(2028, 2, 29, 23, 30)) == utc(2028, 3, 1, 1)
    assert closes_at(w, utc(2027, 2, 28, 23, 30)) == utc(2027, 3, 1, 1)  # no leap day


def test_feb_29_weekday_and_one_off_window():
    # 2028-02-29 is a Tuesday.
    w = [rec("Tue 10:00-11:00 Europe/Berlin")]
    assert next_open(w, utc(2028, 2, 28)) == utc(2028, 2, 29, 9)
    extra = one_off(WindowKind.EXTRA, utc(2028, 2, 29, 12), utc(2028, 3, 1, 0))
    clock = FakeClock(utc(2028, 2, 29, 11, 59))
    assert not is_open([extra], clock())
    clock.advance(60)
    assert is_open([extra], clock())
    assert closes_at([extra], clock()) == utc(2028, 3, 1)


# -- bad input names the field


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: rec("Sun 01:00-01:00 UTC"), "end_time"),
        (lambda: rec("Sun 01:00-03:00 Mars/Olympus"), "timezone"),
        (lambda: rec("Sun 01:00-03:00 ../../etc/passwd"), "timezone"),
        (lambda: rec("Sunday-ish 01:00-03:00 UTC"), "days"),
        (lambda: rec("Sun 25:00-03:00 UTC"), "start_time"),
        (lambda: rec("Sun 01:00-03:70 UTC"), "end_time"),
        (lambda: rec("whenever"), "spec"),
        (lambda: rec("Sun 01:00-03:00 UTC", target=" "), "target"),
        (
            lambda: one_off(WindowKind.BLACKOUT, utc(2026, 1, 2), utc(2026, 1, 1)),
            "ends_at",
        ),
        (
            lambda: MaintenanceWindow(name="x", kind=WindowKind.EXTRA, target="db"),
            "starts_at",
        ),
    ],
)
def test_bad_window_names_the_field(make, field):
    with pytest.raises(ValidationError) as err:
        make()
    assert err.value.field == field


# -- forecast


def test_forecast_places_each_host_run_in_its_window_or_says_it_will_not_fit():
    ws = [
        rec("Sun 01:00-03:00 UTC", target="db"),
        rec("Sat 01:00-01:30 UTC", target="short", close_policy=ClosePolicy.STOP),
    ]
    start, end = utc(2026, 12, 5), utc(2026, 12, 8)
    planned = [
        PlannedRun(
            "nightly",
            utc(2026, 12, 5, 12),
            (("db1", ("db",)), ("web1", ("web",)), ("s1", ("short",))),
            duration=dt.timedelta(hours=1),
        ),
        PlannedRun("inside", utc(2026, 12, 6, 2), (("db1", ("db",)),)),
    ]
    fc = forecast(planned, ws, start, end)
    by = {(e.source, e.host): e for e in fc.entries}
    assert by["nightly", "db1"].status is ForecastStatus.DEFERRED
    assert by["nightly", "db1"].starts_at == utc(2026, 12, 6, 1)
    assert by["nightly", "db1"].window == "Sun 01:00-03:00 UTC"
    assert by["nightly", "web1"].status is ForecastStatus.RUNS  # no window: always open
    assert by["nightly", "s1"].status is ForecastStatus.WILL_NOT_FIT  # 30 min, stopped at close
    assert by["inside", "db1"].status is ForecastStatus.RUNS
    assert [e.host for e in fc.will_not_fit] == ["s1"]

"""The forecast service over InMemoryStore: schedules' firings on today's hosts, placed
in their windows (or not), and audited window changes and overrides."""

from __future__ import annotations

import datetime as dt

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.schedules import Schedule, ScheduleTarget, TargetKind, parse_cron
from muster.domain.windows import ForecastStatus, parse_recurring
from muster.errors import PermissionDeniedError, ValidationError
from muster.security.rbac import Permission
from muster.services.actor import Actor
from muster.services.windows import WindowService, window_from_fields
from muster.store.base import ExecutionKind, HostTarget, NewExecution
from muster.testing import FakeClock, InMemoryStore

# FakeClock's default start: Tuesday 2030-01-01 00:00 UTC.


class Log:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def record_audit(self, **kw) -> None:
        self.records.append(kw)


@pytest.fixture
def setup():
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    for name, groups in (("db1", ["db"]), ("db2", ["db"]), ("web1", ["web"])):
        store.create_host(Host(name=name, transport=TransportKind.LOCAL, groups=groups))
    log = Log()
    return store, clock, log, WindowService(store, log, schedules=store)


def schedule(name: str, cron: str, selector: tuple[str, ...], timeout: float = 60) -> Schedule:
    return Schedule(
        name=name,
        cron=parse_cron(cron, "UTC"),
        target=ScheduleTarget(kind=TargetKind.COMMAND, command="true", timeout=timeout),
        selector=selector,
    )


def test_forecast_places_schedule_firings_in_windows(setup) -> None:
    store, clock, _, service = setup
    service.create(None, parse_recurring("Sun 01:00-03:00 UTC", name="db sunday", target="db"))
    service.create(
        None,
        window_from_fields(
            spec="Sat 01:00-01:10", target="web", close_policy="stop", name="web short"
        ),
    )
    store.create_schedule(
        schedule("nightly", "0 12 * * *", ("db", "web1"), timeout=3600),
        cursor=clock(),
        next_run=None,
    )
    fc = service.forecast(7)
    entries = [e for e in fc.entries if e.due_at == dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)]
    by = {e.host: e for e in entries}
    assert set(by) == {"db1", "db2", "web1"}
    assert by["db1"].status is ForecastStatus.DEFERRED
    assert by["db1"].starts_at == dt.datetime(2030, 1, 6, 1, tzinfo=dt.UTC)
    assert by["db1"].window == "db sunday"
    # web1's only window is ten minutes and stops what runs past it: an hour never fits.
    assert by["web1"].status is ForecastStatus.WILL_NOT_FIT
    assert len(fc.entries) == 7 * 3  # a firing a day on three hosts
    with pytest.raises(ValidationError) as err:
        service.forecast(0)
    assert err.value.field == "days"


def test_changes_and_overrides_are_audited_and_need_their_permission(setup) -> None:
    store, _, log, service = setup
    alice = Actor(
        "alice", permissions=frozenset({Permission.WINDOWS_MANAGE, Permission.WINDOWS_OVERRIDE})
    )
    olga = Actor("olga", permissions=frozenset({Permission.JOBS_MANAGE}))
    w = service.create(alice, parse_recurring("Sun 01:00-03:00 UTC", target="db"))

    host = store.get_host("db1")
    ex = store.create_execution(
        NewExecution(
            kind=ExecutionKind.COMMAND,
            targets=[HostTarget(host.id, host.name, group_key="db")],
            timeout=60,
            command="true",
            shell="sh",
        )
    )
    assert store.claim_host_runs("w", 10, 30) == []
    with pytest.raises(PermissionDeniedError):
        service.override(olga, ex.id)
    assert service.override(alice, ex.id, "hotfix") == 1
    service.delete(alice, w.id)
    assert [r["action"] for r in log.records] == [
        "window.create",
        "window.override",
        "window.delete",
    ]
    assert log.records[1]["details"] == {"reason": "hotfix", "released": 1}
    assert all(r["actor"] == "alice" for r in log.records)

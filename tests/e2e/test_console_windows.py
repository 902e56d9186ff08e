"""The maintenance-window page in real headless Chromium: a week calendar with the
windows, a blackout and a schedule's firings; the forecast with what will not fit;
adding a window (a bad one keeps the input and marks the field); deleting one.

The page runs under the console's Content-Security-Policy: the calendar is
placed by CSS classes, and the shared ``page`` fixture fails on any violation.
"""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import Page, expect

from muster.domain.windows import DAY_NAMES
from tests.e2e.test_console import (  # noqa: F401
    api_client,
    browser,
    fleet,
    page,
    server,
    shot,
)
from tests.integration.server.harness import LiveServer

_W = "/api/v1/maintenance-windows"


def test_week_calendar_forecast_and_forms(page: Page, server: LiveServer) -> None:  # noqa: F811
    now = dt.datetime.now(dt.UTC)
    tomorrow = DAY_NAMES[(now.weekday() + 1) % 7]
    with api_client(server) as api:
        for w in api.get(_W).json():
            api.delete(f"{_W}/{w['id']}")
        made = api.post(
            _W,
            json={
                "name": "web nightly",
                "spec": f"{tomorrow} 01:00-03:00",
                "target": "web",
                "close_policy": "stop",
            },
        )
        assert made.status_code == 201, made.text
        blackout = api.post(
            _W,
            json={
                "name": "freeze",
                "kind": "blackout",
                "scope": "all",
                "starts_at": (now + dt.timedelta(hours=2)).isoformat(),
                "ends_at": (now + dt.timedelta(hours=3)).isoformat(),
            },
        )
        assert blackout.status_code == 201, blackout.text
        sched = api.post(
            "/api/v1/automation/schedules",
            json={
                "name": "hourly-check",
                "cron_expression": "30 * * * *",
                "target": "command",
                "command": "true",
                "timeout": 3600,
                "host_ids": ["web"],
            },
        )
        assert sched.status_code == 201, sched.text

    page.goto("/windows")
    expect(page.get_by_role("heading", name="Maintenance windows")).to_be_visible()
    expect(page.get_by_role("link", name="Windows")).to_have_attribute("aria-current", "page")
    calendar = page.locator("#calendar")
    expect(calendar.locator(".blk.window").first).to_contain_text("web nightly")
    expect(calendar.locator(".blk.blackout").first).to_contain_text("freeze")
    # Hourly firings are one band a day (fewer markers would be unreadable).
    expect(calendar.locator(".blk.firings").first).to_contain_text("hourly-check:")
    rows = page.locator("#windows tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(f"{tomorrow} 01:00-03:00 UTC")
    # The forecast: hourly firings before tomorrow's window are deferred to it; an
    # hour-long command due in its last hour, or after it (the next one is a week
    # away), will not fit.
    forecast = page.locator("#forecast")
    expect(forecast).to_contain_text("hourly-check")
    expect(page.locator("#forecast-summary")).to_contain_text("hourly-check")
    assert page.locator("#forecast tbody tr").count() <= 40
    expect(forecast.locator("tr.misfit").first).to_contain_text("will not fit")
    deferred = page.locator("#forecast-summary tbody tr td[data-label='Deferred']").first
    assert int(deferred.inner_text()) > 0
    shot(page, "windows-week")

    # A bad window keeps the input and names the field.
    form = page.locator("#add-window")
    form.get_by_label("Name", exact=True).fill("db sunday")
    form.get_by_label("Group or host name").fill("db")
    form.get_by_label("Time zone").fill("Mars/Olympus")
    form.get_by_label("Recurring: days and times").fill("Sun 01:00-03:00")
    form.get_by_role("button", name="Add window").click()
    expect(page.locator("#err-timezone")).to_contain_text("unknown time zone")
    expect(form.get_by_label("Name", exact=True)).to_have_value("db sunday")
    form.get_by_label("Time zone").fill("Europe/Berlin")
    form.get_by_role("button", name="Add window").click()
    expect(page.locator("#windows tbody tr")).to_have_count(3)
    expect(page.locator("#windows")).to_contain_text("Sun 01:00-03:00 Europe/Berlin")

    page.get_by_role("button", name="Delete window db sunday").click()
    expect(page.locator("#windows tbody tr")).to_have_count(2)

    # Another zone and the next week.
    page.goto("/windows?tz=America/New_York&week=1")
    expect(page.get_by_role("heading", level=2).first).to_contain_text("America/New_York")
    expect(page.locator("#calendar .blk.window").first).to_contain_text("web nightly")


def test_execution_waiting_for_a_window_runs_now_from_its_page(
    page: Page,  # noqa: F811
    server: LiveServer,  # noqa: F811
) -> None:
    now = dt.datetime.now(dt.UTC)
    with api_client(server) as api:
        freeze = api.post(
            _W,
            json={
                "name": "web freeze",
                "kind": "blackout",
                "target": "web",
                "starts_at": (now - dt.timedelta(minutes=1)).isoformat(),
                "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
            },
        ).json()
        ex = api.post("/api/v1/automation/commands", json={"command": "true", "host_ids": ["web"]})
        assert ex.status_code in (200, 201), ex.text
        ex_id = ex.json()["id"]
    try:
        page.goto(f"/executions/{ex_id}")
        expect(page.locator("#status")).to_contain_text("queued")
        page.get_by_role("button", name="Run now, outside its windows").click()
        expect(page).to_have_url(re.compile(f"/executions/{ex_id}$"))
        expect(page.locator("#status")).to_contain_text("succeeded", timeout=30_000)
    finally:
        with api_client(server) as api:
            api.delete(f"{_W}/{freeze['id']}")

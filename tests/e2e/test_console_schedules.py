"""The schedules page in real headless Chromium: add a schedule (a bad cron keeps the
input and marks the field), see it listed with its next run, run it now (to its
execution), see the firing on the schedule's page, pause and resume it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.test_console import (  # noqa: F401
    api_client,
    browser,
    fleet,
    page,
    server,
    shot,
)
from tests.integration.server.harness import LiveServer


def test_add_run_now_pause_and_firings(page: Page, server: LiveServer) -> None:  # noqa: F811
    with api_client(server) as api:
        for s in api.get("/api/v1/automation/schedules").json():
            api.delete(f"/api/v1/automation/schedules/{s['id']}")

    page.goto("/schedules")
    expect(page.get_by_role("heading", name="Schedules", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Schedules")).to_have_attribute("aria-current", "page")
    form = page.locator("#new-schedule")
    form.get_by_label("Name", exact=True).fill("nightly-web")
    form.get_by_label("Cron (minute hour day month weekday)").fill("30 25 * * *")
    form.get_by_label("Time zone", exact=True).fill("Europe/Berlin")
    form.get_by_label("Command (when it runs a command)").fill("uptime")
    form.get_by_label("Hosts (names, groups or selectors, comma-separated)").fill("web")
    form.get_by_role("button", name="Add schedule").click()
    # Refused: the input is kept and the cron field is marked with the problem.
    cron = page.get_by_label("Cron (minute hour day month weekday)")
    expect(cron).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-cron_expression")).to_contain_text("cron_expression")
    expect(page.get_by_label("Name", exact=True)).to_have_value("nightly-web")
    cron.fill("30 2 * * *")
    page.get_by_role("button", name="Add schedule").click()

    row = page.locator("#schedules tbody tr").filter(has_text="nightly-web")
    expect(row).to_contain_text("30 2 * * *")
    expect(row).to_contain_text("Europe/Berlin")
    expect(row.locator("td[data-label='Next run']")).not_to_have_text("none")
    shot(page, "schedules-list")

    row.get_by_role("button", name="Run nightly-web now").click()
    expect(page).to_have_url(__import__("re").compile(r"/executions/[0-9a-f-]+$"))

    page.goto("/schedules")
    page.get_by_role("link", name="nightly-web").click()
    expect(page.get_by_role("heading", name="Schedule nightly-web")).to_be_visible()
    firing = page.locator("#firings tbody tr")
    expect(firing).to_have_count(1)
    expect(firing.first).to_contain_text("run now")
    expect(firing.first).to_contain_text("fired")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("dl.facts")).to_contain_text("paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    shot(page, "schedule-detail")

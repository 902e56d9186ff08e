"""The rollout view and the drift report in real headless Chromium.

A real rollout (tests/support/rollout_sample.py: the in-process engine on local
hosts, a verification failure on h3, a failed rollback on h1) is published
through the API, then read in the console: waves as lanes with hosts coloured
by state, the gate that stopped the rollout with its verification result,
the rollback lane, h1 called out as FLAGGED, and h3's drift report (the
comparison, before/after values, the unexpected drift key). Runs under the
console's Content-Security-Policy (the ``page`` fixture fails on a violation).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
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
from tests.support.rollout_sample import SECRET, sample_report


@pytest.fixture(scope="module")
def published(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # noqa: F811
    doc = sample_report(tmp_path_factory.mktemp("rollout"))
    # A hostile string in a publisher's message must come out as text.
    doc["message"] = doc["message"] + " <script>window.pwned=1</script>"
    with api_client(server) as api:
        resp = api.post("/api/v1/rollouts", json=doc)
        assert resp.status_code == 201, resp.text
    return doc


def test_rollout_view_shows_lanes_gates_rollback_and_flagged(
    page: Page,  # noqa: F811
    published: dict[str, Any],
) -> None:
    rid = published["id"]
    page.goto("/rollouts")
    expect(page.get_by_role("link", name="Rollouts")).to_have_attribute("aria-current", "page")
    row = page.locator("#rollouts tbody tr").filter(has_text="patch_openssl")
    expect(row).to_contain_text("rollback_failed")
    expect(row).to_contain_text("1 flagged")
    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/rollouts/{rid}$"))

    expect(page.locator("#flagged")).to_contain_text("FLAGGED: 1 host(s)")
    expect(page.locator("#flagged")).to_contain_text("h1")
    expect(page.locator("#rollout-message")).to_contain_text("<script>window.pwned=1</script>")
    assert page.evaluate("window.pwned") is None

    lanes = page.locator("#waves > li.lane")
    expect(lanes).to_have_count(3)
    chip = page.locator("#wave-2 .host-chip")
    expect(chip).to_have_count(2)
    expect(page.locator('#wave-2 [data-host="h3"]')).to_have_attribute("data-state", "rolled_back")
    expect(page.locator('#wave-1 [data-host="h1"]')).to_have_attribute(
        "data-state", "rollback_failed"
    )
    expect(page.locator('#wave-3 [data-host="h4"]')).to_have_attribute("data-state", "not_run")
    # Coloured by state: h1 (rollback failed) and h2 (rolled back) differ from h4 (not run).
    colours = {
        h: page.locator(f'#waves [data-host="{h}"]').evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        for h in ("h1", "h2", "h4")
    }
    assert len(set(colours.values())) == 3, colours

    expect(page.locator("#gate-1")).to_contain_text("passed")
    gate = page.locator("#gate-2")
    expect(gate).to_have_class(re.compile(r"\bfailed\b"))
    expect(gate).to_contain_text("stopped the rollout")
    expect(gate).to_contain_text("verification failed on 1 host(s): h3")
    expect(page.locator("#gate-3")).to_have_count(0)

    rollback = page.locator("#rollback .host-chip")
    expect(rollback).to_have_count(3)
    # Newest wave first: wave 2's hosts, then h1 (flagged).
    expect(rollback.last).to_contain_text("h1")
    expect(rollback.last).to_contain_text("FLAGGED")
    expect(page.locator("#rollback")).to_contain_text("rollback of backup failed")
    shot(page, "rollout-view")


def test_drift_report_per_host(page: Page, published: dict[str, Any]) -> None:  # noqa: F811
    rid = published["id"]
    page.goto(f"/rollouts/{rid}")
    page.locator('#wave-2 [data-host="h3"]').click()
    expect(page).to_have_url(re.compile(f"/rollouts/{rid}/hosts/h3$"))
    expect(page.locator("h1")).to_contain_text("Drift report: h3")
    expect(page.locator("#host-reason")).to_contain_text("verification_failed")
    check = page.locator('table.checks tr[data-key="openssl"]')
    expect(check).to_contain_text("3.0.11-1")
    expect(check).to_contain_text("3.0.2-1")
    expect(check).to_contain_text("fail")
    expect(check).to_contain_text("decreased")
    expect(page.locator("#drift-1")).to_contain_text("motd")
    motd = page.locator('table.captures tr[data-key="motd"]')
    expect(motd).to_have_class(re.compile(r"\bdrift\b"))
    expect(motd).to_contain_text("welcome")
    expect(motd).to_contain_text("token ***")
    assert SECRET not in page.content()
    shot(page, "rollout-drift-report")

    page.goto(f"/rollouts/{rid}/hosts/h1")
    expect(page.locator("#flagged")).to_contain_text("FLAGGED")
    expect(page.locator("#flagged")).to_contain_text("rollback of backup failed")
    expect(page.locator('table.checks tr[data-key="openssl"]')).to_contain_text("pass")

    missing = page.goto(f"/rollouts/{rid}/hosts/nobody")
    assert missing is not None and missing.status == 404


def test_evidence_export_downloads_the_report(
    page: Page,  # noqa: F811
    published: dict[str, Any],
    tmp_path: Path,
) -> None:
    page.goto(f"/rollouts/{published['id']}")
    with page.expect_download() as got:
        page.get_by_role("link", name="Export evidence (JSON)").click()
    path = tmp_path / "evidence.json"
    got.value.save_as(path)
    exported = json.loads(path.read_text())
    assert exported["hosts"]["h3"]["evidence"][0]["checks"][0]["after_value"] == "3.0.2-1"
    assert exported["flagged_hosts"] == ["h1"]

"""Every console page, found in the route table, in real headless Chromium:

* axe-core (bundled by the ``axe-playwright-python`` test dependency, no CDN)
  finds no WCAG 2.0/2.1 A or AA violation, as an admin who sees every button;
* a screenshot at 1440x900 and at 390x844 goes to ``artifacts/screenshots/``;
* a user without any role is refused with a page in the console's layout.

The pages are the ``GET`` console routes of :data:`muster.server.permissions.ROUTE_RULES`
(the table the auth middleware enforces), so a page added anywhere is walked
without touching this file; a path parameter this module cannot fill is
reported by name and that page skipped, never silently left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from muster.server.auth import is_console_path
from muster.server.permissions import AUTHENTICATED, PUBLIC, ROUTE_RULES
from muster.testing.simfleet import SimFleet
from tests.e2e.console_kit import (
    ARGS,
    CHROMIUM,
    PASSWORD,
    PHONE,
    WIDE,
    api_as,
    execute,
    make_script,
    shot,
    start_server,
    watch,
)
from tests.integration.server.harness import LiveServer, wait_for
from tests.support.rollout_sample import sample_report

if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the machine
    print(f"{CHROMIUM} is missing: console page tests skipped")
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

#: Not pages: files, the icon, and plain-text downloads.
_NOT_PAGES = ("/static/", "/favicon.ico")
#: WCAG 2.1 level A and AA (axe's tags).
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}

PAGES = sorted(
    path
    for method, path in ROUTE_RULES
    if method == "GET" and is_console_path(path) and not path.startswith(_NOT_PAGES)
)
#: States of pages the route table cannot name: an error page, a pending run, a form
#: refused with its problems.
EXTRA = [
    "/no/such/page",
    "/executions/{pending_execution_id}",
    "/scripts/{script_id}/diff?a=1&b=2",
    "/history?host=web",
]


@pytest.fixture(scope="module")
def fleet() -> Iterator[SimFleet]:
    sim = SimFleet(2, groups=("web",)).start_in_thread()
    try:
        yield sim
    finally:
        sim.stop_thread()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fleet: SimFleet) -> Iterator[LiveServer]:
    # Webhooks may only point at loopback here: the walk's one webhook goes nowhere.
    live = start_server(tmp_path_factory.mktemp("pages"), fleet, webhook_allow="127.0.0.0/8")
    try:
        yield live
    finally:
        live.stop()


def _try_create(live: LiveServer, path: str, body: dict[str, Any], key: str = "id") -> str | None:
    with api_as(live, "ada") as api:
        resp = api.post(path, json=body)
    if resp.status_code >= 300:
        print(f"could not create {path} for the page walk: {resp.status_code} {resp.text[:200]}")
        return None
    return str(resp.json().get(key))


@pytest.fixture(scope="module")
def values(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A real object for every path parameter the pages use."""
    params = [
        {"name": "count", "type": "integer", "required": True, "description": "how many"},
        {"name": "token", "type": "secret"},
        {"name": "dry_run", "type": "boolean", "default": True},
        {"name": "size", "type": "choice", "choices": ["small", "large"], "default": "small"},
    ]
    body = 'echo "${count} ${size}"\nif [ "${MUSTER_SIM_HOST:-x}" = sim0002 ]; then exit 2; fi\n'
    first = make_script(
        server, {"name": "walk-script", "body": body, "parameters": params, "tags": ["demo"]}
    )
    make_script(
        server,
        {"name": "walk-script", "body": body + "echo done\n", "parameters": params, "timeout": 90},
    )
    done = execute(server, first["id"], ["web", "localhost"], count=3)
    guarded = make_script(server, {"name": "walk-guarded", "body": "echo ok\n"})
    with api_as(server, "ada") as api:
        api.put(
            f"/api/v1/automation/scripts/{guarded['id']}/approval-policy", json={"required": True}
        ).raise_for_status()
    pending = execute(server, guarded["id"], ["sim0001"], user="otto")
    with api_as(server, "ada") as api:

        def finished() -> bool:
            got = api.get(f"/api/v1/automation/executions/{done['id']}").json()
            return got["status"] not in ("queued", "running")

        wait_for(finished, timeout=60, what="the walk's execution to finish")
        approvals = api.get("/api/v1/automation/approvals").json()["items"]
    found: dict[str, str | None] = {
        "script_id": first["id"],
        "number": "1",
        "execution_id": done["id"],
        "pending_execution_id": pending["id"],
        "host": "sim0001",
        "host_id": "sim0001",
        "name": "vera",
        "approval_id": approvals[0]["id"] if approvals else None,
        "webhook_id": _try_create(
            server,
            "/api/v1/webhooks",
            {
                "url": "http://127.0.0.1:9/muster-walk",
                "events": ["execution"],
                "secret": "walk-webhook-signing-secret-0123",
            },
        ),
    }
    if any("{schedule_id}" in p for p in PAGES):
        found["schedule_id"] = _try_create(
            server,
            "/api/v1/automation/schedules",
            {
                "name": "walk-nightly",
                "cron_expression": "0 3 * * *",
                "target": "command",
                "command": "true",
                "host_ids": ["web"],
            },
        )
    if any("{workflow}" in p or "{instance_id}" in p for p in PAGES):
        found["workflow"] = _try_create(
            server,
            "/api/v1/automation/workflows",
            {
                "definition": {
                    "name": "walk-flow",
                    "targets": "web",
                    "steps": [
                        {"id": "check", "type": "command", "command": "uptime"},
                        {
                            "id": "gate",
                            "depends_on": ["check"],
                            "approval": {"approvers": ["user:vera"]},
                        },
                        {
                            "id": "apply",
                            "type": "command",
                            "command": "true",
                            "depends_on": ["gate"],
                        },
                    ],
                }
            },
            key="name",
        )
        if found["workflow"] is not None:
            found["instance_id"] = _try_create(
                server, f"/api/v1/automation/workflows/{found['workflow']}/start", {}
            )
    if any("{rollout_id}" in p for p in PAGES):
        # A real rollout's report (the engine on local hosts), with a flagged host.
        report = sample_report(tmp_path_factory.mktemp("walk-rollout"))
        found["rollout_id"] = _try_create(server, "/api/v1/rollouts", report)
        found["rollout_host"] = "h3"
    return {k: v for k, v in found.items() if v is not None}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _context(browser: Browser, server: LiveServer, user: str) -> BrowserContext:
    context = browser.new_context(base_url=server.url, viewport=WIDE)
    context.set_default_timeout(20_000)
    resp = context.request.post("/api/v1/auth/login", data={"username": user, "password": PASSWORD})
    assert resp.ok, resp.text()
    return context


@pytest.fixture(scope="module")
def admin(browser: Browser, server: LiveServer) -> Iterator[BrowserContext]:
    context = _context(browser, server, "ada")
    yield context
    context.close()


@pytest.fixture(scope="module")
def nobody(browser: Browser, server: LiveServer) -> Iterator[BrowserContext]:
    context = _context(browser, server, "nobody")
    yield context
    context.close()


def _fill(template: str, values: dict[str, str]) -> str:
    missing = [n for n in re.findall(r"\{([^}:]+)\}", template) if n not in values]
    if missing:
        print(f"page walk: no value for {missing} in {template}: page skipped")
        pytest.skip(f"no fixture makes {missing} for {template}")
    return re.sub(r"\{([^}:]+)\}", lambda m: values[m.group(1)], template)


def _name(template: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", template.lower()).strip("-")
    return f"page-{slug or 'home'}"


_axe = Axe()


def _wide(tab: Any) -> list[str]:
    """The elements reaching past the window's right edge (for the failure message)."""
    found: list[str] = tab.evaluate(
        """() => [...document.querySelectorAll('body *')]
          .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
          .filter((e) => {
            for (let a = e.parentElement; a; a = a.parentElement) {
              if (getComputedStyle(a).overflowX !== 'visible') return a === document.body
                || a === document.documentElement;
            }
            return true;
          })
          .slice(0, 8)
          .map((e) => `${e.tagName.toLowerCase()}.${e.className}#${e.id}`)"""
    )
    return found


@pytest.mark.parametrize("template", PAGES + EXTRA)
def test_page_is_accessible_and_shot_at_both_widths(
    template: str,
    admin: BrowserContext,
    nobody: BrowserContext,
    values: dict[str, str],
) -> None:
    url = _fill(template, values)
    tab = admin.new_page()
    problems = watch(tab)
    try:
        response = tab.goto(url)
        assert response is not None
        expected = 404 if template == "/no/such/page" else 200
        assert response.status == expected, (url, response.status)
        expect(tab.locator("main")).to_be_visible()
        tab.wait_for_load_state("networkidle")
        results = _axe.run(tab, options=AXE_OPTIONS)
        assert results.violations_count == 0, f"{url}:\n{results.generate_report()}"
        shot(tab, f"{_name(template)}-1440")
        tab.set_viewport_size(PHONE)
        shot(tab, f"{_name(template)}-390")
        overflow = tab.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{url} scrolls sideways by {overflow}px at 390px: {_wide(tab)}"
    finally:
        tab.close()
    assert problems == [], problems

    found = ROUTE_RULES.get(("GET", template))
    if found is None or found.need in (PUBLIC, AUTHENTICATED):
        return
    refused = nobody.request.get(url, max_redirects=0)
    assert refused.status == 403, (url, refused.status)
    assert refused.headers["content-type"].startswith("text/html"), url
    assert "Not allowed" in refused.text()
